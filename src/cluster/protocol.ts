// What the sidecar (or the extension, for "Show Cluster") and a peer agent say to each other
// once the secure channel is up. The first line a client sends names what the connection is for:
//
//   {"open":"control"}            newline-delimited JSON requests/responses/events
//   {"open":"rpc"}                a tunnel to the agent's rpc-server (started on demand)
//   {"open":"server","role":R}    a tunnel to the llama-server the agent runs for role R (placement)
//
// and the agent answers one line, {"ok":true} or {"ok":false,"error":"..."}; after that a tunnel
// carries raw bytes. Control requests are {id, op, params}; answers {id, ok, result|error};
// events {event, data}.

import type { PeerDevice, PlacedServerState, TransportMode } from '../core/protocol';

// Defined in the window protocol, which carries them in ClusterStatus; re-exported for the agent's side.
export type { PeerDevice, PlacedServerState, TransportMode };

/**
 * Bump on incompatible changes to the messages below. Both sides send it with every connection
 * and compare (versionCheck.ts): the agent is copied to its machine once, so an updated Strata
 * meeting an old strata-peer is the usual case, not a rare one.
 */
export const PEER_PROTOCOL_VERSION = 1;

/** The Strata release this code came with: the agent and the sidecar are one build. */
export const STRATA_VERSION = '0.1.0';

/** Default TCP port of the peer agent. */
export const DEFAULT_AGENT_PORT = 7399;
/** Default port of rpc-server in direct mode (llama.cpp's own default). */
export const DEFAULT_DIRECT_RPC_PORT = 50052;

export type OpenRequest = ({ open: 'control' } | { open: 'rpc' } | { open: 'server'; role: string }) & {
  /** The client's heartbeat interval: the agent waits at least 3 of them before calling it dead. */
  heartbeatMs?: number;
  /** The client's PEER_PROTOCOL_VERSION (every client so far sends it). */
  protocolVersion?: number;
  /** The client's STRATA_VERSION, for messages. */
  strataVersion?: string;
};

/**
 * The agent's one-line answer to an OpenRequest. protocolVersion and agentVersion are in every
 * answer since they were added; an agent that sends neither speaks protocol 1.
 */
export interface OpenAnswer {
  ok: boolean;
  error?: string;
  /** 'version' when the agent refused because the protocol versions differ. */
  code?: 'version';
  heartbeatMs?: number;
  protocolVersion?: number;
  agentVersion?: string;
}

export interface RpcServerState {
  running: boolean;
  mode?: TransportMode;
  /** Where rpc-server listens on the peer (127.0.0.1 in tunnel mode). */
  host?: string;
  port?: number;
  pid?: number;
  /** RPC protocol version rpc-server reported, e.g. "7.0.0". */
  version?: string;
  binary?: string;
  /** A client (llama-server) is connected: memory figures are from before it. */
  busy: boolean;
  /** Open tunnels to it. */
  tunnels: number;
  cacheDir?: string;
  /** Epoch ms of the device figures. */
  probedAt?: number;
  /** Why it is not running, when it failed. */
  error?: string;
}

export interface AgentInfo {
  agent: {
    version: string;
    protocolVersion: number;
    hostname: string;
    platform: string;
    pid: number;
    uptimeS: number;
    /** Direct mode allowed by the agent's owner (--allow-direct). */
    directAllowed: boolean;
    /** Placement allowed (--models-dir given). */
    placementAllowed: boolean;
  };
  rpc: RpcServerState;
  devices: PeerDevice[];
  host: { totalMemBytes: number; freeMemBytes: number; cpus: number };
  servers: PlacedServerState[];
  /** Model files the agent may serve in placement mode (names relative to its models dir). */
  models?: Array<{ name: string; bytes: number }>;
}

export interface ControlOps {
  info: [{ refresh?: boolean }, AgentInfo];
  ping: [{ t: number }, { t: number; agentTime: number }];
  /** Starts rpc-server (if needed) in this mode and holds it while this connection lives. */
  'rpc.start': [{ mode: TransportMode }, RpcServerState];
  'rpc.stop': [Record<string, never>, RpcServerState];
  /** Placement: a whole llama-server on the peer for a role; resolves when it is ready. */
  'server.start': [{ role: string; model: string; args?: string[] }, PlacedServerState];
  'server.stop': [{ role: string }, PlacedServerState];
}

export type ControlOp = keyof ControlOps;

export interface ControlRequest {
  id: number;
  op: ControlOp;
  params: Record<string, unknown>;
}
export type ControlResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
export interface ControlEvent {
  event: 'rpc' | 'server';
  data: unknown;
}
