"""Training examples for the Strata test model: plain files, FIM in llama-server's exact /infill
layout, and ChatML instructions derived from the code (see chat_examples.py).

An example is a list of pieces; a piece is either a special token name (e.g. "<|fim_prefix|>") or
text. Each text piece is tokenized on its own, because llama-server tokenizes input_prefix, prompt
(the cursor line up to the cursor), input_suffix and every extra chunk separately; training with the
same cuts is what makes a prompt that ends in indentation look like training data.
"""
import random

SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
    "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
]
EOT = "<|endoftext|>"


def _lines_keepends(text):
    return text.splitlines(keepends=True)


def _indent(line):
    return len(line) - len(line.lstrip(" \t"))


def fim_span(text, rng):
    """(prefix_lines, cursor_line_prefix, middle, suffix) with prefix_lines ending at a line start."""
    lines = _lines_keepends(text)
    if len(lines) < 4:
        return None
    starts = [0]
    for ln in lines:
        starts.append(starts[-1] + len(ln))
    kind = rng.random()
    candidates = [i for i, ln in enumerate(lines) if ln.strip()]
    i = rng.choice(candidates)
    line = lines[i]
    body = line.rstrip("\n")
    ind = _indent(body)
    if kind < 0.35:  # rest of a line, from a random point inside it
        col = rng.randint(ind, max(ind, len(body) - 1))
        cur, end = starts[i] + col, starts[i] + len(body)
    elif kind < 0.70:  # one to three whole lines, from the indentation on (or the line start)
        col = ind if rng.random() < 0.8 else 0
        k = min(len(lines) - i, rng.choice([1, 1, 1, 2, 3]))
        cur = starts[i] + col
        end = starts[i + k - 1] + len(lines[i + k - 1].rstrip("\n"))
    elif kind < 0.85:  # the rest of a block: lines until the indentation falls back
        col = ind
        j = i + 1
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > ind):
            j += 1
        j = min(j, i + 1 + rng.randint(1, 25))
        cur = starts[i] + col
        end = starts[j - 1] + len(lines[j - 1].rstrip("\n"))
    else:  # a random character span (mid-token ends included)
        cur = rng.randint(0, len(text) - 1)
        end = min(len(text), cur + int(rng.expovariate(1 / 60)) + 1)
    if rng.random() < 0.04:
        end = cur  # nothing to insert here: the model should close at once
    line_start = text.rfind("\n", 0, cur) + 1
    return text[:line_start], text[line_start:cur], text[cur:end], text[end:]


def _cut_prefix(prefix, max_chars, rng):
    """Whole lines of the prefix's end, as the engine sends (its window starts on a line)."""
    if len(prefix) <= max_chars:
        return prefix
    cut = prefix.find("\n", len(prefix) - max_chars)
    return prefix[cut + 1:] if cut >= 0 else ""


def _cut_suffix(suffix, max_chars):
    if len(suffix) <= max_chars:
        return suffix
    cut = suffix.rfind("\n", 0, max_chars)
    return suffix[: cut + 1] if cut > 0 else suffix[:max_chars]


def fim_example(text, rng, extra=None, extra_name=None):
    span = fim_span(text, rng)
    if span is None:
        return None
    prefix, cursor_line, middle, suffix = span
    prefix = _cut_prefix(prefix, rng.choice([300, 800, 1500, 3000, 5000]), rng)
    suffix = _cut_suffix(suffix, rng.choice([0, 200, 600, 1200, 1800]))
    # llama-server drops the repo/file header when n_ctx - n_batch leaves no room for it: train both.
    pieces = []
    if rng.random() < 0.6:
        pieces += ["<|repo_name|>", "myproject\n"]
        if extra:
            pieces += ["<|file_sep|>", extra_name + "\n", extra]
        pieces += ["<|file_sep|>", "filename\n"]
    pieces += ["<|fim_prefix|>", prefix, cursor_line, "<|fim_suffix|>", suffix, "<|fim_middle|>", middle, EOT]
    return pieces


def file_example(text, name, max_chars, rng):
    if len(text) > max_chars:
        start = text.find("\n", rng.randint(0, len(text) - max_chars)) + 1
        text = text[start:start + max_chars]
    return ["<|file_sep|>", name + "\n", text, EOT]


def chat_pieces(system, turns):
    """ChatML as llama-server's template renders it; turns: [(user, assistant)]."""
    out = ["<|im_start|>", "system\n" + system, "<|im_end|>", "\n"]
    for user, assistant in turns:
        out += ["<|im_start|>", "user\n" + user, "<|im_end|>", "\n", "<|im_start|>", "assistant\n" + assistant,
                "<|im_end|>", "\n"]
    return out + [EOT]


def extra_chunk(text, rng):
    lines = _lines_keepends(text)
    a = rng.randint(0, max(0, len(lines) - 30))
    return "".join(lines[a:a + rng.randint(10, 60)])


def windows(text, size=6000):
    """The whole file in pieces of about `size` characters, cut at line ends: every line is used once."""
    out, start = [], 0
    while start < len(text):
        end = len(text) if len(text) - start <= size * 1.3 else text.find("\n", start + size) + 1 or len(text)
        out.append(text[start:end])
        start = end
    return out


def build_examples(docs, seed, fim_rate=0.55, chat=None):
    """docs: [(lang, source, path, text)] → list of piece lists (chat: {doc index: [piece lists]})."""
    out = []
    for n, (lang, source, path, text) in enumerate(docs):
        rng = random.Random(f"{seed}:{n}")
        name = path.rsplit("/", 1)[-1]
        if chat and n in chat:
            out.extend(chat[n])
        for w in windows(text):
            if rng.random() < fim_rate:
                # several short FIM examples per window: the middle is what FIM learns from, and it is short
                made = 0
                for _ in range(3):
                    prev = docs[n - 1] if n > 0 and docs[n - 1][1] == source and rng.random() < 0.4 else None
                    ex = fim_example(w, rng, extra_chunk(prev[3], rng) if prev else None,
                                     prev[2].rsplit("/", 1)[-1] if prev else None)
                    if ex:
                        out.append(ex)
                        made += 1
                if made:
                    continue
            out.append(file_example(w, name, 10 ** 9, rng))
    return out
