#!/usr/bin/env python3
"""llama.cpp side of `arena bench chat`: time to first token along one multi-turn conversation,
with llama-cpp-python's own prompt reuse and without it.

Run (from the repository root, on an idle machine, back to back with `arena bench chat`):
    "$(scripts/setup-bench.sh llamacpp)" scripts/bench-llamacpp-chat.py \
        --model ~/.cache/arena/models/SmolLM2-135M-Instruct.Q4_1.gguf --threads 1 [--json]

The conversation is arena's (worker/src/chat_bench.rs, QUESTIONS; read from that file so the
two never drift apart): each turn appends a user question and re-sends the whole conversation
through the model's own chat template (create_chat_completion, greedy, up to --answer-tokens
tokens), and the answer joins the conversation. Two Llama objects load the same file:
  with cache     keeps its context between turns; llama-cpp-python evaluates only the tokens
                 after the longest prefix it already holds (its built-in prompt reuse).
  without        reset() before every turn, so the whole prompt is evaluated again; it only
                 needs the first token (max_tokens 1).
TTFT is the time from the call to the first streamed token with text, as arena measures it
(from submitting the request to its first generated token, no network on either side).
n_ctx 4096, n_batch 512, flash attention off.
"""
import argparse
import json
import os
import platform
import re
import sys
import time

TURNS_MAX = 12


def questions():
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "worker", "src", "chat_bench.rs")
    with open(src, encoding="utf-8") as f:
        text = f.read()
    block = re.search(r"const QUESTIONS: \[&str; \d+\] = \[(.*?)\];", text, re.S)
    if not block:
        raise SystemExit(f"cannot find QUESTIONS in {src}")
    found = re.findall(r'"((?:[^"\\]|\\.)*)"', block.group(1))
    if len(found) != TURNS_MAX:
        raise SystemExit(f"expected {TURNS_MAX} questions in {src}, found {len(found)}")
    return found


def cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def turn(llm, messages, max_tokens):
    """(ttft_ms, answer_text, answer_tokens) for one request."""
    started = time.perf_counter()
    ttft = None
    text = []
    n = 0
    for chunk in llm.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                            temperature=0.0, top_k=1, stream=True):
        delta = chunk["choices"][0].get("delta", {})
        piece = delta.get("content")
        if piece:
            if ttft is None:
                ttft = (time.perf_counter() - started) * 1000.0
            text.append(piece)
            n += 1
    if ttft is None:
        ttft = (time.perf_counter() - started) * 1000.0
    return ttft, "".join(text), n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--turns", type=int, default=10)
    ap.add_argument("--answer-tokens", type=int, default=200)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args()
    if not 1 <= args.turns <= TURNS_MAX:
        raise SystemExit(f"--turns must be 1..{TURNS_MAX}")
    import llama_cpp

    def load():
        return llama_cpp.Llama(model_path=args.model, n_ctx=4096, n_batch=512, n_ubatch=512,
                               n_threads=args.threads, n_threads_batch=args.threads,
                               flash_attn=False, verbose=False)

    cached, fresh = load(), load()
    messages = []
    rows = []
    for i, q in enumerate(questions()[:args.turns]):
        messages.append({"role": "user", "content": q})
        before = cached.n_tokens
        ttft_c, answer, n = turn(cached, messages, args.answer_tokens)
        fresh.reset()
        ttft_f, _, _ = turn(fresh, messages, 1)
        # The prompt is what the fresh context evaluated: llama-cpp-python samples its one new
        # token without evaluating it.
        prompt_tokens = fresh.n_tokens
        rows.append({"turn": i + 1, "prompt_tokens": prompt_tokens, "held_before": before,
                     "ttft_ms_cached": ttft_c, "ttft_ms_uncached": ttft_f, "answer_tokens": n})
        messages.append({"role": "assistant", "content": answer})
    report = {"reference": f"llama-cpp-python {llama_cpp.__version__}", "model": args.model,
              "threads": args.threads, "cpu": cpu_name(), "turns": rows}
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        print()
        return
    print(f"llama.cpp ({report['reference']}), {report['cpu']}, {args.threads} thread(s)")
    print()
    print("| turn | prompt tokens | answer tokens | TTFT with prompt reuse (ms) | TTFT without (ms) | speed-up |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['turn']} | {r['prompt_tokens']} | {r['answer_tokens']} | {r['ttft_ms_cached']:.1f} "
              f"| {r['ttft_ms_uncached']:.1f} | {r['ttft_ms_uncached'] / r['ttft_ms_cached']:.2f}x |")
    print()
    print(f"Turn {rows[-1]['turn']} over turn 1, with prompt reuse: "
          f"{rows[-1]['ttft_ms_cached'] / rows[0]['ttft_ms_cached']:.2f}x")


if __name__ == "__main__":
    main()
