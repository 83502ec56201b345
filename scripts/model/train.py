"""Step 2 of the test-model recipe, on the GPU machine: tokenizer, examples, training, GGUF.

    python3 scripts/model/train.py --data .gpu/model/data --out "$OUT" [--minutes 5] [--smoke]

Trains a byte-level BPE tokenizer with Qwen2's pre-tokenizer and the Qwen2.5-Coder special tokens,
builds FIM / file / chat examples (examples.py, chat_examples.py), trains a Qwen2 model from scratch
(transformers, bf16 autocast) for a fixed wall-clock budget, and writes strata-test-coder.gguf
(gguf_write.py), tokenizer.json and train-log.json into --out. Seeds are fixed; the number of steps
follows the measured step time, so a slower or faster GPU trains for fewer or more steps (the log
records how many).
"""
import argparse
import json
import lzma
import math
import multiprocessing as mp
import os
import random
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chat_examples import chat_for_doc  # noqa: E402
from examples import SPECIALS, build_examples  # noqa: E402
from gguf_write import TOKEN_CONTROL, TOKEN_NORMAL, qwen2_metadata, qwen2_tensors, write_gguf  # noqa: E402

QWEN2_PRETOKENIZE = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                     r"|\s*[\r\n]+|\s+(?!\S)|\s+")
ROPE_THETA = 100000.0  # llama.cpp reads it from the GGUF (qwen2.rope.freq_base): one constant for both
LANGS = ["python", "javascript", "typescript", "c", "cpp"]


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, flush=True)


def load_docs(data_dir, limit):
    docs = []
    for lang in LANGS:
        p = os.path.join(data_dir, f"{lang}.jsonl.xz")
        if not os.path.exists(p):
            continue
        with lzma.open(p, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f):
                if limit and n >= limit:
                    break
                j = json.loads(line)
                text = j["t"]
                for s in SPECIALS:  # a literal special token in code would tokenize differently here and there
                    text = text.replace(s, s.replace("|", "｜"))
                docs.append((lang, j["s"], j["p"], text))
    docs.sort(key=lambda d: (d[1], d[2]))
    return docs


def train_tokenizer(docs, vocab_size, seed):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    rng = random.Random(seed)
    sample = [d[3] for d in docs if rng.random() < 0.25][:40000]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(SPECIALS), min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(sample, trainer)
    tok.add_special_tokens(SPECIALS)
    return tok


def gguf_vocab(tok):
    vocab = tok.get_vocab(with_added_tokens=True)
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = json.loads(tok.to_str())["model"]["merges"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
    special = {s: vocab[s] for s in SPECIALS}
    types = [TOKEN_CONTROL if t in special else TOKEN_NORMAL for t in tokens]
    return {"tokens": tokens, "token_type": types, "merges": merges, "special": special}


def _chat_job(args):
    import warnings
    warnings.filterwarnings("ignore")  # ast.parse of third-party code warns about its escapes
    i, lang, path, text, seed = args
    return i, chat_for_doc(lang, path, text, random.Random(f"{seed}:chat:{i}"))


FIM_WEIGHT, ANSWER_WEIGHT = 8, 2


def encode_examples(tok, examples, special_ids):
    """Piece lists → (uint16 ids, uint8 loss weights) each; text pieces tokenized separately, in parallel
    batches. A FIM middle (and the end token that closes it) weighs FIM_WEIGHT, an assistant answer
    ANSWER_WEIGHT: they are a few tokens among thousands of context, and the part a user sees."""
    out = []
    for start in range(0, len(examples), 20000):
        chunk = examples[start:start + 20000]
        texts = [p for ex in chunk for p in ex if p not in special_ids and p]
        enc = iter(tok.encode_batch(texts, add_special_tokens=False))
        for ex in chunk:
            ids, weights, w = [], [], 1
            for n, p in enumerate(ex):
                if p in special_ids:
                    ids.append(special_ids[p])
                    weights.append(w)
                    if p == "<|fim_middle|>":
                        w = FIM_WEIGHT
                    elif p == "<|im_start|>" and n + 1 < len(ex) and ex[n + 1].startswith("assistant\n"):
                        w = ANSWER_WEIGHT
                    elif p in ("<|endoftext|>", "<|im_end|>"):
                        w = 1
                elif p:
                    piece = next(enc).ids
                    ids.extend(piece)
                    weights.extend([w] * len(piece))
            out.append((np.asarray(ids, dtype=np.uint16), np.asarray(weights, dtype=np.uint8)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--embd", type=int, default=512)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=1536)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--deadline", type=float, default=540.0,
                    help="seconds from start by which training must end (leaves time to write the GGUF)")
    ap.add_argument("--smoke", action="store_true", help="a few hundred files and 40 steps: checks the pipeline")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    random.seed(a.seed)
    np.random.seed(a.seed)
    t0 = time.time()
    docs = load_docs(a.data, 300 if a.smoke else 0)
    log(f"{len(docs)} files, {sum(len(d[3]) for d in docs) / 1e6:.1f} M chars")

    tok = train_tokenizer(docs, a.vocab, a.seed)
    tok.save(os.path.join(a.out, "tokenizer.json"))
    vocab = gguf_vocab(tok)
    special_ids = vocab["special"]
    log(f"tokenizer: {len(vocab['tokens'])} tokens, {len(vocab['merges'])} merges ({time.time() - t0:.0f} s)")

    with mp.Pool(min(16, os.cpu_count() or 1)) as pool:
        jobs = [(i, d[0], d[2], d[3], a.seed) for i, d in enumerate(docs)]
        chat = {i: ex for i, ex in pool.imap_unordered(_chat_job, jobs, chunksize=64) if ex}
    examples = build_examples(docs, a.seed, chat=chat)
    n_chat = sum(len(v) for v in chat.values())
    random.Random(a.seed).shuffle(examples)
    encoded = encode_examples(tok, examples, special_ids)
    stream = np.concatenate([e[0] for e in encoded])
    weights = np.concatenate([e[1] for e in encoded])
    del encoded
    probe = [d[3] for d in docs[:: max(1, len(docs) // 500)]]
    chars_per_token = sum(map(len, probe)) / max(1, sum(len(e.ids) for e in tok.encode_batch(probe, add_special_tokens=False)))
    log(f"{len(examples)} examples ({n_chat} chat), {len(stream) / 1e6:.1f} M tokens, "
        f"{chars_per_token:.2f} chars/token on whole files ({time.time() - t0:.0f} s)")

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(a.seed)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    rows = len(stream) // (a.seq + 1)
    data = torch.from_numpy(stream[: rows * (a.seq + 1)].astype(np.int64).reshape(rows, a.seq + 1))
    wdata = torch.from_numpy(weights[: rows * (a.seq + 1)].reshape(rows, a.seq + 1))
    n_val = max(2, rows // 200)
    perm = torch.randperm(rows, generator=torch.Generator().manual_seed(a.seed))
    val, train = data[perm[:n_val]], data[perm[n_val:]]
    wval, wtrain = wdata[perm[:n_val]], wdata[perm[n_val:]]
    cfg = Qwen2Config(vocab_size=a.vocab, hidden_size=a.embd, intermediate_size=a.ffn, num_hidden_layers=a.layers,
                      num_attention_heads=a.heads, num_key_value_heads=a.kv_heads, max_position_embeddings=a.seq,
                      rope_parameters={"rope_type": "default", "rope_theta": ROPE_THETA}, rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
                      bos_token_id=special_ids["<|endoftext|>"], eos_token_id=special_ids["<|endoftext|>"])
    rope = getattr(cfg, "rope_parameters", None) or {"rope_theta": getattr(cfg, "rope_theta", None)}
    assert rope.get("rope_theta") == ROPE_THETA, f"transformers kept RoPE base {rope}, not {ROPE_THETA}"
    assert cfg.rms_norm_eps == 1e-6 and cfg.tie_word_embeddings
    model = Qwen2ForCausalLM(cfg).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.1f} M parameters, {len(train)} training rows of {a.seq} tokens")
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), weight_decay=0.1,
                            fused=dev == "cuda")
    budget = 40 if a.smoke else None
    warmup, step, seen, t_train, losses = 100, 0, 0, time.time(), []
    g = torch.Generator().manual_seed(a.seed + 1)
    order = torch.randperm(len(train), generator=g)
    pos = 0
    total_steps = budget or 10 ** 9
    while step < total_steps:
        if pos + a.batch > len(order):
            order, pos = torch.randperm(len(train), generator=g), 0
        idx = order[pos:pos + a.batch]
        batch = train[idx].to(dev, non_blocking=True)
        bw = wtrain[idx].to(dev, non_blocking=True)
        pos += a.batch
        lr = a.lr * min(1.0, (step + 1) / warmup)
        if step >= warmup and total_steps < 10 ** 9:
            lr = a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup))))
        for group in opt.param_groups:
            group["lr"] = lr
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=dev == "cuda"):
            loss = _loss(model, batch, bw)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += batch.numel()
        if step == 30:
            t30 = time.time()
        if step == 80 and not budget:
            per_step = (time.time() - t30) / 50
            left = a.deadline - (time.time() - t0) - 30
            total_steps = 80 + int(max(0.0, min(a.minutes * 60, left)) / per_step)
            log(f"{per_step * 1000:.0f} ms/step, {batch.numel() / per_step / 1e3:.0f} k tokens/s → {total_steps} steps")
        if step % 200 == 0 or step == total_steps:
            losses.append((step, round(loss.item(), 4)))
            log(f"step {step}/{total_steps} loss {loss.item():.3f} lr {lr:.2e}")
    model.eval()
    with torch.no_grad(), torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=dev == "cuda"):
        val_loss = sum(_loss(model, val[i:i + 8].to(dev)).item() for i in range(0, len(val), 8)) / math.ceil(len(val) / 8)
        val_fim = sum(_loss(model, val[i:i + 8].to(dev), wval[i:i + 8].to(dev), only=FIM_WEIGHT).item()
                      for i in range(0, len(val), 8)) / math.ceil(len(val) / 8)
    train_s = time.time() - t_train
    log(f"trained {step} steps, {seen / 1e6:.0f} M tokens in {train_s:.0f} s; validation loss {val_loss:.3f}, on FIM middles {val_fim:.3f}")

    state = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    dims = {"layers": a.layers, "context": a.seq, "embd": a.embd, "ffn": a.ffn, "heads": a.heads,
            "kv_heads": a.kv_heads, "rope_theta": ROPE_THETA, "eps": 1e-6}
    name = f"Strata test coder ({n_params / 1e6:.0f}M, trained from scratch on permissive code)"
    gguf = os.path.join(a.out, "strata-test-coder.gguf")
    write_gguf(gguf, qwen2_metadata(dims, vocab, name), qwen2_tensors(state, a.layers))
    log(f"wrote {gguf} ({os.path.getsize(gguf) / 2 ** 20:.1f} MiB)")
    with open(os.path.join(a.out, "train-log.json"), "w") as f:
        json.dump({"args": vars(a), "files": len(docs), "examples": len(examples), "chat_examples": n_chat, "chars_per_token": round(chars_per_token, 3),
                   "tokens_in_data": int(len(stream)), "tokens_seen": seen, "steps": step, "train_seconds": round(train_s),
                   "params": n_params, "val_loss": round(val_loss, 4), "val_loss_fim_middle": round(val_fim, 4), "loss_curve": losses,
                   "torch": torch.__version__, "gpu": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
                   "total_seconds": round(time.time() - t0)}, f, indent=1)


def _loss(model, batch, weights=None, only=None):
    """Mean cross-entropy of each next token, weighted (see encode_examples); `only`: that weight class alone."""
    import torch.nn.functional as F
    logits = model(input_ids=batch[:, :-1]).logits
    ce = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1), reduction="none")
    if weights is None:
        return ce.mean()
    w = weights[:, 1:].reshape(-1).float()
    if only is not None:
        w = (w == only).float()
    return (ce * w).sum() / w.sum().clamp(min=1)


if __name__ == "__main__":
    main()
