// Load progress of llama-server, read from what it prints. Two sources, best first:
//
// 1. Router state lines. llama-server's router mode starts child servers with the environment
//    variable LLAMA_SERVER_ROUTER_PORT set; such a child prints its real model-load fraction as
//    `cmd_child_to_router:state:{"state":"loading","payload":{"stages":[...],"current":...,"value":0.42}}`
//    and `{"state":"ready"}` once it serves. The supervisor sets that variable, so builds that
//    have router mode give exact progress; older builds ignore it.
// 2. Milestones in the ordinary log (any build): model file opened, tensors loading, context,
//    warm-up, loaded. Older builds also print one '.' per percent of tensor data loaded.
//
// The overall fraction maps the tensor load (the long part for a 40 GB model) to 5..90 % and
// the rest to fixed steps, and never goes backwards.

export const ROUTER_STATE_PREFIX = 'cmd_child_to_router:state:';

export interface LoadProgress {
  fraction: number;
  stage: string;
}

export interface ParsedLine {
  /** New progress, when this line moved it. */
  progress?: LoadProgress;
  /** The server says it is ready (or is about to be): check /health now. */
  readyHint?: boolean;
  /** A router protocol line: progress only, not worth showing in logs. */
  internal?: boolean;
}

const TENSOR_START = 0.05;
const TENSOR_END = 0.9;

const MILESTONES: [RegExp, number, string][] = [
  [/load_model: loading model|llama_model_loader: loaded meta data/, 0.02, 'reading model'],
  [/load_tensors: loading model tensors/, TENSOR_START, 'loading tensors'],
  [/llama_context: constructing llama_context|llama_new_context_with_model/, 0.92, 'creating context'],
  [/warming up the model/, 0.95, 'warming up'],
  [/srv +load_model: initializing|initializing slots/, 0.97, 'initializing slots'],
];

export class LoadProgressParser {
  private current: LoadProgress = { fraction: 0, stage: 'starting' };

  get progress(): LoadProgress {
    return this.current;
  }

  line(line: string): ParsedLine {
    const at = line.indexOf(ROUTER_STATE_PREFIX);
    if (at >= 0) return this.routerLine(line.slice(at + ROUTER_STATE_PREFIX.length));
    const out: ParsedLine = {};
    for (const [re, fraction, stage] of MILESTONES) {
      if (re.test(line)) {
        const p = this.advance(fraction, stage);
        if (p) out.progress = p;
      }
    }
    if (/model loaded|listening on|all slots are idle/.test(line)) out.readyHint = true;
    return out;
  }

  /** Old builds print dots without a newline while tensors load; the unfinished line shows them. */
  partial(text: string): LoadProgress | undefined {
    if (!/^\.+$/.test(text)) return undefined;
    const pct = Math.min(100, text.length);
    return this.advance(TENSOR_START + (TENSOR_END - TENSOR_START) * (pct / 100), 'loading tensors');
  }

  private routerLine(json: string): ParsedLine {
    let msg: { state?: string; payload?: { stages?: string[]; current?: string; value?: number } };
    try {
      msg = JSON.parse(json) as typeof msg;
    } catch {
      return { internal: true };
    }
    if (msg.state === 'ready') return { internal: true, readyHint: true, progress: this.advance(0.99, 'ready') };
    if (msg.state !== 'loading' || !msg.payload) return { internal: true };
    const stages = Array.isArray(msg.payload.stages) && msg.payload.stages.length > 0 ? msg.payload.stages : ['text_model'];
    const idx = Math.max(0, stages.indexOf(msg.payload.current ?? stages[0]));
    const value = typeof msg.payload.value === 'number' ? Math.min(1, Math.max(0, msg.payload.value)) : 0;
    const within = (idx + value) / stages.length;
    const stage = msg.payload.current === 'text_model' || msg.payload.current === undefined ? 'loading tensors' : `loading ${msg.payload.current}`;
    return { internal: true, progress: this.advance(TENSOR_START + (TENSOR_END - TENSOR_START) * within, stage) };
  }

  private advance(fraction: number, stage: string): LoadProgress | undefined {
    if (fraction < this.current.fraction) return undefined;
    if (fraction === this.current.fraction && stage === this.current.stage) return undefined;
    this.current = { fraction, stage };
    return this.current;
  }
}
