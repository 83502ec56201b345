// llama.cpp's ggml RPC wire protocol, as far as Strata speaks it: enough to greet an rpc-server,
// check its protocol version and ask for its devices and their memory before loading a model.
// Source of truth: ggml/src/ggml-rpc/ggml-rpc.cpp and ggml/include/ggml-rpc.h of the pinned
// llama.cpp (node-llama-cpp 3.22.1 bundle, commit de3ff81: RPC protocol 7.0.0).
//
//   request : | cmd u8 | size u64 LE | payload (size bytes) |
//   response: | size u64 LE | payload (size bytes) |          (commands that answer)
//
// The first command on a connection must be HELLO; an rpc-server serves one client at a time
// (a second connection waits in the accept queue until the first closes).

/** Command numbers (enum rpc_cmd). HELLO is 14 in every version since 3.0. */
export const RpcCmd = Object.freeze({
  ALLOC_BUFFER: 0,
  GET_ALIGNMENT: 1,
  GET_MAX_SIZE: 2,
  BUFFER_GET_BASE: 3,
  FREE_BUFFER: 4,
  BUFFER_CLEAR: 5,
  SET_TENSOR: 6,
  SET_TENSOR_HASH: 7,
  GET_TENSOR: 8,
  COPY_TENSOR: 9,
  GRAPH_COMPUTE: 10,
  GET_DEVICE_MEMORY: 11,
  INIT_TENSOR: 12,
  GET_ALLOC_SIZE: 13,
  HELLO: 14,
  DEVICE_COUNT: 15,
  GRAPH_RECOMPUTE: 16,
  MEMSET_TENSOR: 17,
});

export interface RpcVersion {
  major: number;
  minor: number;
  patch: number;
}

/** RPC_PROTO_*_VERSION of the pinned llama.cpp; what its llama-server expects from peers. */
export const PINNED_RPC_VERSION: Readonly<RpcVersion> = Object.freeze({ major: 7, minor: 0, patch: 0 });

/** rpc_msg_hello_req: conn_caps[RPC_CONN_CAPS_SIZE] (transport upgrade, e.g. RDMA; zeros: plain TCP). */
export const RPC_CONN_CAPS_SIZE = 24;
/** rpc_msg_hello_rsp: major, minor, patch, padding, conn_caps[24]. */
export const HELLO_RSP_SIZE = 4 + RPC_CONN_CAPS_SIZE;
/** Size of the client's HELLO request: cmd + u64 size + caps. */
export const HELLO_REQ_BYTES = 1 + 8 + RPC_CONN_CAPS_SIZE;

export function formatVersion(v: RpcVersion): string {
  return `${v.major}.${v.minor}.${v.patch}`;
}

export function parseVersion(s: string): RpcVersion | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(s.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) } : undefined;
}

/**
 * llama.cpp's own rule (negotiate_hello): the client accepts a server with the same major
 * version and a minor version not newer than its own; the patch number tracks GGML_OP_COUNT and
 * is informative only.
 */
export function isCompatible(client: RpcVersion, server: RpcVersion): boolean {
  return server.major === client.major && server.minor <= client.minor;
}

/** One request frame. */
export function encodeRequest(cmd: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const out = Buffer.allocUnsafe(9 + payload.length);
  out.writeUInt8(cmd, 0);
  out.writeBigUInt64LE(BigInt(payload.length), 1);
  payload.copy(out, 9);
  return out;
}

export function encodeHello(caps: Buffer = Buffer.alloc(RPC_CONN_CAPS_SIZE)): Buffer {
  return encodeRequest(RpcCmd.HELLO, caps);
}

export function decodeHelloResponse(b: Buffer): { version: RpcVersion; caps: Buffer } {
  if (b.length !== HELLO_RSP_SIZE) throw new Error(`HELLO response of ${b.length} bytes, expected ${HELLO_RSP_SIZE}`);
  return { version: { major: b[0], minor: b[1], patch: b[2] }, caps: b.subarray(4) };
}

/**
 * The RPC_PROTO_* version declared by a llama.cpp source tree (ggml/include/ggml-rpc.h), for
 * builds Strata made itself; undefined if the header says nothing recognizable.
 */
export function versionFromHeader(headerText: string): RpcVersion | undefined {
  const found: Record<string, number> = {};
  for (const m of headerText.matchAll(/^\s*#define\s+RPC_PROTO_(MAJOR|MINOR|PATCH)_VERSION\s+(\d+)/gm)) found[m[1]] = Number(m[2]);
  if (found.MAJOR === undefined || found.MINOR === undefined || found.PATCH === undefined) return undefined;
  return { major: found.MAJOR, minor: found.MINOR, patch: found.PATCH };
}
