import * as vscode from 'vscode';
import type { ClusterEvent, ClusterMode, ClusterStatus, PeerWithToken, PlacementWish, TransportMode } from '../../core/protocol';
import { DEFAULT_AGENT_PORT } from '../../cluster/protocol';
import { collectClusterReport, formatClusterReport, parseHostPort, PeerEntry, PeerReport, probePeer } from '../../cluster/report';
import { registerCommands } from '../commands';
import { strataSettings } from '../workspaceTrust';

// "Strata: Add Peer", "Strata: Show Cluster", "Strata: Remove Peer" and the cluster settings.
// Peers live in `strata.cluster.peers` (name, host, port, transport); their tokens in
// SecretStorage, never in settings. The sidecar runs the cluster (tunnels, split, failover);
// when the sidecar seam is wired, every change is pushed to it and its events are shown.
// Without it, Show Cluster still asks every peer directly and shows the split it would make.

export interface ClusterSidecarSeam {
  /** Pushes peers + tokens + mode to the sidecar (ClusterManager.configure); resolves with its status. */
  configure(cfg: { peers: PeerWithToken[]; mode: ClusterMode; placements?: PlacementWish[] }): Promise<ClusterStatus>;
  /** ClusterManager.refresh() in the sidecar. */
  status(): Promise<ClusterStatus>;
  /** ClusterManager.useReturnedPeers(). */
  useReturnedPeers(): Promise<ClusterStatus>;
  /** The sidecar's cluster events (peer down, replanned, returned, load failed). */
  onEvent(fn: (e: ClusterEvent) => void): vscode.Disposable;
  /** Fires when the window (re)connects to a daemon, which then knows no peers yet. */
  onConnected?(fn: () => void): vscode.Disposable;
}

export interface ClusterDeps {
  log: vscode.LogOutputChannel;
  /** Optional until the sidecar protocol carries cluster requests. */
  sidecar?: ClusterSidecarSeam;
  /** The model the split is shown for; default: the strata.model.path setting. */
  modelPath?: () => string | undefined;
  /** This machine's accelerators in llama.cpp's order (from the planner); default none (CPU). */
  localDevices?: () => Promise<Array<{ id: string; label: string; freeBytes: number }>>;
}

interface PeerSetting {
  name: string;
  host: string;
  port?: number;
  transport?: TransportMode;
  enabled?: boolean;
}

const SECRET_PREFIX = 'strata.cluster.peerToken.';

export function readPeerSettings(): PeerSetting[] {
  const raw = strataSettings('strata.cluster').get<unknown>('peers', []);
  if (!Array.isArray(raw)) return [];
  return raw.filter(
    (p): p is PeerSetting => !!p && typeof p === 'object' && typeof (p as PeerSetting).name === 'string' && typeof (p as PeerSetting).host === 'string',
  );
}

/** `strata.cluster.placement`: { fim?: {peer, model, args?}, chat?: {...} } → wishes for the daemon. */
export function readPlacements(): PlacementWish[] {
  const raw = strataSettings('strata.cluster').get<unknown>('placement', {});
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return [];
  const out: PlacementWish[] = [];
  for (const role of ['fim', 'chat'] as const) {
    const w = (raw as Record<string, unknown>)[role] as { peer?: unknown; model?: unknown; args?: unknown } | undefined;
    if (!w || typeof w !== 'object' || typeof w.peer !== 'string' || typeof w.model !== 'string' || !w.peer || !w.model) continue;
    out.push({ role, peer: w.peer, model: w.model, ...(Array.isArray(w.args) ? { args: w.args.map(String) } : {}) });
  }
  return out;
}

function clusterMode(): ClusterMode {
  const m = strataSettings('strata.cluster').get<string>('mode', 'auto');
  return m === 'off' || m === 'split' ? m : 'auto';
}

async function peersWithTokens(secrets: vscode.SecretStorage): Promise<PeerEntry[]> {
  return Promise.all(
    readPeerSettings().map(async (p) => ({
      name: p.name,
      host: p.host,
      port: p.port ?? DEFAULT_AGENT_PORT,
      transport: p.transport ?? 'tunnel',
      enabled: p.enabled !== false,
      token: await secrets.get(SECRET_PREFIX + p.name),
    })),
  );
}

export interface ClusterHandle {
  /** Resolves once the latest hand-over of peers to the sidecar settled (a load waits for it). */
  settled(): Promise<void>;
}

export function registerCluster(context: vscode.ExtensionContext, deps: ClusterDeps): ClusterHandle {
  const { log } = deps;
  const secrets = context.secrets;
  let latest: Promise<void> = Promise.resolve();

  const push = (): Promise<void> => (latest = pushNow());
  const pushNow = async (): Promise<void> => {
    if (!deps.sidecar) return;
    const peers = (await peersWithTokens(secrets)).filter((p): p is PeerEntry & { token: string } => !!p.token);
    // A placement on a peer that is not (or no longer) configured would be refused as a whole.
    const placements = readPlacements().filter((w) => peers.some((p) => p.name === w.peer));
    try {
      await deps.sidecar.configure({
        peers: peers.map((p) => ({ name: p.name, host: p.host, port: p.port, transport: p.transport, enabled: p.enabled, token: p.token })),
        mode: clusterMode(),
        placements,
      });
    } catch (e) {
      log.warn(`cluster: could not hand the peers to the sidecar: ${(e as Error).message}`);
    }
  };

  context.subscriptions.push(
    ...registerCommands('cluster', {
      'strata.cluster.addPeer': () =>
        addPeer(secrets, log).then(async (r) => {
          if (r) await push();
          return r?.peer.name;
        }),
      'strata.cluster.removePeer': (name?: string) =>
        removePeer(secrets, log, name).then(async (r) => {
          await push();
          return r;
        }),
      'strata.cluster.show': () => showCluster(secrets, deps),
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('strata.cluster')) void push();
    }),
    secrets.onDidChange((e) => {
      if (e.key.startsWith(SECRET_PREFIX)) void push();
    }),
  );
  if (deps.sidecar) {
    context.subscriptions.push(deps.sidecar.onEvent((e) => void announce(e, deps)));
    if (deps.sidecar.onConnected) context.subscriptions.push(deps.sidecar.onConnected(() => void push()));
    void push();
  }
  return { settled: () => latest };
}

/** Sidecar events a user must hear about. */
async function announce(e: ClusterEvent, deps: ClusterDeps): Promise<void> {
  deps.log.info(`cluster: ${e.message}`);
  if (e.kind === 'peer-down' || e.kind === 'load-failed') {
    const pick = await vscode.window.showWarningMessage(`Strata: ${e.message}`, 'Show Cluster');
    if (pick) await vscode.commands.executeCommand('strata.cluster.show');
  } else if (e.kind === 'placement-failed') {
    void vscode.window.showWarningMessage(`Strata: ${e.message}`);
  } else if (e.kind === 'peer-returned' && deps.sidecar) {
    const pick = await vscode.window.showInformationMessage(`Strata: peer ${e.peer} is back.`, 'Use It Again', 'Show Cluster');
    if (pick === 'Use It Again') await deps.sidecar.useReturnedPeers();
    else if (pick) await vscode.commands.executeCommand('strata.cluster.show');
  }
}

async function addPeer(secrets: vscode.SecretStorage, log: vscode.LogOutputChannel): Promise<PeerReport | undefined> {
  const where = await vscode.window.showInputBox({
    title: 'Strata: Add Peer (1/3)',
    prompt: `Address of the machine running strata-peer: host or host:port (port ${DEFAULT_AGENT_PORT} unless changed)`,
    placeHolder: '192.168.1.42 or box2.local:7399',
    ignoreFocusOut: true,
    validateInput: (v) => (parseHostPort(v) ? undefined : 'Enter a host name or address, optionally with :port'),
  });
  if (!where) return undefined;
  const hp = parseHostPort(where)!;
  const existing = readPeerSettings();
  const name = await vscode.window.showInputBox({
    title: 'Strata: Add Peer (2/3)',
    prompt: 'A short name for this peer (shown in the cluster view and in messages)',
    // The first label of a host name; nothing to suggest for an IP address.
    value: /^[\d.]+$|:/.test(hp.host) ? '' : hp.host.split('.')[0] || hp.host,
    ignoreFocusOut: true,
    validateInput: (v) =>
      !/^[\w.-]{1,40}$/.test(v)
        ? 'Letters, digits, dots, dashes and underscores'
        : existing.some((p) => p.name === v && p.host !== hp.host)
          ? 'Another peer has this name'
          : undefined,
  });
  if (!name) return undefined;
  const token = await vscode.window.showInputBox({
    title: 'Strata: Add Peer (3/3)',
    prompt: "The peer's token: run `strata-peer token` on that machine and paste what it prints",
    password: true,
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim().length >= 16 ? undefined : 'A token is at least 16 characters (strata-peer tokens start with sp1_)'),
  });
  if (!token) return undefined;
  const entry: PeerEntry = { name, host: hp.host, port: hp.port, transport: 'tunnel', token: token.trim() };
  const report = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Strata: connecting to ${name} (${hp.host}:${hp.port})…`, cancellable: true },
    async (_p, cancel) => {
      const r = probePeer(entry, { timeoutMs: 8000 });
      return Promise.race([r, new Promise<undefined>((res) => cancel.onCancellationRequested(() => res(undefined)))]);
    },
  );
  if (!report) return undefined;
  if (!report.reachable) {
    const pick = await vscode.window.showErrorMessage(`Strata: ${report.problem}`, 'Save Anyway', 'Cancel');
    if (pick !== 'Save Anyway') return undefined;
  }
  if (report.info?.agent.directAllowed) {
    const pick = await vscode.window.showQuickPick(
      [
        {
          label: 'Tunnel',
          description: 'recommended',
          detail: "Authenticated and encrypted; rpc-server stays on the peer's loopback.",
          mode: 'tunnel' as const,
        },
        {
          label: 'Direct',
          description: 'trusted, isolated networks only',
          detail:
            'llama-server talks to rpc-server on the LAN with no authentication and no encryption: anyone on the network can read or alter the computation and crash the peer.',
          mode: 'direct' as const,
        },
      ],
      { title: `How should ${name} be reached?`, ignoreFocusOut: true },
    );
    if (!pick) return undefined;
    if (pick.mode === 'direct') {
      const ok = await vscode.window.showWarningMessage(
        `Direct mode sends model weights and activations to ${name} unencrypted, and its rpc-server accepts anyone on the network. Use it only on a network you fully trust.`,
        { modal: true },
        'Use Direct Mode',
      );
      if (ok !== 'Use Direct Mode') return undefined;
      entry.transport = 'direct';
    }
  }
  await secrets.store(SECRET_PREFIX + name, entry.token!);
  const peers = readPeerSettings().filter((p) => p.name !== name);
  peers.push({ name, host: hp.host, port: hp.port, transport: entry.transport });
  await strataSettings('strata.cluster').update('peers', peers, vscode.ConfigurationTarget.Global);
  const devices = report.info?.devices.map((d) => `${d.name} ${(d.freeBytes / 1024 ** 3).toFixed(1)} GiB free`).join(', ');
  log.info(`cluster: added peer ${name} (${hp.host}:${hp.port}, ${entry.transport})${devices ? `: ${devices}` : ''}`);
  // A model already running here keeps running as planned; a restart plans it again with this peer.
  void vscode.window
    .showInformationMessage(
      report.reachable
        ? `Strata: ${name} added${devices ? ` (${devices})` : ''}. A model already loaded uses it after "Restart Server".`
        : `Strata: ${name} saved; it is not reachable now (${report.problem}).`,
      'Restart Server',
      'Show Cluster',
    )
    .then((p) => {
      if (p === 'Restart Server') void vscode.commands.executeCommand('strata.server.restart');
      else if (p) void vscode.commands.executeCommand('strata.cluster.show');
    });
  return { ...report, peer: { ...entry, token: undefined } };
}

async function removePeer(secrets: vscode.SecretStorage, log: vscode.LogOutputChannel, name?: string): Promise<string | undefined> {
  const peers = readPeerSettings();
  const pick =
    name ??
    (
      await vscode.window.showQuickPick(
        peers.map((p) => ({ label: p.name, description: `${p.host}:${p.port ?? DEFAULT_AGENT_PORT}` })),
        { title: 'Strata: Remove Peer' },
      )
    )?.label;
  if (!pick) return undefined;
  await strataSettings('strata.cluster').update(
    'peers',
    peers.filter((p) => p.name !== pick),
    vscode.ConfigurationTarget.Global,
  );
  await secrets.delete(SECRET_PREFIX + pick);
  log.info(`cluster: removed peer ${pick}`);
  return pick;
}

type ClusterItem = vscode.QuickPickItem & { action?: 'add' | 'use-returned' | 'settings'; peer?: string };

async function showCluster(secrets: vscode.SecretStorage, deps: ClusterDeps): Promise<string[]> {
  const peers = await peersWithTokens(secrets);
  if (!peers.length) {
    const pick = await vscode.window.showInformationMessage(
      'Strata: no peers yet. A peer is another machine running `strata-peer` that lends its accelerators.',
      'Add Peer',
    );
    if (pick) await vscode.commands.executeCommand('strata.cluster.addPeer');
    return [];
  }
  const modelPath = deps.modelPath?.() ?? (strataSettings('strata.model').get<string>('path', '') || undefined);
  const ctx = strataSettings('strata.server').get<number>('contextSize', 8192);
  const mode = clusterMode();
  const got = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Strata: asking the peers…', cancellable: true },
    async (_p, cancel) =>
      Promise.race([
        Promise.all([
          deps
            .localDevices?.()
            .then((localDevices) => collectClusterReport(peers, { modelPath, ctx, mode: mode === 'split' ? 'split' : 'auto', localDevices })) ??
            collectClusterReport(peers, { modelPath, ctx, mode: mode === 'split' ? 'split' : 'auto' }),
          deps.sidecar?.status().catch(() => undefined),
        ] as const),
        new Promise<undefined>((res) => cancel.onCancellationRequested(() => res(undefined))),
      ]),
  );
  if (!got) return [];
  const [report, sidecar] = got;
  const lines = formatClusterReport(report);
  deps.log.info(`cluster:\n  ${lines.join('\n  ')}`);
  const GiB = 1024 ** 3;
  const items: ClusterItem[] = [];
  const summary = report.plan ? report.plan.summary : report.planProblem;
  if (summary)
    items.push(
      { label: report.model ?? 'No model', kind: vscode.QuickPickItemKind.Separator },
      { label: `$(layers) ${summary}`, detail: report.plan?.lines.join(' · ') },
    );
  items.push({ label: 'Peers', kind: vscode.QuickPickItemKind.Separator });
  for (const p of report.peers) {
    const live = sidecar?.peers.find((x) => x.name === p.peer.name);
    const icon = !p.reachable ? '$(error)' : p.problem ? '$(warning)' : live?.inUse ? '$(vm-running)' : '$(vm)';
    const desc = [
      `${p.peer.host}:${p.peer.port}`,
      p.peer.transport,
      p.latencyMs !== undefined ? `${p.latencyMs.toFixed(1)} ms` : undefined,
      p.info ? `agent ${p.info.agent.version}` : undefined,
      p.info?.rpc.version ? `RPC ${p.info.rpc.version}` : undefined,
      live?.inUse ? 'in use' : undefined,
      live?.returned ? 'back: offered' : undefined,
    ]
      .filter(Boolean)
      .join(' · ');
    const devs = p.info?.devices.map((d) => `${d.name} ${(d.freeBytes / GiB).toFixed(1)}/${(d.totalBytes / GiB).toFixed(1)} GiB free`).join(', ');
    const detail = p.reachable ? [devs, p.layers ? `would hold ${p.layers}` : 'no layers in this plan', p.problem].filter(Boolean).join(' · ') : p.problem;
    items.push({ label: `${icon} ${p.peer.name}`, description: desc, detail, peer: p.peer.name });
  }
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
  if (sidecar?.peers.some((p) => p.returned)) items.push({ label: '$(debug-restart) Use Returned Peers', action: 'use-returned' });
  items.push({ label: '$(add) Add Peer…', action: 'add' }, { label: '$(gear) Cluster Settings', action: 'settings' });
  const pick = await vscode.window.showQuickPick(items, { title: `Strata: Cluster (${mode})`, matchOnDescription: true, matchOnDetail: true });
  if (pick?.action === 'add') await vscode.commands.executeCommand('strata.cluster.addPeer');
  else if (pick?.action === 'settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'strata.cluster');
  else if (pick?.action === 'use-returned') await deps.sidecar?.useReturnedPeers();
  else if (pick?.peer) {
    const what = await vscode.window.showQuickPick(['Test Again', 'Remove Peer'], { title: pick.peer });
    if (what === 'Remove Peer') await vscode.commands.executeCommand('strata.cluster.removePeer', pick.peer);
    else if (what === 'Test Again') await vscode.commands.executeCommand('strata.cluster.show');
  }
  return lines;
}

export type { PeerReport };
