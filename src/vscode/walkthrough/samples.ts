// The "Try it" sample: a short file in the user's language with the cursor where a completion is
// natural (an unfinished function body), and the question the "Ask" step puts in the chat about
// it. Pure (no `vscode`). The language is the one the user works in: the active editor's, else the
// most common among the workspace's files, else Python.

export interface Sample {
  languageId: string;
  fileName: string;
  text: string;
  /** Where the cursor goes: the end of this line. */
  cursorLine: number;
  question: string;
}

interface Template {
  ext: string;
  /** `§` marks the cursor (removed). */
  body: string;
  question: string;
}

const HINT = 'Strata suggests in grey after the cursor: Tab accepts, Esc dismisses.';

const TEMPLATES: Record<string, Template> = {
  python: {
    ext: 'py',
    body: `"""${HINT}"""
import math


def distance(x1, y1, x2, y2):
    """Return the distance between the points (x1, y1) and (x2, y2)."""
    §
`,
    question: 'What does distance() in this file do, and how would you test it?',
  },
  javascript: {
    ext: 'js',
    body: `// ${HINT}

/** Returns the average of an array of numbers (0 for an empty array). */
function average(numbers) {
  if (numbers.length === 0) {
    return 0;
  }
  §
}

module.exports = { average };
`,
    question: 'What does average() in this file do, and how would you test it?',
  },
  typescript: {
    ext: 'ts',
    body: `// ${HINT}

/** Returns the average of a list of numbers (0 for an empty list). */
export function average(numbers: number[]): number {
  if (numbers.length === 0) {
    return 0;
  }
  §
}
`,
    question: 'What does average() in this file do, and how would you test it?',
  },
  go: {
    ext: 'go',
    body: `// ${HINT}
package sample

// Average returns the mean of the numbers (0 for none).
func Average(numbers []float64) float64 {
	if len(numbers) == 0 {
		return 0
	}
	§
}
`,
    question: 'What does Average() in this file do, and how would you test it?',
  },
  rust: {
    ext: 'rs',
    body: `// ${HINT}

/// Returns the mean of the numbers (0.0 for none).
pub fn average(numbers: &[f64]) -> f64 {
    if numbers.is_empty() {
        return 0.0;
    }
    §
}
`,
    question: 'What does average() in this file do, and how would you test it?',
  },
  c: {
    ext: 'c',
    body: `/* ${HINT} */
#include <stddef.h>

/* Returns the mean of the n values (0 when n is 0). */
double average(const double *values, size_t n) {
    if (n == 0) {
        return 0.0;
    }
    §
}
`,
    question: 'What does average() in this file do, and how would you test it?',
  },
  cpp: {
    ext: 'cpp',
    body: `// ${HINT}
#include <vector>

// Returns the mean of the values (0 when there are none).
double average(const std::vector<double>& values) {
    if (values.empty()) {
        return 0.0;
    }
    §
}
`,
    question: 'What does average() in this file do, and how would you test it?',
  },
  java: {
    ext: 'java',
    body: `// ${HINT}

public class Sample {
    /** Returns the mean of the values (0 when there are none). */
    public static double average(double[] values) {
        if (values.length == 0) {
            return 0;
        }
        §
    }
}
`,
    question: 'What does average() in this file do, and how would you test it?',
  },
};

/** File extensions of the languages with a sample, and a few aliases. */
const BY_EXT: Record<string, string> = {
  py: 'python',
  pyi: 'python',
  js: 'javascript',
  mjs: 'javascript',
  cjs: 'javascript',
  jsx: 'javascript',
  ts: 'typescript',
  tsx: 'typescript',
  mts: 'typescript',
  cts: 'typescript',
  go: 'go',
  rs: 'rust',
  c: 'c',
  h: 'c',
  cc: 'cpp',
  cpp: 'cpp',
  cxx: 'cpp',
  hpp: 'cpp',
  hh: 'cpp',
  java: 'java',
};

const ALIASES: Record<string, string> = {
  typescriptreact: 'typescript',
  javascriptreact: 'javascript',
  'objective-c': 'c',
  'objective-cpp': 'cpp',
  cuda: 'cpp',
};

export const SAMPLE_LANGUAGES = Object.keys(TEMPLATES);

export function languageOfFile(name: string): string | undefined {
  const m = /\.([A-Za-z0-9]+)$/.exec(name);
  return m ? BY_EXT[m[1].toLowerCase()] : undefined;
}

/** The active editor's language when there is a sample for it; else the workspace's most common; else Python. */
export function pickLanguage(activeLanguageId: string | undefined, workspaceFiles: readonly string[]): string {
  const active = activeLanguageId ? (ALIASES[activeLanguageId] ?? activeLanguageId) : undefined;
  if (active && TEMPLATES[active]) return active;
  const counts = new Map<string, number>();
  for (const f of workspaceFiles) {
    const l = languageOfFile(f);
    if (l) counts.set(l, (counts.get(l) ?? 0) + 1);
  }
  let best = 'python';
  let most = 0;
  for (const [l, n] of counts) {
    if (n > most) {
      best = l;
      most = n;
    }
  }
  return best;
}

export function sampleFor(languageId: string): Sample {
  const id = TEMPLATES[languageId] ? languageId : 'python';
  const t = TEMPLATES[id];
  const lines = t.body.split('\n');
  const at = lines.findIndex((l) => l.includes('§'));
  lines[at] = lines[at].replace('§', '');
  return { languageId: id, fileName: `strata-sample.${t.ext}`, text: lines.join('\n'), cursorLine: at, question: t.question };
}
