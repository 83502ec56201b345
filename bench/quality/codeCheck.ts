import type { Group } from './holdout';

// Cheap checks on a chat answer's code: is there a fenced block, is it tagged with the file's
// language, and does its text look like code in that language. "Looks like" is a heuristic, not a
// parser: brackets balance once strings and comments are taken out, and the text has the
// statements that language is made of. Gibberish and prose fail it; wrong code may pass.

export interface CodeBlock {
  info: string;
  code: string;
  /** false: the fence never closes (the answer ran into its token limit); code runs to the end. */
  closed: boolean;
}

/**
 * The first closed fenced block (``` or ~~~, three or more) of a markdown answer; else the first
 * fence that opens and never closes, as a renderer shows it at the end of a cut-off answer.
 */
export function firstCodeBlock(markdown: string): CodeBlock | undefined {
  const m = /^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([^\n`]*)\n([\s\S]*?)\n?^[ \t]{0,3}\1[ \t]*$/m.exec(markdown);
  if (m) return { info: m[2].trim(), code: m[3], closed: true };
  const open = /^[ \t]{0,3}(`{3,}|~{3,})[ \t]*([^\n`]*)\n([\s\S]*)$/m.exec(markdown);
  return open ? { info: open[2].trim(), code: open[3], closed: false } : undefined;
}

const TAGS: Record<Group, string[]> = {
  python: ['python', 'py', 'python3'],
  'js-ts': ['javascript', 'js', 'typescript', 'ts', 'jsx', 'tsx', 'mjs', 'cjs'],
  'c-cpp': ['c', 'cpp', 'c++', 'cc', 'cxx', 'h', 'hpp'],
};

/** The fence's info string names the group's language (an empty one counts as not tagged). */
export function tagMatches(info: string, group: Group): boolean {
  const tag = info.split(/\s+/)[0].toLowerCase();
  return TAGS[group].includes(tag);
}

/** Code with string literals and comments replaced by nothing, for bracket counting. */
function stripped(code: string, group: Group): string {
  let s = code;
  if (group === 'python') s = s.replace(/("""|''')[\s\S]*?(\1|$)/g, '""');
  else s = s.replace(/\/\*[\s\S]*?(\*\/|$)/g, ' ');
  const strings = group === 'js-ts' ? /"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`/g : /"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'/g;
  s = s.replace(strings, '""');
  return s.replace(group === 'python' ? /#.*$/gm : /\/\/.*$/gm, '');
}

function balanced(s: string): boolean {
  const stack: string[] = [];
  const open: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  for (const c of s) {
    if (c === '(' || c === '[' || c === '{') stack.push(c);
    else if (c in open && stack.pop() !== open[c]) return false;
  }
  return stack.length === 0;
}

const SHAPES: Record<Group, RegExp[]> = {
  // A line that starts a statement, or an assignment.
  python: [/^[ \t]*(def|class|return|import|from|if|for|while|with|try|raise|yield|async|@)\b|^[ \t]*[\w.[\]]+\s*[+\-*/]?=[^=]/m],
  // A line that starts a statement or declaration, an arrow, or an assignment.
  'js-ts': [
    /^[ \t]*(export\s+)?(async\s+)?(function|const|let|var|return|class|interface|type|import|if|for|while|switch|throw|try)\b|=>|^[ \t]*[\w.$[\]]+\s*[+\-*/]?=[^=]|^[ \t]*[\w.$]+\(.*\);?[ \t]*$/m,
  ],
  // Statements end in ';', and something is called or declared with parentheses.
  'c-cpp': [/;/, /\b[A-Za-z_]\w*\s*\(/],
};

/** Whether `code` looks like code of the group's language (see the file's header). */
export function looksLike(code: string, group: Group): boolean {
  const s = stripped(code, group);
  if (s.trim() === '' || !balanced(s)) return false;
  if (!SHAPES[group].every((re) => re.test(s))) return false;
  // Python's blocks open with a colon, not a brace.
  if (group === 'python' && /\)\s*\{\s*$/m.test(s)) return false;
  return true;
}
