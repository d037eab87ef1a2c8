#!/usr/bin/env python3
"""llama.cpp side of the worker benchmark (the same workload as `arena bench worker`).

Run (from the repository root, on an idle machine; run both sides back to back):
    "$(scripts/setup-bench.sh llamacpp)" scripts/bench-llamacpp.py \
        --model "$(scripts/fetch-models.sh)" --threads 2 [--json]

Needs llama-cpp-python==0.3.36 built without AMX (DESIGN.md section 12), which
scripts/setup-bench.sh llamacpp builds into ~/.cache/arena/venv-llamacpp.

Workload (n_ctx 2048, n_batch 512, n_ubatch 512, flash attention off, greedy):
  prefill    tokens/s for a 128- and a 512-token prompt: llm.reset(); llm.eval(ids); best of 3.
             The prompt is a fixed list of ids: a repeated English paragraph tokenized and cut
             to exactly N ids.
  decode     single-stream greedy decode tokens/s: after a 16-token prompt (not timed, its
             argmax is the first new token), 128 timed steps of llm.eval([tok]) and
             tok = argmax of the last logits. Best of 3.
  batched    aggregate greedy decode tokens/s with 1, 4 and 8 concurrent sequences, through
             the low-level API (llama_batch_init / llama_decode with seq ids, as llama.cpp's
             `batched` example): a context with n_seq_max = S and a unified KV cache; each
             sequence gets its own 16-token prompt (prefilled, not timed), then 128 timed
             steps each decode one batch holding one token per sequence; S * 128 tokens over
             the time of the 128 steps. Best of 3 (1 and 4) / best of 2 (8).
  peak RSS   resource.getrusage(RUSAGE_SELF).ru_maxrss after the single-stream part and at
             the end (the process holds the model once and the contexts in turn).
"""
import argparse
import ctypes
import json
import os
import platform
import resource
import sys
import time

N_CTX = 2048
N_BATCH = 512
PREFILL_LENS = (128, 512)
DECODE_NEW = 128
DECODE_PROMPT = 16
BATCH_SEQS = (1, 4, 8)

PARAGRAPH = (
    "The history of computing is a story of people finding ways to make machines do more of "
    "the tedious work of calculation. Early mechanical calculators could add and subtract, "
    "and later designs could multiply and divide. In the twentieth century, electronic "
    "computers replaced gears with vacuum tubes and then transistors, and programs moved from "
    "plugboards into memory. Today a small language model can run on an ordinary laptop, "
    "answering questions, summarizing documents and writing code, one token at a time. "
)


def default_model():
    base = os.environ.get("ARENA_MODELS", os.path.expanduser("~/.cache/arena/models"))
    return os.path.join(base, "SmolLM2-135M-Instruct.Q4_1.gguf")


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def fixed_ids(llm, n, offset=0):
    ids = []
    reps = 1
    while len(ids) < n + offset:
        ids = llm.tokenize((PARAGRAPH * reps).encode(), add_bos=False, special=False)
        reps *= 2
    return [int(t) for t in ids[offset : offset + n]]


def argmax_last(llm, np, n_vocab):
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return int(np.ctypeslib.as_array(ptr, shape=(n_vocab,)).argmax())


def bench_prefill(llm, ids, reps=3):
    best = None
    for _ in range(reps):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return len(ids) / best


def bench_decode(llm, np, n_vocab, prompt, n_new, reps=3):
    best = None
    text_ids = None
    for _ in range(reps):
        llm.reset()
        llm.eval(prompt)
        tok = argmax_last(llm, np, n_vocab)
        out = [tok]
        t0 = time.perf_counter()
        for _ in range(n_new):
            llm.eval([tok])
            tok = argmax_last(llm, np, n_vocab)
            out.append(tok)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
        text_ids = out
    return n_new / best, text_ids


def bench_batched(llm, np, n_vocab, n_seqs, threads, n_new, reps, flash_attn):
    """Aggregate greedy decode over n_seqs concurrent sequences (low-level API)."""
    import llama_cpp

    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx = N_CTX
    cparams.n_batch = N_BATCH
    cparams.n_ubatch = N_BATCH
    cparams.n_seq_max = n_seqs
    cparams.kv_unified = True
    cparams.n_threads = threads
    cparams.n_threads_batch = threads
    cparams.flash_attn_type = (
        llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    )
    cparams.no_perf = True
    ctx = llama_cpp.llama_init_from_model(llm._model.model, cparams)
    if not ctx:
        raise RuntimeError("llama_init_from_model failed")
    batch = llama_cpp.llama_batch_init(max(N_BATCH, n_seqs * DECODE_PROMPT), 0, n_seqs)
    mem = llama_cpp.llama_get_memory(ctx)

    def fill(entries):
        # entries: list of (token, pos, seq, want_logits)
        batch.n_tokens = len(entries)
        for i, (tok, pos, seq, want) in enumerate(entries):
            batch.token[i] = tok
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = 1 if want else 0

    def decode():
        rc = llama_cpp.llama_decode(ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")

    def argmax_ith(i):
        ptr = llama_cpp.llama_get_logits_ith(ctx, i)
        return int(np.ctypeslib.as_array(ptr, shape=(n_vocab,)).argmax())

    prompts = [fixed_ids(llm, DECODE_PROMPT, offset=s * DECODE_PROMPT) for s in range(n_seqs)]
    best = None
    try:
        for _ in range(reps):
            llama_cpp.llama_memory_clear(mem, True)
            # Prefill every sequence's prompt in one batch (not timed).
            entries = []
            for s, p in enumerate(prompts):
                for j, tok in enumerate(p):
                    entries.append((tok, j, s, j == len(p) - 1))
            fill(entries)
            decode()
            toks = [argmax_ith(s * DECODE_PROMPT + DECODE_PROMPT - 1) for s in range(n_seqs)]
            pos = DECODE_PROMPT
            t0 = time.perf_counter()
            for _ in range(n_new):
                fill([(toks[s], pos, s, True) for s in range(n_seqs)])
                decode()
                toks = [argmax_ith(s) for s in range(n_seqs)]
                pos += 1
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
    finally:
        llama_cpp.llama_batch_free(batch)
        llama_cpp.llama_free(ctx)
    return n_seqs * n_new / best


def main():
    ap = argparse.ArgumentParser(description="llama.cpp reference benchmark for arena workers")
    ap.add_argument("--model", default=default_model())
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--flash-attn", action="store_true", help="enable flash attention (default off)")
    ap.add_argument("--no-batched", action="store_true", help="skip the multi-sequence part")
    args = ap.parse_args()

    import numpy as np
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=args.model,
        n_ctx=N_CTX,
        n_batch=N_BATCH,
        n_ubatch=N_BATCH,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        flash_attn=args.flash_attn,
        verbose=False,
    )
    n_vocab = llm.n_vocab()

    res = {
        "engine": f"llama.cpp via llama-cpp-python {llama_cpp.__version__}",
        "model": os.path.basename(args.model),
        "threads": args.threads,
        "n_ctx": N_CTX,
        "n_batch": N_BATCH,
        "flash_attn": bool(args.flash_attn),
        "cpu": platform.processor() or platform.machine(),
        "nproc": os.cpu_count(),
        "loadavg_before": os.getloadavg()[0],
    }

    # warm-up (page in weights, build graphs)
    llm.reset()
    llm.eval(fixed_ids(llm, 32))

    prefill = {}
    for n in PREFILL_LENS:
        prefill[str(n)] = round(bench_prefill(llm, fixed_ids(llm, n)), 2)
    res["prefill_tok_s"] = prefill

    dec, out_ids = bench_decode(llm, np, n_vocab, fixed_ids(llm, DECODE_PROMPT), DECODE_NEW)
    res["decode_tok_s"] = round(dec, 2)
    res["decode_prompt_tokens"] = DECODE_PROMPT
    res["decode_new_tokens"] = DECODE_NEW
    res["decode_first_ids"] = out_ids[:8]
    res["peak_rss_mib_single"] = round(peak_rss_mib(), 1)

    batched = {}
    batched_note = None
    if args.no_batched:
        batched_note = "not measured (--no-batched)"
    else:
        try:
            for s in BATCH_SEQS:
                reps = 2 if s >= 8 else 3
                batched[str(s)] = round(
                    bench_batched(llm, np, n_vocab, s, args.threads, DECODE_NEW, reps, args.flash_attn), 2
                )
        except Exception as e:  # report, do not hide
            batched_note = f"not measured: {type(e).__name__}: {e}"
    res["batched_decode_aggregate_tok_s"] = batched
    if batched_note:
        res["batched_note"] = batched_note
    res["peak_rss_mib"] = round(peak_rss_mib(), 1)
    res["loadavg_after"] = os.getloadavg()[0]

    if args.json:
        print(json.dumps(res))
        return
    print(f"{res['engine']}  model={res['model']}  threads={args.threads}  "
          f"n_ctx={N_CTX} n_batch={N_BATCH} flash_attn={res['flash_attn']}")
    print(f"{'measure':<44} {'value':>10}")
    for n in PREFILL_LENS:
        print(f"{'prefill tok/s, ' + str(n) + '-token prompt':<44} {prefill[str(n)]:>10.1f}")
    print(f"{'decode tok/s, 1 stream, 128 new':<44} {res['decode_tok_s']:>10.1f}")
    for s, v in batched.items():
        print(f"{'decode tok/s aggregate, ' + s + ' sequences':<44} {v:>10.1f}")
    if batched_note:
        print(f"batched decode: {batched_note}")
    print(f"{'peak RSS MiB (after single-stream)':<44} {res['peak_rss_mib_single']:>10.1f}")
    print(f"{'peak RSS MiB (end)':<44} {res['peak_rss_mib']:>10.1f}")
    print(f"load average before/after: {res['loadavg_before']:.2f} / {res['loadavg_after']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
