import { percentile } from '../../src/core/completion/completionEngine';
import { ContextSnapshot, UserTurn } from '../../src/core/chat/conversation';
import { buildPrompt, DEFAULT_SYSTEM_PROMPT } from '../../src/core/chat/promptBuilder';
import { streamAnswer } from '../../src/core/chat/streamAnswer';
import { LlamaTokenCounter } from '../../src/core/chat/tokenCounter';
import { LlamaClient } from '../../src/core/llama/client';
import { mulberry32 } from '../completions/typist';
import { documentedFunctions, DocumentedFunction } from './functions';
import { Group, GROUPS, HoldoutFile } from './holdout';
import { firstCodeBlock, looksLike, tagMatches } from './codeCheck';

// Chat answers about held-out functions, asked as the extension asks: the real prompt builder
// (system prompt, the file attached as "The file open in the editor", cut to the context window
// around the function) and the real streaming client to /v1/chat/completions, at the chat's
// default temperature. "write" attaches the file without the function (the user is about to write
// it); "explain" attaches the whole file.

export type ChatKind = 'write' | 'explain';

export interface ChatQuestion {
  kind: ChatKind;
  fn: DocumentedFunction;
  text: string;
}

const LANGUAGE_NAME: Record<string, string> = { python: 'Python', javascript: 'JavaScript', typescript: 'TypeScript', c: 'C', cpp: 'C++' };

function question(kind: ChatKind, fn: DocumentedFunction): ChatQuestion {
  const lang = LANGUAGE_NAME[fn.file.languageId] ?? fn.file.languageId;
  const what = fn.summary ? ` that ${fn.summary[0].toLowerCase()}${fn.summary.slice(1).replace(/\.$/, '')}` : '';
  const text = kind === 'write' ? `Write a ${lang} function \`${fn.signature}\`${what}.` : `Explain what \`${fn.name}\` does.`;
  return { kind, fn, text };
}

/**
 * `n` questions, the groups and the two kinds in turn; functions with a doc first, one per file
 * until every file has had one.
 */
export function pickQuestions(files: HoldoutFile[], n: number, seed: number): ChatQuestion[] {
  const rnd = mulberry32(seed);
  const pools = new Map<Group, DocumentedFunction[]>();
  for (const g of GROUPS) {
    const fns = files
      .filter((f) => f.group === g)
      .flatMap(documentedFunctions)
      .map((fn) => ({ fn, r: rnd() }));
    // Documented first; within that, a random order that takes each file once before repeating.
    const seen = new Map<string, number>();
    const ranked = fns
      .sort((a, b) => a.r - b.r)
      .map(({ fn }) => {
        const k = seen.get(fn.file.file) ?? 0;
        seen.set(fn.file.file, k + 1);
        return { fn, key: (fn.summary ? 0 : 1e6) + k };
      });
    pools.set(
      g,
      ranked.sort((a, b) => a.key - b.key).map((x) => x.fn),
    );
  }
  const out: ChatQuestion[] = [];
  for (let i = 0; i < n; i++) {
    const fn = pools.get(GROUPS[i % GROUPS.length])!.shift();
    if (fn) out.push(question(i % 2 === 0 ? 'write' : 'explain', fn));
  }
  return out;
}

export interface ChatResult {
  kind: ChatKind;
  group: Group;
  file: string;
  question: string;
  answer: string;
  status: string;
  /** A closed ``` fence in the answer. */
  codeBlock: boolean;
  /** A fence that opens, closed or cut off at the token limit (shown as code all the same). */
  codeOpened: boolean;
  /** Its info string names the file's language (or is empty). */
  tagged: boolean;
  /** Its text passes the cheap check for the file's language (see codeCheck.ts). */
  looksLikeCode: boolean;
  /** The answer names the function. */
  namesFunction: boolean;
  tokens: number;
  ms: number;
}

export interface ChatOptions {
  maxTokens: number;
  temperature: number;
  timeoutMs: number;
}

export async function measureChat(
  client: LlamaClient,
  conn: { url: string; apiKey: string },
  contextSize: number,
  questions: ChatQuestion[],
  o: ChatOptions,
  onProgress?: (done: number) => void,
): Promise<ChatResult[]> {
  const counter = new LlamaTokenCounter(conn);
  const out: ChatResult[] = [];
  for (const q of questions) {
    const f = q.fn.file;
    const lines = q.kind === 'write' ? [...f.lines.slice(0, q.fn.start), ...f.lines.slice(q.fn.end)] : f.lines;
    const snap: ContextSnapshot = { kind: 'activeFile', label: f.file, path: f.file, languageId: f.languageId, focusLine: q.fn.start, text: lines.join('\n') };
    const turn: UserTurn = { id: 'q', role: 'user', text: q.text, context: [snap], at: 0 };
    // As the chat view does: a quarter of the window at most is kept for the answer.
    const prompt = await buildPrompt([turn], counter, {
      contextSize,
      reserveForAnswer: Math.min(o.maxTokens, Math.floor(contextSize / 4)),
      systemPrompt: DEFAULT_SYSTEM_PROMPT,
    });
    const t0 = performance.now();
    const r = await streamAnswer(client, prompt.messages, AbortSignal.timeout(o.timeoutMs), {
      maxTokens: Math.min(o.maxTokens, prompt.maxAnswerTokens),
      temperature: o.temperature,
      promptTokens: prompt.promptTokens,
      onDelta: () => undefined,
    });
    if (r.status === 'error') throw new Error(`a chat answer failed: ${r.error}`);
    const block = firstCodeBlock(r.content);
    out.push({
      kind: q.kind,
      group: f.group,
      file: f.file,
      question: q.text,
      answer: r.content,
      status: r.status,
      codeBlock: block?.closed === true,
      codeOpened: block !== undefined,
      tagged: block?.closed === true && tagMatches(block.info, f.group),
      looksLikeCode: block?.closed === true && looksLike(block.code, f.group),
      namesFunction: r.content.includes(q.fn.name),
      tokens: r.stats.tokens,
      ms: performance.now() - t0,
    });
    onProgress?.(out.length);
  }
  return out;
}

export interface ChatFigures {
  n: number;
  codeBlock: number;
  codeOpened: number;
  tagged: number;
  looksLikeCode: number;
  namesFunction: number;
  meanTokens: number;
  p50Ms: number;
}

export function summarizeChat(rs: ChatResult[]): ChatFigures {
  const n = rs.length;
  const frac = (f: (r: ChatResult) => boolean) => (n ? rs.filter(f).length / n : NaN);
  return {
    n,
    codeBlock: frac((r) => r.codeBlock),
    codeOpened: frac((r) => r.codeOpened),
    tagged: frac((r) => r.tagged),
    looksLikeCode: frac((r) => r.looksLikeCode),
    namesFunction: frac((r) => r.namesFunction),
    meanTokens: n ? rs.reduce((s, r) => s + r.tokens, 0) / n : NaN,
    p50Ms: percentile(
      rs.map((r) => r.ms),
      50,
    ),
  };
}
