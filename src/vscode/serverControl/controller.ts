import * as path from 'path';
import * as vscode from 'vscode';
import { strataStateDir } from '../../core/paths';
import { samePlan, ServerPlan, ServerStatus, SidecarStatus } from '../../core/protocol';
import { SidecarClient } from '../../core/daemonClient';
import { ServerConnectionSource } from '../serverConnectionSource';
import { SidecarReport, StatusBar } from '../serverStatus';
import { BinaryInspector } from './binaryInspector';
import { ConnectionFeed } from './connectionFeed';
import { DaemonConnection } from './daemonConnection';
import { answerDemand } from './demand';
import { MetricsPoller } from './metricsPoller';
import { ModelLoader } from './modelLoader';
import { ModelPlanProvider, ResolvedBinary, ServerSettings } from './plan';
import { PlanReaction, reactToReplan, reactToSettings, runsOtherPlan } from './planReactions';
import { Explanation, explainProblem, problemOfLoadError } from './problemNotice';
import { ServerPhaseLog } from './serverPhaseLog';
import { affectsServerSettings } from './settings';
import { watchSidecarLock } from './sidecarLock';
import { sidecarReport } from './sidecarReport';
import { Activity, Problem } from './statusView';
import { WindowPlan } from './windowPlan';
import { WindowProblem } from './windowProblem';

export { NO_MODEL_MESSAGE } from './windowPlan';

// The window's side of the sidecar: connects to the one daemon of this user (starting it when
// this window has a model to load), asks it for the model this window's settings name, follows
// its status into the status bar and into the ServerConnectionSource that completion and chat
// read, and carries out Start / Stop / Restart. It holds the window's state (problem, user stop,
// load in progress) and decides; the collaborators it owns each do one part. Errors are said
// once, in one sentence, with the action that fixes them; nothing here throws at a keystroke.

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
  private readonly want: WindowPlan;
  private readonly connection: DaemonConnection;
  private readonly feed: ConnectionFeed;
  private readonly phaseLog: ServerPhaseLog;
  private readonly metrics: MetricsPoller;
  private readonly inspector: BinaryInspector;
  private readonly problem: WindowProblem;
  private activity?: Activity;
  private lastError?: string;
  private userStopped = false;
  private readonly loader: ModelLoader;
  private disposed = false;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires on every state change (status bar, tests). */
  readonly onDidChange = this.changed.event;
  private readonly connectedEmitter = new vscode.EventEmitter<SidecarStatus>();
  /** Fires on every (re)connection to a daemon: a new daemon knows nothing this window told the old one. */
  readonly onDidConnect = this.connectedEmitter.event;
  /** The last explanation explainProblem() showed (text and buttons): what the extension-host tests read. */
  lastExplanation?: Explanation;

  constructor(private readonly opts: SidecarControllerOptions) {
    const { log, source } = opts;
    this.want = new WindowPlan(this.stateDir, opts.planProvider);
    this.problem = new WindowProblem(log);
    this.feed = new ConnectionFeed(source, log);
    this.phaseLog = new ServerPhaseLog(log);
    this.metrics = new MetricsPoller(
      () => this.client,
      () => this.render(),
    );
    this.inspector = new BinaryInspector(log, () => this.render());
    this.connection = new DaemonConnection({
      context: opts.context,
      log,
      stateDir: this.stateDir,
      events: {
        status: (s) => this.onStatus(s),
        connected: (s) => {
          this.onStatus(s);
          this.connectedEmitter.fire(s);
        },
        disconnected: () => {
          this.feed.clear();
          this.render();
        },
        attempted: (failure) => this.problem.connected(failure),
        changed: () => this.render(),
      },
    });
    this.loader = new ModelLoader({
      log,
      plan: () => this.want.plan,
      client: () => this.client,
      connect: () => this.connect(true),
      starting: () => {
        this.problem.loadStarting();
        this.lastError = undefined;
      },
      failed: (e, plan) => this.onLoadError(e, plan),
      cancel: () => void this.stopServer(),
      settled: () => this.render(),
    });
    source.setDemand(() => this.demand());
    this.disposables.push(
      this.changed,
      this.connectedEmitter,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (affectsServerSettings(e)) void this.onSettingsChanged();
      }),
    );
  }

  /** Awaited after connecting and before every load (the cluster hands its peers over there). */
  setLoadGate(gate: (() => Promise<void>) | undefined): void {
    this.loader.setGate(gate);
  }

  /** For the model catalog (issue 6): replace how plans are made, then re-plan. */
  async setPlanProvider(provider: ModelPlanProvider): Promise<void> {
    this.want.setProvider(provider);
    await this.onSettingsChanged();
  }

  private get client(): SidecarClient | undefined {
    return this.connection.client;
  }

  get status(): SidecarStatus | undefined {
    return this.client?.lastKnownStatus;
  }

  get currentPlan(): ServerPlan | undefined {
    return this.want.plan;
  }

  get settingsNow(): ServerSettings {
    return this.want.settings;
  }

  /** What keeps this window from loading its model, if anything. */
  get problemNow(): Problem | undefined {
    return this.problem.now;
  }

  /** The llama-server this window would run (with or without a model), if one was found. */
  get binaryNow(): ResolvedBinary | undefined {
    return this.want.binary;
  }

  get sidecarClient(): SidecarClient | undefined {
    return this.client;
  }

  /** At activation: plan, then connect (start the daemon only if there is a model to load), then load. */
  async activate(): Promise<void> {
    await this.refreshPlan();
    // Another window may start the daemon later: join it then.
    this.disposables.push(watchSidecarLock(this.stateDir, () => void this.connect(false)));
    const live = this.connection.daemonLive();
    if (this.want.plan && this.want.settings.autoStart) {
      await this.connect(true);
      void this.load();
    } else if (live) {
      await this.connect(false);
    }
    this.render();
  }

  connect(startIfNeeded: boolean): Promise<SidecarClient | undefined> {
    return this.connection.connect(startIfNeeded);
  }

  private async refreshPlan(): Promise<void> {
    this.problem.planned(await this.want.refresh());
    this.inspector.follow(this.want.binary);
    this.render();
  }

  private async onSettingsChanged(): Promise<void> {
    const old = this.want.plan;
    await this.refreshPlan();
    const reaction = reactToSettings({
      old,
      plan: this.want.plan,
      running: this.status?.server,
      userStopped: this.userStopped,
      autoStart: this.want.settings.autoStart,
    });
    if (reaction === 'unload') this.opts.log.info('the model setting was cleared: unloading the model this window had loaded');
    if (reaction === 'switch') this.opts.log.info(`settings changed: switching llama-server to ${this.want.plan?.label ?? this.want.plan?.modelPath}`);
    await this.carryOut(reaction);
  }

  /**
   * Re-plan after an install or a benchmark changed which binary is best. A server running this
   * window's old plan switches to the new one; otherwise a server is loaded only when `load` says
   * so (it was unloaded for the operation) or autoStart wants one.
   */
  async replanAndReload(opts: { load?: boolean } = {}): Promise<void> {
    const old = this.want.plan;
    await this.refreshPlan();
    await this.carryOut(
      reactToReplan({
        old,
        plan: this.want.plan,
        running: this.status?.server,
        userStopped: this.userStopped,
        wantLoad: opts.load ?? this.want.settings.autoStart,
      }),
    );
  }

  private async carryOut(reaction: PlanReaction): Promise<void> {
    if (reaction === 'unload') await this.client?.unload().catch((e: Error) => this.opts.log.warn(`unload: ${e.message}`));
    else if (reaction === 'switch') await this.load({ replace: true });
    else if (reaction === 'load') await this.load();
  }

  private onStatus(s: SidecarStatus): void {
    const sv = s.server;
    this.feed.update(s);
    this.phaseLog.follow(sv);
    this.metrics.follow(sv.phase === 'ready');
    if (sv.phase === 'ready' || sv.phase === 'loading') this.lastError = undefined;
    this.render();
  }

  /**
   * Loads this window's plan (joins it if it runs already). Never throws. With `notify` (a user
   * command), the load shows in a progress notification whose Cancel stops it.
   */
  private load(opts: { replace?: boolean; notify?: boolean } = {}): Promise<void> {
    return this.loader.load(opts);
  }

  private onLoadError(e: Error, plan: ServerPlan): void {
    const r = problemOfLoadError(e, plan, this.status?.server.label, this.opts.log);
    if (r.problem) this.problem.busy(r.problem);
    if (r.error) this.lastError = r.error;
  }

  /** With `switchModel`, replaces another window's model without asking (the API, tests). */
  async startServer(opts: { switchModel?: boolean } = {}): Promise<ServerStatus | undefined> {
    this.userStopped = false;
    await this.refreshPlan();
    const plan = this.want.plan;
    if (!plan) {
      // Said, not awaited: a command must not wait for a click on its notification.
      void this.explainProblem();
      return this.status?.server;
    }
    const taken = this.problem.now?.kind === 'busy' || runsOtherPlan(this.status?.server, plan);
    if (taken && !opts.switchModel) {
      const other = this.status?.server.label ?? 'another model';
      const pick = await vscode.window.showWarningMessage(
        `Strata: ${other} is loaded for another window. Switch every window to ${plan.label ?? path.basename(plan.modelPath)}?`,
        { modal: false },
        'Switch',
      );
      if (pick !== 'Switch') return this.status?.server;
    }
    await this.load({ replace: taken, notify: true });
    return this.status?.server;
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
    const plan = this.want.plan;
    const c = await this.connect(!!plan);
    const sv = c?.lastKnownStatus?.server;
    if (c && sv?.plan && (!plan || samePlan(sv.plan, plan)) && sv.phase !== 'stopped') {
      try {
        this.lastError = undefined;
        return await c.restart();
      } catch (e) {
        if (plan) this.onLoadError(e as Error, plan);
        return this.status?.server;
      } finally {
        this.render();
      }
    }
    if (!plan) {
      // Said, not awaited: a command must not wait for a click on its notification.
      void this.explainProblem();
      return this.status?.server;
    }
    await this.load({ replace: runsOtherPlan(this.status?.server, plan), notify: true });
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

  /** The message and actions for the current problem, as a notification. */
  async explainProblem(): Promise<void> {
    const p = this.problem.now;
    if (p) await explainProblem(p, (e) => (this.lastExplanation = e));
  }

  /** What the ServerConnectionSource throws when there is no server; may start a load. */
  private demand(): Error | undefined {
    const a = answerDemand({
      problem: this.problem.now,
      server: this.status?.server,
      userStopped: this.userStopped,
      loading: this.loader.loading,
      plan: this.want.plan,
    });
    if (a.load) void this.load();
    return a.error;
  }

  async report(): Promise<SidecarReport> {
    const binaryInfo = await this.inspector.ensure();
    const { plan, binary } = this.want;
    return sidecarReport({
      status: this.status,
      plan,
      binary,
      binaryInfo,
      problem: this.problem.now,
      lastError: this.lastError,
      tokPerSec: this.metrics.tokPerSec,
    });
  }

  render(): void {
    if (this.disposed) return;
    const s = this.status;
    this.opts.statusBar.setState({
      problem: this.problem.now,
      activity: this.activity,
      connecting: this.connection.isConnecting,
      server: this.client ? s?.server : undefined,
      wantedLabel: this.want.plan?.label,
      userStopped: this.userStopped,
      tokPerSec: this.metrics.tokPerSec,
      binaryPath: this.want.binary?.path,
      binaryDescription: this.inspector.description,
      daemonPid: s?.daemon.pid,
      clients: s?.daemon.clients,
      lastError: this.lastError,
      ...(this.client && s?.cluster ? { cluster: s.cluster } : {}),
    });
    this.changed.fire();
  }

  dispose(): void {
    this.disposed = true;
    this.metrics.stop();
    this.opts.source.setDemand(undefined);
    this.opts.source.setLive(undefined);
    this.connection.close();
    for (const d of this.disposables) d.dispose();
  }
}
