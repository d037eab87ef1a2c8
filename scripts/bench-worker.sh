#!/usr/bin/env bash
# Worker benchmark, arena beside llama.cpp: the same GGUF, the same thread count, the same
# workload, run back to back, printed as a Markdown table with ratios (arena / llama.cpp).
#
#   THREADS=2 ./scripts/bench-worker.sh
#
# llama-cpp-python 0.3.36 built without AMX comes from scripts/setup-bench.sh llamacpp (run here
# when missing: about 15 minutes the first time, cached in ~/.cache/arena/venv-llamacpp).
# Run it on an idle machine: with 2 threads, one busy core halves either side's numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"
# MODEL=FILE measures another GGUF (e.g. from scripts/make-bench-models.py); SmolLM2 by default.
MODEL="${MODEL:-$(./scripts/fetch-models.sh)}"

LLAMACPP_PYTHON="$(./scripts/setup-bench.sh llamacpp)"
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/arena"

ours=$("$bin" --log warn --threads "$THREADS" bench worker --model "$MODEL" --json)
theirs=$("$LLAMACPP_PYTHON" scripts/bench-llamacpp.py --model "$MODEL" --threads "$THREADS" --json)

python3 - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
m = {x["name"]: x["tokens_per_s"] for x in ours["measures"]}
rows = [
    ("prefill, 128-token prompt (tok/s)", m.get("prefill 128 tokens"), theirs["prefill_tok_s"].get("128")),
    ("prefill, 512-token prompt (tok/s)", m.get("prefill 512 tokens"), theirs["prefill_tok_s"].get("512")),
    ("decode, 1 sequence, 128 new tokens (tok/s)", m.get("decode 128 tokens, 1 sequence"), theirs["decode_tok_s"]),
    ("decode, 4 sequences, aggregate (tok/s)", m.get("decode 128 tokens, 4 sequences (aggregate)"), theirs["batched_decode_aggregate_tok_s"].get("4")),
    ("decode, 8 sequences, aggregate (tok/s)", m.get("decode 128 tokens, 8 sequences (aggregate)"), theirs["batched_decode_aggregate_tok_s"].get("8")),
    ("peak RSS (MiB, lower is better)", ours["peak_rss_mib"], theirs["peak_rss_mib"]),
]
print(f"threads: {ours['threads']}, model: {theirs['model']}, reference: {theirs['engine']}\n")
print("| measure | arena | llama.cpp | arena / llama.cpp |")
print("|---|---:|---:|---:|")
for name, a, b in rows:
    ratio = f"{a / b:.2f}x" if a and b else "n/a"
    fa = f"{a:.1f}" if a is not None else "n/a"
    fb = f"{b:.1f}" if b is not None else "n/a"
    print(f"| {name} | {fa} | {fb} | {ratio} |")
PY
