#!/usr/bin/env python3
"""Writes LLaMA-architecture GGUF files with random weights, for benchmarks at real model sizes.

Run (from the repository root; the llama.cpp virtualenv has gguf, numpy and llama_cpp):
    "$(scripts/setup-bench.sh llamacpp)" scripts/make-bench-models.py --out ~/.cache/arena/bench-models
which is, once that virtualenv exists:
    ~/.cache/arena/venv-llamacpp/bin/python scripts/make-bench-models.py \
        --out ~/.cache/arena/bench-models [--shapes tinyllama,7b-4l] \
        [--types q4_0,q4_1,q4_k_m,q5_k_m,q6_k,q8_0,bf16] [--smollm2 PATH] [--threads N] [--drop-f16]

For each shape it writes DIR/{shape}-f16.gguf (F16 matrices, F32 norms, weights drawn from a
normal distribution with std 0.02 from a fixed seed, norms 1.0) with the GGUF writer of the
`gguf` package, then quantizes it with llama.cpp's own quantizer (llama_model_quantize with
its default parameters, as `llama-quantize` does) into DIR/{shape}-{type}.gguf (bf16: the
same weights rounded to BF16). Each file
gets a DIR/{name}.json sidecar holding its recipe; a file whose sidecar holds the same recipe
(and whose size matches) is kept, so a second run only writes what is missing. --drop-f16
deletes the F16 file once its quantized files exist (it is remade from the seed when needed):
both shapes with all types take about 16 GB without the F16 files and 21 GB with them.

Shapes (vocabulary and tokenizer copied from SmolLM2-135M-Instruct: every tokenizer.* key,
gpt2 BPE with 49152 tokens, `<|im_start|>`/`<|im_end|>` as BOS/EOS, ChatML template):
    tinyllama   TinyLlama-1.1B: hidden 2048, 22 layers, 32 heads, 4 KV heads, FFN 5632,
                rope theta 10000, rms eps 1e-5, context 2048 (~1.17B parameters with this vocab)
    7b-4l       LLaMA-2-7B with 4 of its 32 layers: hidden 4096, 32 heads, 32 KV heads,
                FFN 11008, rope theta 10000, rms eps 1e-5, context 4096 (~1.21B parameters)
The output layer is untied (its own `output.weight`), as in both originals.

The default SmolLM2 file is $ARENA_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf (ARENA_MODELS
defaults to ~/.cache/arena/models), which scripts/fetch-models.sh fetches.

Tensor layout: GGUF lists dimensions innermost first, so a numpy array of shape [out, in]
(row-major, one row per output) is a GGUF tensor of dims [in, out], which is what llama.cpp
expects for every matrix (token_embd and output are [vocab, hidden] in numpy). llama.cpp's
convert script permutes the Hugging Face Q and K rows for its rotary layout; for random
weights that permutation changes nothing, only the shapes matter.
"""
import argparse
import ctypes
import hashlib
import json
import os
import shutil
import sys
import time
import zlib

import numpy as np

RECIPE_VERSION = 1
DEFAULT_SEED = 20261202
STD = 0.02

SHAPES = {
    "tinyllama": dict(hidden=2048, layers=22, heads=32, kv_heads=4, ffn=5632,
                      rope_theta=10000.0, rms_eps=1e-5, context=2048),
    "7b-4l": dict(hidden=4096, layers=4, heads=32, kv_heads=32, ffn=11008,
                  rope_theta=10000.0, rms_eps=1e-5, context=4096),
}

# type name -> (llama_cpp ftype constant, rough bits per weight for the free-space check)
TYPES = {
    "q4_0": ("LLAMA_FTYPE_MOSTLY_Q4_0", 4.7),
    "q4_1": ("LLAMA_FTYPE_MOSTLY_Q4_1", 5.2),
    "q4_k_m": ("LLAMA_FTYPE_MOSTLY_Q4_K_M", 5.2),
    "q5_k_m": ("LLAMA_FTYPE_MOSTLY_Q5_K_M", 5.9),
    "q6_k": ("LLAMA_FTYPE_MOSTLY_Q6_K", 6.7),
    "q8_0": ("LLAMA_FTYPE_MOSTLY_Q8_0", 8.6),
    "bf16": ("LLAMA_FTYPE_MOSTLY_BF16", 16.0),
}

LLAMA_FTYPE_MOSTLY_F16 = 1
ROWS_PER_CHUNK = 1024


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def default_smollm2():
    base = os.environ.get("ARENA_MODELS", os.path.expanduser("~/.cache/arena/models"))
    return os.path.join(base, "SmolLM2-135M-Instruct.Q4_1.gguf")


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024.0


# --- tokenizer -----------------------------------------------------------------------------

def read_tokenizer(path):
    """Every tokenizer.* key of a GGUF file as (key, value, GGUFValueType, sub type or None)."""
    import gguf

    reader = gguf.GGUFReader(path)
    kvs = []
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        if sub == gguf.GGUFValueType.ARRAY:
            raise SystemExit(f"{path}: nested array in {key} is not supported")
        value = field.contents()
        if isinstance(value, list):
            value = [v.item() if hasattr(v, "item") else v for v in value]
        elif hasattr(value, "item"):
            value = value.item()
        kvs.append((key, value, vtype, sub))
    keys = {k for k, _, _, _ in kvs}
    for need in ("tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
        if need not in keys:
            raise SystemExit(f"{path}: no {need} key; is this the SmolLM2 GGUF file?")
    del reader
    return kvs


def tokenizer_digest(kvs):
    h = hashlib.sha256()
    for key, value, vtype, sub in kvs:
        h.update(json.dumps([key, value, int(vtype), None if sub is None else int(sub)],
                            ensure_ascii=False).encode())
    return h.hexdigest()


# --- F16 file ------------------------------------------------------------------------------

def tensor_plan(cfg, vocab):
    """(name, numpy shape [out, in] or [n], dtype) in the order convert_hf_to_gguf writes them."""
    h, f = cfg["hidden"], cfg["ffn"]
    head_dim = h // cfg["heads"]
    kv = cfg["kv_heads"] * head_dim
    plan = [("token_embd.weight", (vocab, h), np.float16)]
    for i in range(cfg["layers"]):
        b = f"blk.{i}."
        plan += [
            (b + "attn_norm.weight", (h,), np.float32),
            (b + "attn_q.weight", (h, h), np.float16),
            (b + "attn_k.weight", (kv, h), np.float16),
            (b + "attn_v.weight", (kv, h), np.float16),
            (b + "attn_output.weight", (h, h), np.float16),
            (b + "ffn_norm.weight", (h,), np.float32),
            (b + "ffn_gate.weight", (f, h), np.float16),
            (b + "ffn_up.weight", (f, h), np.float16),
            (b + "ffn_down.weight", (h, f), np.float16),
        ]
    plan += [
        ("output_norm.weight", (h,), np.float32),
        ("output.weight", (vocab, h), np.float16),
    ]
    return plan


def make_tensor(name, shape, dtype, seed):
    """Norms are 1.0; matrices are N(0, STD) from a generator seeded by (seed, crc32(name)), so
    each tensor is the same whatever the order or the other tensors. Drawn in float32 by
    blocks of rows straight into the float16 array (no float64 copy of the whole tensor)."""
    if len(shape) == 1:
        return np.ones(shape, dtype=dtype)
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    out = np.empty(shape, dtype=dtype)
    rows, cols = shape
    buf = np.empty((min(ROWS_PER_CHUNK, rows), cols), dtype=np.float32)
    for r in range(0, rows, ROWS_PER_CHUNK):
        n = min(ROWS_PER_CHUNK, rows - r)
        chunk = buf[:n]
        rng.standard_normal(out=chunk, dtype=np.float32)
        chunk *= STD
        out[r:r + n] = chunk
    return out


def write_f16(path, shape_name, cfg, tok_kvs, seed):
    import gguf

    vocab = None
    for key, value, _, _ in tok_kvs:
        if key == "tokenizer.ggml.tokens":
            vocab = len(value)
    head_dim = cfg["hidden"] // cfg["heads"]
    plan = tensor_plan(cfg, vocab)

    w = gguf.GGUFWriter(path, "llama")
    w.add_name(f"arena bench {shape_name} (random weights)")
    w.add_uint32("llama.context_length", cfg["context"])
    w.add_uint32("llama.embedding_length", cfg["hidden"])
    w.add_uint32("llama.block_count", cfg["layers"])
    w.add_uint32("llama.feed_forward_length", cfg["ffn"])
    w.add_uint32("llama.attention.head_count", cfg["heads"])
    w.add_uint32("llama.attention.head_count_kv", cfg["kv_heads"])
    w.add_uint32("llama.rope.dimension_count", head_dim)
    w.add_float32("llama.attention.layer_norm_rms_epsilon", cfg["rms_eps"])
    w.add_float32("llama.rope.freq_base", cfg["rope_theta"])
    w.add_uint32("llama.vocab_size", vocab)
    w.add_uint32("general.file_type", LLAMA_FTYPE_MOSTLY_F16)
    for key, value, vtype, sub in tok_kvs:
        w.add_key_value(key, value, vtype, sub_type=sub)

    # Streaming: declare every tensor, write header, metadata and tensor index, then each
    # tensor's data as it is drawn (only one tensor in memory at a time).
    for name, shape, dtype in plan:
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        w.add_tensor_info(name, shape, np.dtype(dtype), nbytes)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, shape, dtype in plan:
        w.write_tensor_data(make_tensor(name, shape, dtype, seed))
    w.flush()
    w.close()


def f16_bytes(cfg, vocab):
    return sum(int(np.prod(s)) * np.dtype(d).itemsize for _, s, d in tensor_plan(cfg, vocab))


# --- bookkeeping ---------------------------------------------------------------------------

def sidecar_path(gguf_path):
    return gguf_path[: -len(".gguf")] + ".json"


def up_to_date(path, recipe):
    try:
        with open(sidecar_path(path)) as f:
            side = json.load(f)
        return side.get("recipe") == recipe and side.get("bytes") == os.path.getsize(path)
    except (OSError, ValueError):
        return False


def finish(part, path, recipe, seconds):
    os.replace(part, path)
    side = {"recipe": recipe, "bytes": os.path.getsize(path), "seconds": round(seconds, 1)}
    tmp = sidecar_path(path) + ".part"
    with open(tmp, "w") as f:
        json.dump(side, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, sidecar_path(path))


def forget(path):
    for p in (path, sidecar_path(path)):
        try:
            os.remove(p)
        except FileNotFoundError:
            pass


def need_space(out_dir, nbytes, what):
    free = shutil.disk_usage(out_dir).free
    if free < nbytes + (256 << 20):
        raise SystemExit(f"not enough disk space for {what}: about {human(nbytes)} needed, "
                         f"{human(free)} free in {out_dir} (--drop-f16 saves the F16 files)")


def quantize(llama_cpp, src, dst, type_name, threads):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, TYPES[type_name][0])
    params.nthread = threads
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        raise SystemExit(f"llama_model_quantize({src} -> {type_name}) failed with {rc}")


# --- main ----------------------------------------------------------------------------------

def parse_list(value, known, what):
    items = [x.strip().lower() for x in value.split(",") if x.strip()]
    bad = [x for x in items if x not in known]
    if bad or not items:
        raise SystemExit(f"unknown {what}: {','.join(bad) or '(none)'}; known: {','.join(known)}")
    return items


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (created if missing)")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated, of: " + ",".join(SHAPES))
    ap.add_argument("--types", default=",".join(TYPES), help="comma-separated, of: " + ",".join(TYPES))
    ap.add_argument("--smollm2", default=default_smollm2(), help="GGUF file to take the tokenizer from")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--threads", type=int, default=0, help="quantizer threads (0: all cores)")
    ap.add_argument("--drop-f16", action="store_true",
                    help="delete each F16 file once its quantized files are written")
    ap.add_argument("--verbose", action="store_true", help="show llama.cpp's quantizer log")
    args = ap.parse_args()

    shapes = parse_list(args.shapes, list(SHAPES), "shape")
    types = parse_list(args.types, list(TYPES), "type")
    if not os.path.isfile(args.smollm2):
        raise SystemExit(f"{args.smollm2}: not found (scripts/fetch-models.sh fetches it, or pass --smollm2)")
    out_dir = os.path.abspath(os.path.expanduser(args.out))
    os.makedirs(out_dir, exist_ok=True)

    import llama_cpp
    import llama_cpp._logger as llama_logger

    llama_logger.set_verbose(args.verbose)
    llama_cpp.llama_backend_init()

    tok_kvs = read_tokenizer(args.smollm2)
    tok = {"source": os.path.basename(args.smollm2), "sha256": tokenizer_digest(tok_kvs)}
    vocab = next(len(v) for k, v, _, _ in tok_kvs if k == "tokenizer.ggml.tokens")

    report = []  # (path, bytes, seconds or None when kept, note or None)
    for shape in shapes:
        cfg = SHAPES[shape]
        f16_recipe = {"version": RECIPE_VERSION, "shape": shape, "config": cfg, "vocab": vocab,
                      "seed": args.seed, "std": STD, "tokenizer": tok, "type": "f16"}
        f16_path = os.path.join(out_dir, f"{shape}-f16.gguf")
        todo, kept = [], []
        for t in types:
            q_path = os.path.join(out_dir, f"{shape}-{t}.gguf")
            q_recipe = dict(f16_recipe, type=t, quantizer=f"llama-cpp-python {llama_cpp.__version__}")
            if up_to_date(q_path, q_recipe):
                kept.append((q_path, os.path.getsize(q_path), None, None))
            else:
                todo.append((t, q_path, q_recipe))

        have_f16 = up_to_date(f16_path, f16_recipe)
        if not have_f16 and (todo or not args.drop_f16):
            forget(f16_path)
            need_space(out_dir, f16_bytes(cfg, vocab), f16_path)
            log(f"writing {f16_path} ...")
            t0 = time.monotonic()
            part = f16_path + ".part"
            try:
                write_f16(part, shape, cfg, tok_kvs, args.seed)
            except BaseException:
                forget(part)
                raise
            secs = time.monotonic() - t0
            finish(part, f16_path, f16_recipe, secs)
            report.append((f16_path, os.path.getsize(f16_path), secs, None))
            log(f"  {human(os.path.getsize(f16_path))} in {secs:.1f} s")
        elif have_f16 and not args.drop_f16:
            report.append((f16_path, os.path.getsize(f16_path), None, None))

        report += kept
        for t, q_path, q_recipe in todo:
            forget(q_path)
            need_space(out_dir, int(f16_bytes(cfg, vocab) * TYPES[t][1] / 16), q_path)
            log(f"quantizing {os.path.basename(f16_path)} to {t} ...")
            t0 = time.monotonic()
            part = q_path + ".part"
            try:
                quantize(llama_cpp, f16_path, part, t, args.threads)
            except BaseException:
                forget(part)
                raise
            secs = time.monotonic() - t0
            finish(part, q_path, q_recipe, secs)
            report.append((q_path, os.path.getsize(q_path), secs, None))
            log(f"  {human(os.path.getsize(q_path))} in {secs:.1f} s")

        if args.drop_f16 and os.path.exists(f16_path):
            log(f"deleting {f16_path} (--drop-f16)")
            forget(f16_path)
            report = [(p, n, s, "deleted (--drop-f16)" if p == f16_path else note)
                      for p, n, s, note in report]

    width = max(len(os.path.basename(r[0])) for r in report) if report else 0
    for path, nbytes, secs, note in report:
        how = "kept (same recipe)" if secs is None else f"written in {secs:.1f} s"
        if note:
            how += ", " + note
        print(f"{os.path.basename(path):<{width}}  {human(nbytes):>10}  {how}")
    print(f"in {out_dir}")


if __name__ == "__main__":
    main()
