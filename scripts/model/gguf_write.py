"""Writes the trained model as a GGUF v3 file that llama.cpp loads as `qwen2` (runs on the GPU machine).

Self-contained on purpose: the GPU machine has numpy but no gguf-py dependencies, and the format is
small. Layout and key names follow llama.cpp's convert_hf_to_gguf.py for Qwen2 (no Q/K permutation:
qwen2 uses NEOX RoPE); 2-D weights are stored as Q8_0 (blocks of 32 int8 with one fp16 scale, the
same rounding as ggml's quantize_row_q8_0_ref), 1-D norms and biases as F32.
"""
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
ALIGN = 32
T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR = 4, 5, 6, 7, 8, 9
GGML_F32, GGML_Q8_0 = 0, 8
FILE_TYPE_Q8_0 = 7

# Token types as llama.cpp stores them (tokenizer.ggml.token_type).
TOKEN_NORMAL, TOKEN_CONTROL = 1, 3


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(v):
    """(type, bytes) of a metadata value: str, bool, int (u32), float (f32), or typed list."""
    if isinstance(v, bool):
        return T_BOOL, struct.pack("<?", v)
    if isinstance(v, int):
        return T_U32, struct.pack("<I", v)
    if isinstance(v, float):
        return T_F32, struct.pack("<f", v)
    if isinstance(v, str):
        return T_STR, _str(v)
    if isinstance(v, tuple) and v[0] == "i32":
        arr = np.asarray(v[1], dtype="<i4")
        return T_ARR, struct.pack("<IQ", T_I32, len(arr)) + arr.tobytes()
    if isinstance(v, list):
        return T_ARR, struct.pack("<IQ", T_STR, len(v)) + b"".join(_str(s) for s in v)
    raise TypeError(f"unsupported metadata value {type(v)}")


def quantize_q8_0(x: np.ndarray) -> bytes:
    """ggml's reference Q8_0: per block of 32, d = max|x|/127, q = round(x/d)."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(flat).max(axis=1, keepdims=True)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.clip(np.rint(flat * inv), -127, 127).astype(np.int8)
    out = np.empty((flat.shape[0], 34), dtype=np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def write_gguf(path: str, metadata: list, tensors: list) -> None:
    """metadata: [(key, value)]; tensors: [(name, np.ndarray float32 in PyTorch [out, in] layout)]."""
    infos, blobs, offset = [], [], 0
    for name, arr in tensors:
        arr = np.asarray(arr, dtype=np.float32)
        quant = arr.ndim == 2 and arr.shape[-1] % 32 == 0
        data = quantize_q8_0(arr) if quant else np.ascontiguousarray(arr).tobytes()
        dims = list(reversed(arr.shape))  # ggml: ne0 is the innermost (contiguous) dimension
        infos.append(_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
                     + struct.pack("<IQ", GGML_Q8_0 if quant else GGML_F32, offset))
        pad = (-len(data)) % ALIGN
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    kv = b""
    for key, value in metadata:
        t, b = _value(value)
        kv += _str(key) + struct.pack("<I", t) + b
    head = GGUF_MAGIC + struct.pack("<IQQ", 3, len(tensors), len(metadata)) + kv + b"".join(infos)
    head += b"\0" * ((-len(head)) % ALIGN)
    with open(path, "wb") as f:
        f.write(head)
        for b in blobs:
            f.write(b)


CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def qwen2_metadata(cfg: dict, vocab: dict, name: str) -> list:
    """cfg: model dims; vocab: tokens, token_type, merges and the special ids by role."""
    sp = vocab["special"]
    return [
        ("general.architecture", "qwen2"),
        ("general.type", "model"),
        ("general.name", name),
        ("general.license", "MIT"),
        ("general.file_type", FILE_TYPE_Q8_0),
        ("general.quantization_version", 2),
        ("qwen2.block_count", cfg["layers"]),
        ("qwen2.context_length", cfg["context"]),
        ("qwen2.embedding_length", cfg["embd"]),
        ("qwen2.feed_forward_length", cfg["ffn"]),
        ("qwen2.attention.head_count", cfg["heads"]),
        ("qwen2.attention.head_count_kv", cfg["kv_heads"]),
        ("qwen2.rope.freq_base", float(cfg["rope_theta"])),
        ("qwen2.attention.layer_norm_rms_epsilon", float(cfg["eps"])),
        ("tokenizer.ggml.model", "gpt2"),
        ("tokenizer.ggml.pre", "qwen2"),
        ("tokenizer.ggml.tokens", vocab["tokens"]),
        ("tokenizer.ggml.token_type", ("i32", vocab["token_type"])),
        ("tokenizer.ggml.merges", vocab["merges"]),
        ("tokenizer.ggml.bos_token_id", sp["<|endoftext|>"]),
        ("tokenizer.ggml.eos_token_id", sp["<|endoftext|>"]),
        ("tokenizer.ggml.eot_token_id", sp["<|im_end|>"]),
        ("tokenizer.ggml.padding_token_id", sp["<|endoftext|>"]),
        ("tokenizer.ggml.add_bos_token", False),
        ("tokenizer.ggml.fim_pre_token_id", sp["<|fim_prefix|>"]),
        ("tokenizer.ggml.fim_suf_token_id", sp["<|fim_suffix|>"]),
        ("tokenizer.ggml.fim_mid_token_id", sp["<|fim_middle|>"]),
        ("tokenizer.ggml.fim_pad_token_id", sp["<|fim_pad|>"]),
        ("tokenizer.ggml.fim_rep_token_id", sp["<|repo_name|>"]),
        ("tokenizer.ggml.fim_sep_token_id", sp["<|file_sep|>"]),
        ("tokenizer.chat_template", CHATML_TEMPLATE),
    ]


def qwen2_tensors(state: dict, layers: int) -> list:
    """HF Qwen2ForCausalLM state dict (numpy float32) → GGUF tensor list (tied output head)."""
    t = [("token_embd.weight", state["model.embed_tokens.weight"])]
    for i in range(layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        t += [
            (b + "attn_norm.weight", state[p + "input_layernorm.weight"]),
            (b + "attn_q.weight", state[p + "self_attn.q_proj.weight"]),
            (b + "attn_q.bias", state[p + "self_attn.q_proj.bias"]),
            (b + "attn_k.weight", state[p + "self_attn.k_proj.weight"]),
            (b + "attn_k.bias", state[p + "self_attn.k_proj.bias"]),
            (b + "attn_v.weight", state[p + "self_attn.v_proj.weight"]),
            (b + "attn_v.bias", state[p + "self_attn.v_proj.bias"]),
            (b + "attn_output.weight", state[p + "self_attn.o_proj.weight"]),
            (b + "ffn_norm.weight", state[p + "post_attention_layernorm.weight"]),
            (b + "ffn_gate.weight", state[p + "mlp.gate_proj.weight"]),
            (b + "ffn_up.weight", state[p + "mlp.up_proj.weight"]),
            (b + "ffn_down.weight", state[p + "mlp.down_proj.weight"]),
        ]
    t.append(("output_norm.weight", state["model.norm.weight"]))
    return t
