// What a window and the daemon say to each other about the cluster: the peers and mode a window
// configures, and the status and events the daemon reports back. Plain data like the rest of the
// protocol; src/cluster implements it (sidecar/clusterManager.ts, sidecar/peerLink.ts) and the
// peer protocol (src/cluster/protocol.ts) carries the device and server shapes from here.

/** How llama-server reaches a peer's rpc-server: through the authenticated tunnel, or directly on the LAN. */
export type TransportMode = 'tunnel' | 'direct';

export interface PeerConfig {
  name: string;
  host: string;
  port: number;
  transport: TransportMode;
  /** Not used for loads (still shown). Default true. */
  enabled?: boolean;
}

export interface PeerWithToken extends PeerConfig {
  token: string;
}

export type PeerPhase = 'connecting' | 'up' | 'down' | 'auth-failed' | 'incompatible' | 'disabled';

export interface PeerDevice {
  /** Index on that rpc-server; llama-server names it RPC<index>[endpoint]. */
  index: number;
  /** Backend device name on the peer, e.g. "CUDA0", "Vulkan0", "CPU". */
  name: string;
  description: string;
  freeBytes: number;
  totalBytes: number;
}

export interface PlacedServerState {
  role: string;
  phase: 'loading' | 'ready' | 'failed' | 'stopped';
  model: string;
  /** The API key llama-server requires (the sidecar hands it to the windows). */
  apiKey?: string;
  error?: string;
}

export type ClusterMode = 'off' | 'auto' | 'split';

export interface ClusterConfig {
  peers: PeerWithToken[];
  /** off: never use peers; auto: only when the model does not fit here; split: always spread. Default auto. */
  mode?: ClusterMode;
  /** This machine's accelerators in llama.cpp's order (from the planner); none: CPU only. */
  localDevices?: Array<{ id: string; label: string; freeBytes: number }>;
  /** This machine's free RAM, for CPU layers. Default: what the OS says now. */
  hostFreeBytes?: number;
  /** Placement mode: whole models on peers for a role; completion and chat then go there. */
  placements?: PlacementWish[];
}

/** Roles the windows route to a placed server. */
export type PlacementRole = 'fim' | 'chat';

export interface PlacementWish {
  role: PlacementRole;
  /** A configured peer's name. */
  peer: string;
  /** A GGUF file name in that peer's --models-dir. */
  model: string;
  /** Model-shaping llama-server flags (the agent accepts a fixed list). */
  args?: string[];
}

export interface PlacementStatus {
  role: PlacementRole;
  peer: string;
  model: string;
  /** starting: asked the agent; ready: url answers; down: the peer is away (windows use the local server). */
  phase: 'starting' | 'ready' | 'down' | 'failed';
  since: number;
  /** A loopback tunnel endpoint on this machine, present while ready. */
  url?: string;
  /** The placed llama-server's API key (only ever sent to authenticated windows). */
  apiKey?: string;
  error?: string;
}

export interface PeerStatus {
  name: string;
  host: string;
  port: number;
  transport: TransportMode;
  enabled: boolean;
  phase: PeerPhase;
  reason?: string;
  since: number;
  latencyMs?: number;
  agentVersion?: string;
  rpcVersion?: string;
  devices: PeerDevice[];
  hostMemory?: { totalBytes: number; freeBytes: number };
  /** What llama-server's --rpc uses for this peer (a loopback tunnel port, or the peer's own address in direct mode). */
  endpoint?: string;
  /** Holds layers of the running model. */
  inUse: boolean;
  /** Was dropped from the plan while down, answers again: offered back (useReturnedPeers). */
  returned: boolean;
  servers: PlacedServerState[];
  /** Layers it would hold (or holds), from the last plan. */
  layers?: string;
}

export interface ClusterEvent {
  at: number;
  kind: 'peer-down' | 'replanned' | 'peer-returned' | 'load-failed' | 'peer-excluded' | 'placed' | 'placement-failed' | 'placement-down';
  role?: PlacementRole;
  peer?: string;
  message: string;
}

export interface ClusterStatus {
  mode: ClusterMode;
  peers: PeerStatus[];
  plan?: { summary: string; lines: string[]; peersUsed: string[]; args: string[]; model: string; layers: Record<string, string> };
  placements: PlacementStatus[];
  events: ClusterEvent[];
}
