import type { ClusterConfig } from './cluster';
import { ClientFrame, DaemonFrame, ErrorInfo, EVENTS, EventName, HelloFrame, Method, METHODS, ServerPlan } from './messages';

// Frames are JSON text. Both ends check shape before trusting a frame: the daemon because a
// local process that guessed nothing may still send anything, the client because a daemon of
// another version may answer in a shape this code does not know.

/** Frames above this are refused (and the ws server enforces it as maxPayload). */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

export class ProtocolError extends Error {}

export function encodeFrame(frame: ClientFrame | DaemonFrame): string {
  return JSON.stringify(frame);
}

type Obj = Record<string, unknown>;

function parseObject(text: string): Obj {
  if (text.length > MAX_FRAME_BYTES) throw new ProtocolError('frame too large');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ProtocolError('frame is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ProtocolError('frame is not an object');
  return v as Obj;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isId(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function decodeClientFrame(text: string): ClientFrame {
  const o = parseObject(text);
  switch (o.type) {
    case 'hello': {
      if (typeof o.protocolVersion !== 'number') throw new ProtocolError('hello lacks protocolVersion');
      if (o.token !== undefined && typeof o.token !== 'string') throw new ProtocolError('hello token is not a string');
      if (o.retire !== undefined && o.retire !== 'when-idle' && o.retire !== 'now') throw new ProtocolError('bad retire value');
      const hello: HelloFrame = { type: 'hello', protocolVersion: o.protocolVersion };
      if (typeof o.token === 'string') hello.token = o.token;
      if (o.retire) hello.retire = o.retire as HelloFrame['retire'];
      if (isObj(o.client)) {
        hello.client = {};
        if (typeof o.client.name === 'string') hello.client.name = o.client.name.slice(0, 200);
        if (typeof o.client.pid === 'number') hello.client.pid = o.client.pid;
      }
      return hello;
    }
    case 'req': {
      if (!isId(o.id)) throw new ProtocolError('request lacks a numeric id');
      if (typeof o.method !== 'string') throw new ProtocolError('request lacks a method');
      const params = o.params === undefined ? {} : o.params;
      if (!isObj(params)) throw new ProtocolError('request params must be an object');
      // Unknown methods parse (so the daemon can answer 'unknown-method' to that id).
      return { type: 'req', id: o.id, method: o.method as Method, params: params as never };
    }
    default:
      throw new ProtocolError(`unknown client frame type ${JSON.stringify(o.type)}`);
  }
}

export function decodeDaemonFrame(text: string): DaemonFrame {
  const o = parseObject(text);
  switch (o.type) {
    case 'welcome':
      if (typeof o.protocolVersion !== 'number' || !isObj(o.status)) throw new ProtocolError('bad welcome');
      return o as unknown as DaemonFrame;
    case 'res':
      if (!isId(o.id) || typeof o.ok !== 'boolean') throw new ProtocolError('bad response');
      if (o.ok === false && !isErrorInfo(o.error)) throw new ProtocolError('bad error response');
      return o as unknown as DaemonFrame;
    case 'event':
      if (typeof o.event !== 'string' || !EVENTS.includes(o.event as EventName)) throw new ProtocolError(`unknown event ${JSON.stringify(o.event)}`);
      return o as unknown as DaemonFrame;
    default:
      throw new ProtocolError(`unknown daemon frame type ${JSON.stringify(o.type)}`);
  }
}

function isErrorInfo(v: unknown): v is ErrorInfo {
  return isObj(v) && typeof v.code === 'string' && typeof v.message === 'string';
}

export function isKnownMethod(m: string): m is Method {
  return (METHODS as readonly string[]).includes(m);
}

/** Flags the supervisor owns; a plan that sets them would fight it. */
const RESERVED_FLAGS = new Set(['-m', '--model', '--host', '--port', '--api-key', '--api-key-file', '--metrics']);

/** Checks a plan from the wire and returns it with only known fields; throws ProtocolError with a readable reason. */
export function validatePlan(v: unknown): ServerPlan {
  if (!isObj(v)) throw new ProtocolError('plan must be an object');
  if (typeof v.binaryPath !== 'string' || v.binaryPath === '') throw new ProtocolError('plan.binaryPath must be a non-empty string');
  if (typeof v.modelPath !== 'string' || v.modelPath === '') throw new ProtocolError('plan.modelPath must be a non-empty string');
  if (!Array.isArray(v.args) || !v.args.every((a) => typeof a === 'string')) throw new ProtocolError('plan.args must be an array of strings');
  for (const a of v.args as string[]) {
    const flag = a.split('=')[0];
    if (RESERVED_FLAGS.has(flag)) throw new ProtocolError(`plan.args must not set ${flag}: the sidecar sets it`);
  }
  const plan: ServerPlan = { binaryPath: v.binaryPath, modelPath: v.modelPath, args: [...(v.args as string[])] };
  if (v.env !== undefined) {
    if (!isObj(v.env) || !Object.values(v.env).every((x) => typeof x === 'string')) throw new ProtocolError('plan.env must map names to strings');
    plan.env = { ...(v.env as Record<string, string>) };
  }
  if (v.port !== undefined) {
    if (!Number.isInteger(v.port) || (v.port as number) < 1 || (v.port as number) > 65535) throw new ProtocolError('plan.port must be 1..65535');
    plan.port = v.port as number;
  }
  if (v.label !== undefined) {
    if (typeof v.label !== 'string') throw new ProtocolError('plan.label must be a string');
    plan.label = v.label;
  }
  for (const k of ['idleUnloadMs', 'readyTimeoutMs'] as const) {
    if (v[k] !== undefined) {
      if (typeof v[k] !== 'number' || !Number.isFinite(v[k]) || (v[k] as number) < 0) throw new ProtocolError(`plan.${k} must be a non-negative number`);
      plan[k] = v[k] as number;
    }
  }
  return plan;
}

/** Two plans start the same process (label and timeouts do not matter). */
export function samePlan(a: ServerPlan, b: ServerPlan): boolean {
  const key = (p: ServerPlan) => JSON.stringify([p.binaryPath, p.modelPath, p.args, sortedEntries(p.env), p.port ?? null]);
  return key(a) === key(b);
}

function sortedEntries(env: Record<string, string> | undefined): [string, string][] {
  return Object.entries(env ?? {}).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}

const PEER_NAME = /^[\w.-]{1,40}$/;

/** Checks cluster.configure params from the wire: peers with tokens, mode, local devices, placements. */
export function validateClusterConfig(v: unknown): ClusterConfig {
  if (!isObj(v)) throw new ProtocolError('cluster config must be an object');
  if (!Array.isArray(v.peers)) throw new ProtocolError('cluster.peers must be an array');
  const names = new Set<string>();
  const peers = v.peers.map((p, i) => {
    if (!isObj(p)) throw new ProtocolError(`cluster.peers[${i}] must be an object`);
    if (typeof p.name !== 'string' || !PEER_NAME.test(p.name))
      throw new ProtocolError(`cluster.peers[${i}].name must be 1-40 letters, digits, dots, dashes or underscores`);
    if (names.has(p.name)) throw new ProtocolError(`two peers are named ${p.name}`);
    names.add(p.name);
    if (typeof p.host !== 'string' || !p.host || p.host.length > 253) throw new ProtocolError(`peer ${p.name}: host must be a host name or address`);
    if (!Number.isInteger(p.port) || (p.port as number) < 1 || (p.port as number) > 65535) throw new ProtocolError(`peer ${p.name}: port must be 1..65535`);
    if (typeof p.token !== 'string' || p.token.length < 16) throw new ProtocolError(`peer ${p.name}: token missing or too short`);
    if (p.transport !== 'tunnel' && p.transport !== 'direct') throw new ProtocolError(`peer ${p.name}: transport must be "tunnel" or "direct"`);
    return {
      name: p.name,
      host: p.host,
      port: p.port as number,
      token: p.token,
      transport: p.transport as 'tunnel' | 'direct',
      ...(p.enabled === false ? { enabled: false } : {}),
    };
  });
  const cfg: ClusterConfig = { peers };
  if (v.mode !== undefined) {
    if (v.mode !== 'off' && v.mode !== 'auto' && v.mode !== 'split') throw new ProtocolError('cluster.mode must be "off", "auto" or "split"');
    cfg.mode = v.mode;
  }
  if (v.localDevices !== undefined) {
    if (!Array.isArray(v.localDevices)) throw new ProtocolError('cluster.localDevices must be an array');
    cfg.localDevices = v.localDevices.map((d, i) => {
      if (!isObj(d) || typeof d.id !== 'string' || typeof d.label !== 'string' || typeof d.freeBytes !== 'number' || !(d.freeBytes >= 0)) {
        throw new ProtocolError(`cluster.localDevices[${i}] needs id, label and freeBytes`);
      }
      return { id: d.id, label: d.label, freeBytes: d.freeBytes };
    });
  }
  if (v.hostFreeBytes !== undefined) {
    if (typeof v.hostFreeBytes !== 'number' || !(v.hostFreeBytes >= 0)) throw new ProtocolError('cluster.hostFreeBytes must be a non-negative number');
    cfg.hostFreeBytes = v.hostFreeBytes;
  }
  if (v.placements !== undefined) {
    if (!Array.isArray(v.placements)) throw new ProtocolError('cluster.placements must be an array');
    const roles = new Set<string>();
    cfg.placements = v.placements.map((w, i) => {
      if (!isObj(w)) throw new ProtocolError(`cluster.placements[${i}] must be an object`);
      if (w.role !== 'fim' && w.role !== 'chat') throw new ProtocolError(`cluster.placements[${i}].role must be "fim" or "chat"`);
      if (roles.has(w.role)) throw new ProtocolError(`two placements for role ${w.role}`);
      roles.add(w.role);
      if (typeof w.peer !== 'string' || !names.has(w.peer))
        throw new ProtocolError(`placement ${w.role}: peer ${JSON.stringify(w.peer)} is not one of the configured peers`);
      if (typeof w.model !== 'string' || !w.model) throw new ProtocolError(`placement ${w.role}: model must name a GGUF file in the peer's models folder`);
      if (w.args !== undefined && (!Array.isArray(w.args) || !w.args.every((a) => typeof a === 'string')))
        throw new ProtocolError(`placement ${w.role}: args must be an array of strings`);
      return { role: w.role, peer: w.peer, model: w.model, ...(w.args ? { args: [...(w.args as string[])] } : {}) };
    });
  }
  return cfg;
}
