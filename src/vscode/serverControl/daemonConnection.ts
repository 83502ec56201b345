import * as path from 'path';
import * as vscode from 'vscode';
import { SidecarStatus } from '../../core/protocol';
import { connectOrStartSidecar, SidecarClient, SidecarError, SidecarIncompatibleError } from '../../core/daemonClient';
import { daemonConfigFromEnv } from './settings';
import { sidecarLockLive } from './sidecarLock';

// This window's one connection to the per-user sidecar daemon: joins the running daemon or starts
// one, offers to replace one too old or too new to talk to, and passes its events on. Apart from
// the controller because connecting has its own races: one attempt at a time, and a window that
// closes while a daemon starts.

export interface DaemonEvents {
  /** Every status the daemon sends, and the first one after each (re)connection. */
  status(s: SidecarStatus): void;
  /** A (re)connection: a new daemon knows nothing this window told the old one. */
  connected(s: SidecarStatus): void;
  /** The daemon went away (it may come back: the client reconnects). */
  disconnected(e: Error): void;
  /** Connected, or the attempt failed with this one-sentence message. */
  attempted(failure?: string): void;
  /** Anything the status bar may show changed (an attempt began or ended, load progress). */
  changed(): void;
}

export interface DaemonConnectionOptions {
  context: vscode.ExtensionContext;
  log: vscode.LogOutputChannel;
  stateDir: string;
  events: DaemonEvents;
}

export class DaemonConnection {
  private current?: SidecarClient;
  private connecting?: Promise<SidecarClient | undefined>;
  private closed = false;

  constructor(private readonly opts: DaemonConnectionOptions) {}

  get client(): SidecarClient | undefined {
    return this.current;
  }

  get isConnecting(): boolean {
    return !!this.connecting;
  }

  /** Whether a daemon runs now (another window's counts). */
  daemonLive(): boolean {
    return sidecarLockLive(this.opts.stateDir);
  }

  /** The client, once connected; starts a daemon only with `startIfNeeded`. Never throws. */
  async connect(startIfNeeded: boolean, forceReplace = false): Promise<SidecarClient | undefined> {
    if (this.current) return this.current;
    if (this.connecting) return this.connecting;
    if (!startIfNeeded && !this.daemonLive()) return undefined;
    this.connecting = (async () => {
      this.opts.events.changed();
      const { log, stateDir } = this.opts;
      try {
        const client = await connectOrStartSidecar({
          sidecarScript: this.opts.context.asAbsolutePath(path.join('dist', 'sidecar.js')),
          stateDir,
          clientName: `VS Code window (extension host pid ${process.pid})`,
          daemonConfig: daemonConfigFromEnv(process.env, (m) => log.warn(m)),
          forceReplace,
          log: (m) => log.debug(`sidecar: ${m}`),
        });
        if (this.closed) {
          client.close();
          return undefined;
        }
        this.wire(client);
        this.current = client;
        this.opts.events.attempted();
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
        const msg =
          e instanceof SidecarError
            ? e.message
            : `The Strata sidecar could not be started: ${(e as Error).message}; see ${path.join(stateDir, 'sidecar.log')}.`;
        this.opts.events.attempted(msg);
        log.error(msg);
        return undefined;
      } finally {
        this.connecting = undefined;
        this.opts.events.changed();
      }
    })();
    return this.connecting;
  }

  private wire(c: SidecarClient): void {
    const { events, log } = this.opts;
    c.on('status', (s) => events.status(s));
    c.on('progress', () => events.changed());
    c.on('connected', (s) => this.onConnected(s));
    c.on('disconnected', (e) => {
      log.warn(e.message);
      events.disconnected(e);
    });
    c.on('warning', (e) => log.debug(`sidecar: ${e.message}`));
  }

  private onConnected(s: SidecarStatus | undefined): void {
    if (!s) return;
    const log = this.opts.log;
    log.info(`connected to the Strata sidecar pid ${s.daemon.pid} (${s.daemon.clients} window${s.daemon.clients === 1 ? '' : 's'}); logs:`);
    log.info(`  sidecar log: ${vscode.Uri.file(s.daemon.logFile).toString()}`);
    log.info(`  llama-server log: ${vscode.Uri.file(s.daemon.serverLogFile).toString()}`);
    this.opts.events.connected(s);
  }

  /** Lets go of the daemon (it outlives the window); a connection still being made is closed when it lands. */
  close(): void {
    this.closed = true;
    this.current?.close();
    this.current = undefined;
  }
}
