import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { strataCacheDir, strataStateDir } from '../../core/paths';
import { samePlan, ServerPlan, ServerStatus, SidecarStatus } from '../../core/protocol';
import { connectOrStartSidecar, isLockLive, readSidecarLock, SidecarClient, SidecarError, SidecarIncompatibleError } from '../../core/sidecar';
import { describeDevices, inspectLlamaServer, listInstalledBuilds, LlamaServerInfo } from '../../sidecar/installer';
import { ServerConnectionSource } from '../serverConnectionSource';
import { SidecarReport, StatusBar } from '../serverStatus';
import { findServerFor } from './binary';
import { ModelPlanProvider, ModelSettingError, NoServerBinaryError, PlanContext, ResolvedBinary, ServerSettings, settingsPlanProvider } from './plan';
import { affectsServerSettings, daemonConfigFromEnv, readServerSettings } from './settings';
import { Activity, Problem } from './statusView';
import { chooseServerBinary } from '../walkthrough/choosers';
import { ACTIONS } from '../walkthrough/nextSteps';

// The window's side of the sidecar: connects to the one daemon of this user (starting it when
// this window has a model to load), asks it for the model this window's settings name, follows
// its status into the status bar and into the ServerConnectionSource that completion and chat
// read, and carries out Start / Stop / Restart. Errors are said once, in one sentence, with the
// action that fixes them; nothing here throws at a keystroke.

const METRICS_EVERY_MS = 10_000;

export const NO_MODEL_MESSAGE = 'No model chosen: pick one that fits this machine with "Strata: Switch Model" (it sets "strata.model.path").';

export interface SidecarControllerOptions {
  context: vscode.ExtensionContext;
  log: vscode.LogOutputChannel;
  source: ServerConnectionSource;
  statusBar: StatusBar;
  /** The seam for the model catalog/planner; default: `strata.model.path`. */
  planProvider?: ModelPlanProvider;
}

export class SidecarController implements vscode.Disposable {
  readonly stateDir = strataStateDir();
  private client?: SidecarClient;
  private connecting?: Promise<SidecarClient | undefined>;
  private settings: ServerSettings = readServerSettings();
  private plan?: ServerPlan;
  private binary?: ResolvedBinary;
  private binaryInfo?: LlamaServerInfo;
  private problem?: Problem;
  private activity?: Activity;
  private lastError?: string;
  private userStopped = false;
  private tokPerSec?: number;
  private loading?: Promise<void>;
  private metricsTimer?: NodeJS.Timeout;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly saidOnce = new Set<string>();
  private planProvider: ModelPlanProvider;
  private disposed = false;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires on every state change (status bar, tests). */
  readonly onDidChange = this.changed.event;
  private readonly connectedEmitter = new vscode.EventEmitter<SidecarStatus>();
  /** Fires on every (re)connection to a daemon: a new daemon knows nothing this window told the old one. */
  readonly onDidConnect = this.connectedEmitter.event;

  constructor(private readonly opts: SidecarControllerOptions) {
    this.planProvider = opts.planProvider ?? settingsPlanProvider;
    opts.source.setDemand(() => this.demand());
    this.disposables.push(
      this.changed,
      this.connectedEmitter,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (affectsServerSettings(e)) void this.onSettingsChanged();
      }),
    );
  }

  private loadGate?: () => Promise<void>;

  /** Awaited after connecting and before every load (the cluster hands its peers over there). */
  setLoadGate(gate: (() => Promise<void>) | undefined): void {
    this.loadGate = gate;
  }

  /** For the model catalog (issue 6): replace how plans are made, then re-plan. */
  async setPlanProvider(provider: ModelPlanProvider): Promise<void> {
    this.planProvider = provider;
    await this.onSettingsChanged();
  }

  get status(): SidecarStatus | undefined {
    return this.client?.lastKnownStatus;
  }

  get currentPlan(): ServerPlan | undefined {
    return this.plan;
  }

  get settingsNow(): ServerSettings {
    return this.settings;
  }

  /** What keeps this window from loading its model, if anything. */
  get problemNow(): Problem | undefined {
    return this.problem;
  }

  /** The llama-server this window would run (with or without a model), if one was found. */
  get binaryNow(): ResolvedBinary | undefined {
    return this.binary;
  }

  get sidecarClient(): SidecarClient | undefined {
    return this.client;
  }

  /** At activation: plan, then connect (start the daemon only if there is a model to load), then load. */
  async activate(): Promise<void> {
    await this.refreshPlan();
    this.watchLock();
    const live = this.lockLive();
    if (this.plan && this.settings.autoStart) {
      await this.connect(true);
      void this.load();
    } else if (live) {
      await this.connect(false);
    }
    this.render();
  }

  // ---- plan ----

  private async refreshPlan(): Promise<void> {
    this.settings = readServerSettings();
    let resolved: ResolvedBinary | undefined;
    const ctx: PlanContext = {
      settings: this.settings,
      resolveBinary: (modelPath) => {
        const r = findServerFor(this.settings, modelPath, { stateDir: this.stateDir });
        if (!r.found) throw new NoServerBinaryError(r);
        resolved = r.found;
        return r.found;
      },
    };
    const before = this.binary?.path;
    try {
      this.plan = await this.planProvider(ctx);
      if (this.plan) {
        this.binary = resolved?.path === this.plan.binaryPath ? resolved : { path: this.plan.binaryPath, kind: 'setting' };
        // Problems of the plan are solved; those of the daemon or of another window's model are not.
        if (this.problem?.kind !== 'sidecar' && this.problem?.kind !== 'busy') this.problem = undefined;
      } else {
        // No model: still say which llama-server would run, for the status report.
        this.binary = findServerFor(this.settings, undefined, { stateDir: this.stateDir }).found;
        this.problem = { kind: 'no-model', message: NO_MODEL_MESSAGE };
      }
    } catch (e) {
      this.plan = undefined;
      if (e instanceof NoServerBinaryError) {
        this.binary = undefined;
        this.problem = { kind: 'no-binary', message: e.message };
      } else if (e instanceof ModelSettingError) {
        this.problem = { kind: 'bad-setting', message: e.message };
      } else {
        this.problem = { kind: 'bad-setting', message: `Strata could not decide what to run: ${(e as Error).message}` };
      }
    }
    if (this.problem) this.sayOnce(`problem:${this.problem.message}`, () => this.opts.log.warn(this.problem!.message));
    if (this.binary?.path !== before) {
      this.binaryInfo = undefined;
      if (this.binary) void this.inspectBinary(this.binary.path);
    }
    this.render();
  }

  private async inspectBinary(p: string): Promise<void> {
    const info = await inspectLlamaServer(p).catch(() => undefined);
    if (!info || this.binary?.path !== p) return;
    this.binaryInfo = info;
    this.opts.log.info(`llama-server ${p} (${this.binary.kind}${this.binary.buildId ? ` ${this.binary.buildId}` : ''}): ${info.version ?? '?'}; ${describeDevices(info)}${info.error ? `; ${info.error}` : ''}`);
    this.render();
  }

  private async onSettingsChanged(): Promise<void> {
    const old = this.plan;
    await this.refreshPlan();
    const running = this.status?.server;
    const ours = old && running?.plan && samePlan(running.plan, old) && ['loading', 'ready', 'restarting'].includes(running.phase);
    if (!this.plan) {
      if (ours && this.client) {
        this.opts.log.info('the model setting was cleared: unloading the model this window had loaded');
        await this.client.unload().catch((e: Error) => this.opts.log.warn(`unload: ${e.message}`));
      }
      return;
    }
    if (old && samePlan(old, this.plan) && running && running.phase !== 'stopped' && running.phase !== 'failed') return;
    if (ours) {
      this.opts.log.info(`settings changed: switching llama-server to ${this.plan.label ?? this.plan.modelPath}`);
      await this.switchTo(this.plan);
    } else if (this.settings.autoStart && !this.userStopped) {
      await this.load();
    }
  }

  /**
   * Re-plan after an install or a benchmark changed which binary is best. A server running this
   * window's old plan switches to the new one; otherwise a server is loaded only when `load` says
   * so (it was unloaded for the operation) or autoStart wants one.
   */
  async replanAndReload(opts: { load?: boolean } = {}): Promise<void> {
    const old = this.plan;
    await this.refreshPlan();
    if (!this.plan) return;
    const running = this.status?.server;
    if (running?.plan && old && samePlan(running.plan, old) && !samePlan(old, this.plan) && running.phase !== 'stopped') {
      await this.switchTo(this.plan);
    } else if (!this.userStopped && (opts.load ?? this.settings.autoStart)) {
      await this.load();
    }
  }

  // ---- daemon connection ----

  private lockLive(): boolean {
    const lock = readSidecarLock(this.stateDir);
    return !!lock && isLockLive(lock);
  }

  /** Another window may start the daemon later: join it then. */
  private watchLock(): void {
    try {
      fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    } catch {
      /* the launcher reports it */
    }
    const w = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(this.stateDir), 'sidecar.lock'));
    const on = () => {
      if (!this.client && !this.connecting && this.lockLive()) void this.connect(false);
    };
    this.disposables.push(w, w.onDidCreate(on), w.onDidChange(on));
  }

  async connect(startIfNeeded: boolean, forceReplace = false): Promise<SidecarClient | undefined> {
    if (this.client) return this.client;
    if (this.connecting) return this.connecting;
    if (!startIfNeeded && !this.lockLive()) return undefined;
    this.connecting = (async () => {
      this.render();
      const log = this.opts.log;
      try {
        const client = await connectOrStartSidecar({
          sidecarScript: this.opts.context.asAbsolutePath(path.join('dist', 'sidecar.js')),
          stateDir: this.stateDir,
          clientName: `VS Code window (extension host pid ${process.pid})`,
          daemonConfig: daemonConfigFromEnv(process.env, (m) => log.warn(m)),
          forceReplace,
          log: (m) => log.debug(`sidecar: ${m}`),
        });
        if (this.disposed) {
          client.close();
          return undefined;
        }
        this.wire(client);
        this.client = client;
        if (this.problem?.kind === 'sidecar') this.problem = undefined;
        this.onConnected(client.lastKnownStatus);
        return client;
      } catch (e) {
        if (e instanceof SidecarIncompatibleError && !forceReplace) {
          const pick = await vscode.window.showWarningMessage(`Strata: ${e.message}`, 'Replace Now');
          if (pick === 'Replace Now') {
            this.connecting = undefined;
            return this.connect(startIfNeeded, true);
          }
        }
        const msg = e instanceof SidecarError ? e.message : `The Strata sidecar could not be started: ${(e as Error).message}; see ${path.join(this.stateDir, 'sidecar.log')}.`;
        this.problem = { kind: 'sidecar', message: msg };
        log.error(msg);
        return undefined;
      } finally {
        this.connecting = undefined;
        this.render();
      }
    })();
    return this.connecting;
  }

  private wire(c: SidecarClient): void {
    c.on('status', (s) => this.onStatus(s));
    c.on('progress', () => this.render());
    c.on('connected', (s) => this.onConnected(s));
    c.on('disconnected', (e) => {
      this.opts.source.setLive(undefined);
      // The tunnels to placed servers live in the daemon too.
      this.opts.source.setPlaced('fim', undefined);
      this.opts.source.setPlaced('chat', undefined);
      this.opts.log.warn(e.message);
      this.render();
    });
    c.on('warning', (e) => this.opts.log.debug(`sidecar: ${e.message}`));
  }

  private onConnected(s: SidecarStatus | undefined): void {
    if (!s) return;
    this.opts.log.info(`connected to the Strata sidecar pid ${s.daemon.pid} (${s.daemon.clients} window${s.daemon.clients === 1 ? '' : 's'}); logs:`);
    this.opts.log.info(`  sidecar log: ${vscode.Uri.file(s.daemon.logFile).toString()}`);
    this.opts.log.info(`  llama-server log: ${vscode.Uri.file(s.daemon.serverLogFile).toString()}`);
    this.onStatus(s);
    this.connectedEmitter.fire(s);
  }

  private lastPhase?: string;

  private onStatus(s: SidecarStatus): void {
    const sv = s.server;
    this.opts.source.setLive(sv.phase === 'ready' && sv.endpoint ? { url: sv.endpoint.url, apiKey: sv.endpoint.apiKey, model: sv.endpoint.model, pid: sv.endpoint.pid } : undefined);
    this.followPlacements(s);
    const key = `${sv.phase}:${sv.pid ?? ''}`;
    if (key !== this.lastPhase) {
      this.lastPhase = key;
      this.logPhase(sv);
    }
    if (sv.phase === 'ready') this.startMetrics();
    else this.stopMetrics();
    if (sv.phase === 'ready' || sv.phase === 'loading') this.lastError = undefined;
    this.render();
  }

  private placedKey = '';

  /** Placement mode: completions or chat go to a whole model on a peer while the sidecar says it is ready. */
  private followPlacements(s: SidecarStatus): void {
    const placements = s.cluster?.placements ?? [];
    for (const role of ['fim', 'chat'] as const) {
      const p = placements.find((x) => x.role === role && x.phase === 'ready' && x.url && x.apiKey !== undefined);
      this.opts.source.setPlaced(role, p ? { url: p.url!, apiKey: p.apiKey!, model: `${p.model} on ${p.peer}` } : undefined);
    }
    const key = placements.map((p) => `${p.role}:${p.peer}:${p.phase}`).join(',');
    if (key === this.placedKey) return;
    this.placedKey = key;
    for (const p of placements) {
      const what = p.role === 'fim' ? 'completions' : 'chat';
      if (p.phase === 'ready') this.opts.log.info(`${what}: ${p.model} on peer ${p.peer} (${p.url})`);
      else if (p.phase === 'down' || p.phase === 'failed') this.opts.log.warn(`${what}: ${p.error ?? `peer ${p.peer} is ${p.phase}`}`);
    }
  }

  private logPhase(sv: ServerStatus): void {
    const log = this.opts.log;
    switch (sv.phase) {
      case 'ready':
        log.info(`llama-server ready: ${sv.label ?? ''} at ${sv.endpoint?.url} (pid ${sv.pid})`);
        break;
      case 'loading':
        log.info(`loading ${sv.label ?? 'the model'}${sv.pid ? ` (llama-server pid ${sv.pid})` : ''}`);
        break;
      case 'failed':
        log.error(`llama-server failed: ${sv.error?.message ?? '?'}`);
        for (const l of sv.error?.logTail ?? []) log.error(`  | ${l}`);
        break;
      case 'restarting':
        log.warn(`llama-server stopped unexpectedly (crash ${sv.crashes}); the sidecar restarts it`);
        break;
      case 'stopped':
        log.info(`llama-server stopped${sv.stoppedReason ? ` (${sv.stoppedReason})` : ''}`);
        break;
      default:
        break;
    }
  }

  private startMetrics(): void {
    if (this.metricsTimer) return;
    const poll = async () => {
      const c = this.client;
      if (!c?.connected || this.status?.server.phase !== 'ready') return;
      try {
        const m = await c.metrics();
        const tps = m.server.predicted_tokens_seconds;
        if (typeof tps === 'number' && tps > 0 && tps !== this.tokPerSec) {
          this.tokPerSec = tps;
          this.render();
        }
      } catch {
        /* the next poll may work */
      }
    };
    this.metricsTimer = setInterval(() => void poll(), METRICS_EVERY_MS);
    void poll();
  }

  private stopMetrics(): void {
    clearInterval(this.metricsTimer);
    this.metricsTimer = undefined;
  }

  // ---- actions ----

  /**
   * Loads this window's plan (joins it if it runs already). Never throws. With `notify` (a user
   * command), the load shows in a progress notification whose Cancel stops it.
   */
  async load(opts: { replace?: boolean; notify?: boolean } = {}): Promise<void> {
    if (this.loading && !opts.replace) return this.loading;
    if (this.loading) await this.loading;
    const plan = this.plan;
    if (!plan) {
      this.render();
      return;
    }
    const run = async (): Promise<void> => {
      const client = await this.connect(true);
      if (!client) return;
      // The daemon must know the peers before it plans a load that may need them.
      await this.loadGate?.().catch((e: Error) => this.opts.log.warn(`before loading: ${e.message}`));
      if (this.problem?.kind === 'busy') this.problem = undefined;
      this.lastError = undefined;
      try {
        if (opts.replace) await client.switchModel(plan);
        else await client.ensureReady(plan);
      } catch (e) {
        this.onLoadError(e as Error, plan);
      }
    };
    const label = plan.label ?? path.basename(plan.modelPath);
    this.loading = (opts.notify ? this.withLoadProgress(label, run) : run()).finally(() => {
      this.loading = undefined;
      this.render();
    });
    return this.loading;
  }

  private withLoadProgress(label: string, run: () => Promise<void>): Promise<void> {
    return Promise.resolve(vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Strata: loading ${label}`, cancellable: true },
      async (progress, token) => {
        let last = 0;
        const onProgress = (p: { kind: string; fraction?: number; stage?: string }) => {
          if (p.kind !== 'load' || p.fraction === undefined) return;
          const pct = Math.floor(p.fraction * 100);
          progress.report({ message: `${pct}%${p.stage ? ` (${p.stage})` : ''}`, increment: Math.max(0, pct - last) });
          last = Math.max(last, pct);
        };
        const c = this.client;
        c?.on('progress', onProgress);
        const cancel = token.onCancellationRequested(() => {
          this.opts.log.info(`loading ${label} cancelled`);
          void this.stopServer();
        });
        try {
          await run();
        } finally {
          c?.off('progress', onProgress);
          cancel.dispose();
        }
      },
    ));
  }

  private onLoadError(e: Error, plan: ServerPlan): void {
    const code = (e as SidecarError).code;
    if (code === 'busy') {
      const other = this.status?.server.label ?? 'Another model';
      this.problem = { kind: 'busy', message: `${other} is loaded for another window; "Strata: Start Server" switches every window to ${plan.label ?? path.basename(plan.modelPath)}.` };
      this.opts.log.warn(this.problem.message);
      return;
    }
    if (code === 'cancelled') {
      this.opts.log.info(e.message);
      return;
    }
    this.lastError = e.message;
    this.opts.log.error(`loading ${plan.label ?? plan.modelPath} failed: ${e.message}`);
    for (const l of (e as SidecarError).logTail ?? []) this.opts.log.error(`  | ${l}`);
  }

  private async switchTo(plan: ServerPlan): Promise<void> {
    this.plan = plan;
    await this.load({ replace: true });
  }

  /** With `switchModel`, replaces another window's model without asking (the API, tests). */
  async startServer(opts: { switchModel?: boolean } = {}): Promise<ServerStatus | undefined> {
    this.userStopped = false;
    await this.refreshPlan();
    if (!this.plan) {
      // Said, not awaited: a command must not wait for a click on its notification.
      void this.explainProblem();
      return this.status?.server;
    }
    if ((this.problem?.kind === 'busy' || this.isOtherPlanRunning()) && opts.switchModel) {
      await this.load({ replace: true, notify: true });
    } else if (this.problem?.kind === 'busy' || this.isOtherPlanRunning()) {
      const other = this.status?.server.label ?? 'another model';
      const pick = await vscode.window.showWarningMessage(
        `Strata: ${other} is loaded for another window. Switch every window to ${this.plan.label ?? path.basename(this.plan.modelPath)}?`,
        { modal: false },
        'Switch',
      );
      if (pick !== 'Switch') return this.status?.server;
      await this.load({ replace: true, notify: true });
    } else {
      await this.load({ notify: true });
    }
    return this.status?.server;
  }

  private isOtherPlanRunning(): boolean {
    const sv = this.status?.server;
    return !!(sv?.plan && this.plan && !samePlan(sv.plan, this.plan) && ['loading', 'ready', 'restarting'].includes(sv.phase));
  }

  async stopServer(): Promise<ServerStatus | undefined> {
    this.userStopped = true;
    const c = this.client ?? (await this.connect(false));
    if (!c) {
      this.render();
      return undefined;
    }
    try {
      const st = await c.unload();
      this.opts.log.info('llama-server stopped on request (other windows see it stopped too; "Strata: Start Server" loads it again)');
      return st;
    } catch (e) {
      this.opts.log.error(`stopping llama-server: ${(e as Error).message}`);
      void vscode.window.showErrorMessage(`Strata: ${(e as Error).message}`);
      return this.status?.server;
    } finally {
      this.render();
    }
  }

  async restartServer(): Promise<ServerStatus | undefined> {
    this.userStopped = false;
    await this.refreshPlan();
    const c = await this.connect(!!this.plan);
    const sv = c?.lastKnownStatus?.server;
    if (c && sv?.plan && (!this.plan || samePlan(sv.plan, this.plan)) && sv.phase !== 'stopped') {
      try {
        this.lastError = undefined;
        return await c.restart();
      } catch (e) {
        if (this.plan) this.onLoadError(e as Error, this.plan);
        return this.status?.server;
      } finally {
        this.render();
      }
    }
    if (!this.plan) {
      // Said, not awaited: a command must not wait for a click on its notification.
      void this.explainProblem();
      return this.status?.server;
    }
    await this.load({ replace: this.isOtherPlanRunning(), notify: true });
    return this.status?.server;
  }

  /** Unload without remembering a user stop (benchmarks need the memory). */
  async unloadForMaintenance(): Promise<boolean> {
    const sv = this.status?.server;
    if (!this.client || !sv || sv.phase === 'stopped' || sv.phase === 'failed') return false;
    await this.client.unload().catch(() => undefined);
    return true;
  }

  setActivity(a: Activity | undefined): void {
    this.activity = a;
    this.render();
  }

  /** The last explanation explainProblem() showed (text and buttons): what the extension-host tests read. */
  lastExplanation?: { severity: 'warning' | 'error'; text: string; actions: string[] };

  /** The message and actions for the current problem, as a notification. */
  async explainProblem(): Promise<void> {
    const p = this.problem;
    if (!p) return;
    const say = (severity: 'warning' | 'error', ...actions: string[]): Thenable<string | undefined> => {
      const text = `Strata: ${p.message}`;
      this.lastExplanation = { severity, text, actions };
      return severity === 'warning' ? vscode.window.showWarningMessage(text, ...actions) : vscode.window.showErrorMessage(text, ...actions);
    };
    if (p.kind === 'no-model') {
      // The picker, not a settings page: it lists what fits, what is on disk first (issue 16).
      const pick = await say('warning', ACTIONS.pickModel);
      if (pick) await vscode.commands.executeCommand('strata.models.switch');
    } else if (p.kind === 'no-binary') {
      const pick = await say('warning', ACTIONS.download, ACTIONS.build, ACTIONS.chooseServer);
      if (pick === ACTIONS.build) await vscode.commands.executeCommand('strata.server.build');
      else if (pick === ACTIONS.download) await vscode.commands.executeCommand('strata.server.download');
      else if (pick === ACTIONS.chooseServer) await chooseServerBinary();
    } else if (p.kind === 'bad-setting') {
      const pick = await say('warning', 'Open Settings');
      if (pick) await vscode.commands.executeCommand('workbench.action.openSettings', 'strata.');
    } else {
      const pick = await say('error', 'Show Logs');
      if (pick) await vscode.commands.executeCommand('strata.server.showLogs');
    }
  }

  /** What the ServerConnectionSource throws when there is no server; may start a load. */
  private demand(): Error | undefined {
    if (this.problem && this.problem.kind !== 'busy') return new Error(this.problem.message);
    const sv = this.status?.server;
    if (this.userStopped) return new Error('The Strata server is stopped: run "Strata: Start Server".');
    if (sv?.phase === 'failed') return new Error(sv.error?.message ?? 'llama-server failed: run "Strata: Restart Server".');
    if (sv?.phase === 'loading' || sv?.phase === 'restarting' || this.loading) return new Error('Strata is loading the model; completions start when it is ready.');
    // Stopped on purpose (here or in another window): a keystroke does not undo that.
    if (sv?.phase === 'stopped' && sv.stoppedReason === 'requested') return new Error('The Strata server was stopped: run "Strata: Start Server".');
    if (this.plan && (!sv || sv.phase === 'stopped')) {
      void this.load();
      return new Error('Strata is loading the model; completions start when it is ready.');
    }
    return undefined;
  }

  // ---- reports ----

  async report(): Promise<SidecarReport> {
    const s = this.status;
    const sv = s?.server;
    if (this.binary && !this.binaryInfo) await this.inspectBinary(this.binary.path);
    const info = this.binaryInfo;
    const r: SidecarReport = {
      phase: sv?.phase ?? 'no-sidecar',
      ...(s ? { daemonPid: s.daemon.pid, clients: s.daemon.clients, daemonLog: s.daemon.logFile, serverLog: s.daemon.serverLogFile } : {}),
      ...(sv?.pid ? { serverPid: sv.pid } : {}),
      ...(sv?.label ? { label: sv.label } : this.plan?.label ? { label: this.plan.label } : {}),
      ...(sv?.progress !== undefined && sv.phase === 'loading' ? { progress: sv.progress } : {}),
      ...(this.plan ? { wanted: { modelPath: this.plan.modelPath, binaryPath: this.plan.binaryPath, args: this.plan.args } } : {}),
      ...(sv?.error ? { error: sv.error.message, logTail: sv.error.logTail } : this.lastError ? { error: this.lastError } : {}),
      ...(this.problem ? { problem: this.problem } : {}),
      ...(this.tokPerSec ? { tokPerSec: this.tokPerSec } : {}),
    };
    if (this.binary) {
      r.binary = {
        path: this.binary.path,
        kind: this.binary.kind,
        backends: info?.backends ?? [],
        devices: info?.devices ?? [],
        ...(info?.version ? { version: info.version } : {}),
        ...(info?.commit ? { commit: info.commit } : {}),
        ...(info?.builtWith ? { builtWith: info.builtWith } : {}),
        ...(info?.error ? { error: info.error } : {}),
      };
    }
    r.installedBuilds = listInstalledBuilds(strataCacheDir()).map((b) => ({ id: b.id, backend: b.backend, source: b.source, hasBench: !!b.benchPath }));
    return r;
  }

  render(): void {
    if (this.disposed) return;
    const s = this.status;
    const info = this.binaryInfo;
    this.opts.statusBar.setState({
      problem: this.problem,
      activity: this.activity,
      connecting: !!this.connecting,
      server: this.client ? s?.server : undefined,
      wantedLabel: this.plan?.label,
      userStopped: this.userStopped,
      tokPerSec: this.tokPerSec,
      binaryPath: this.binary?.path,
      binaryDescription: info ? `${info.version?.replace(/^version:\s*/, '') ?? '?'}; ${describeDevices(info)}` : undefined,
      daemonPid: s?.daemon.pid,
      clients: s?.daemon.clients,
      lastError: this.lastError,
      ...(this.client && s?.cluster ? { cluster: s.cluster } : {}),
    });
    this.changed.fire();
  }

  private sayOnce(key: string, fn: () => void): void {
    if (this.saidOnce.has(key)) return;
    this.saidOnce.add(key);
    fn();
  }

  dispose(): void {
    this.disposed = true;
    this.stopMetrics();
    this.opts.source.setDemand(undefined);
    this.opts.source.setLive(undefined);
    this.client?.close();
    this.client = undefined;
    for (const d of this.disposables) d.dispose();
  }
}
