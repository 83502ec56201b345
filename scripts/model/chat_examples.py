"""A small instruction set derived from the code itself, in the shapes Strata's chat sends
(src/core/chat/promptBuilder.ts: its system prompt, "The file open in the editor, <path>:" + fenced
file, then the question). Kinds: docstring → function, "explain" → the docstring, "fix" → a mutated
line restored, "add a docstring" → the documented function, questions about the open file.
Python functions come from `ast`; JavaScript, TypeScript and C/C++ ones from a doc comment followed
by a braced body.
"""
import ast
import re
import textwrap

from examples import chat_pieces

SYSTEM = ("You are Strata, a coding assistant running locally in the user's editor. Answer concisely. "
          "When you propose code, put it in fenced code blocks with a language tag; when you change a file or "
          "a selection the user attached, give the complete replacement for it in one block.")

MUTATIONS = [(" == ", " != "), (" != ", " == "), (" < ", " <= "), (" <= ", " < "), (" > ", " >= "),
             (" >= ", " > "), (" + ", " - "), (" - ", " + "), (" and ", " or "), (" or ", " and "),
             (" && ", " || "), (" || ", " && "), ("True", "False"), ("False", "True"), ("true", "false"),
             ("false", "true"), ("+ 1", "- 1"), ("- 1", "+ 1"), ("return ", "return not ")]


def fence(code, lang):
    return f"```{lang}\n{code.rstrip()}\n```"


def first_paragraph(doc):
    para = doc.strip().split("\n\n")[0]
    return " ".join(para.split())


def mutate(code, rng):
    lines = code.split("\n")
    spots = [(i, a, b) for i, ln in enumerate(lines[1:], 1) for a, b in MUTATIONS if a in ln]
    if not spots:
        return None
    i, a, b = rng.choice(spots)
    bad = lines[i].replace(a, b, 1)
    return "\n".join(lines[:i] + [bad] + lines[i + 1:]), bad.strip(), lines[i].strip()


def python_functions(text):
    """[(name, signature, doc, source, source_without_doc)] of documented, short functions."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    lines = text.split("\n")
    out = []
    for n in ast.walk(tree):
        if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(n)
        if not doc or not (3 <= n.end_lineno - n.lineno <= 40) or len(first_paragraph(doc)) < 20:
            continue
        src = textwrap.dedent("\n".join(lines[n.lineno - 1:n.end_lineno]))
        d0, d1 = n.body[0].lineno - n.lineno, n.body[0].end_lineno - n.lineno
        src_lines = src.split("\n")
        bare = "\n".join(src_lines[:d0] + src_lines[d1 + 1:])
        if len(n.body) < 2:
            continue
        args = ", ".join(a.arg for a in n.args.args)
        out.append((n.name, f"{n.name}({args})", doc, src, bare))
    return out


BRACE_FN = re.compile(r"/\*\*((?:(?!\*/).)*?)\*/\s*\n([^\n{;]*?\b([A-Za-z_]\w*)\s*\([^;{]*\)[^;{\n]*)\{", re.S)


def braced_functions(text):
    out = []
    for m in BRACE_FN.finditer(text):
        doc = re.sub(r"^\s*\* ?", "", m.group(1), flags=re.M).split("@")[0].strip()
        name, header = m.group(3), m.group(2).strip()
        if name in ("if", "for", "while", "switch", "catch", "return") or len(first_paragraph(doc)) < 20:
            continue
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        body = text[m.start(2):i + 1]
        n_lines = body.count("\n")
        if depth != 0 or not (2 <= n_lines <= 40):
            continue
        bare = textwrap.dedent(body)  # group 2 starts at the header line's start, indentation included
        doc_block = "/**\n" + "\n".join(" * " + ln for ln in first_paragraph(doc).split("\n")) + "\n */\n"
        out.append((name, header, doc, doc_block + bare, bare))
    return out


def chat_for_doc(lang, path, text, rng, max_examples=2):
    """Piece lists (see examples.py) for one file."""
    fns = python_functions(text) if lang == "python" else braced_functions(text)
    if not fns:
        return []
    rng.shuffle(fns)
    word = {"python": "Python", "javascript": "JavaScript", "typescript": "TypeScript", "c": "C", "cpp": "C++"}[lang]
    out = []
    for name, sig, doc, src, bare in fns[:max_examples]:
        what = first_paragraph(doc)
        what_l = what[0].lower() + what[1:]
        system = SYSTEM if rng.random() < 0.85 else "You are a helpful coding assistant."
        k = rng.random()
        if k < 0.3:
            q = f"Write a {word} function `{sig}` that {what_l.rstrip('.')}."
            a = f"Here is `{name}`:\n\n{fence(src, lang)}"
        elif k < 0.5:
            q = f"Explain what this code does:\n\n{fence(bare, lang)}"
            a = f"`{name}`: {what}"
        elif k < 0.7:
            m = mutate(bare, rng)
            if m is None:
                continue
            bad_code, bad, good = m
            q = f"Fix the bug in this function:\n\n{fence(bad_code, lang)}"
            a = f"The line `{bad}` is wrong; it should be `{good}`:\n\n{fence(bare, lang)}"
        elif k < 0.85:
            q = f"Selected code from {path}:\n{fence(bare, lang)}\n\nAdd a docstring to `{name}`." if lang == "python" else \
                f"Selected code from {path}:\n{fence(bare, lang)}\n\nAdd a doc comment to `{name}`."
            a = fence(src, lang)
        else:
            window = text if len(text) < 3000 else text[max(0, text.find(bare[:40]) - 1000):][:3000]
            q = f"The file open in the editor, {path}:\n{fence(window, lang)}\n\nWhat does `{name}` do?"
            a = f"`{name}` {what_l}\n\n{fence(bare, lang)}"
        out.append(chat_pieces(system, [(q, a)]))
    return out
