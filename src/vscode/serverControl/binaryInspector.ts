import * as vscode from 'vscode';
import { describeDevices, inspectLlamaServer, LlamaServerInfo } from '../../daemon/installer';
import { ResolvedBinary } from './plan';

// What the llama-server this window would run says about itself (`--version`,
// `--list-devices`): asked once per binary, in the background, for the log, the status bar
// tooltip and "Show Server Status". A binary that changes while it is asked drops the answer.

export class BinaryInspector {
  private binary?: ResolvedBinary;
  private answer?: LlamaServerInfo;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly onInspected: () => void,
  ) {}

  get info(): LlamaServerInfo | undefined {
    return this.answer;
  }

  /** The short text for the status bar tooltip. */
  get description(): string | undefined {
    const info = this.answer;
    return info ? `${info.version?.replace(/^version:\s*/, '') ?? '?'}; ${describeDevices(info)}` : undefined;
  }

  /** The binary the plan now names; a new path is asked again. */
  follow(binary: ResolvedBinary | undefined): void {
    const changed = binary?.path !== this.binary?.path;
    this.binary = binary;
    if (!changed) return;
    this.answer = undefined;
    if (binary) void this.inspect(binary.path);
  }

  /** The answer, asking now when there is none yet (a report waits for it). */
  async ensure(): Promise<LlamaServerInfo | undefined> {
    if (this.binary && !this.answer) await this.inspect(this.binary.path);
    return this.answer;
  }

  private async inspect(p: string): Promise<void> {
    const info = await inspectLlamaServer(p).catch(() => undefined);
    const b = this.binary;
    if (!info || b?.path !== p) return;
    this.answer = info;
    this.log.info(
      `llama-server ${p} (${b.kind}${b.buildId ? ` ${b.buildId}` : ''}): ${info.version ?? '?'}; ${describeDevices(info)}${info.error ? `; ${info.error}` : ''}`,
    );
    this.onInspected();
  }
}
