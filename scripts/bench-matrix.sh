#!/usr/bin/env bash
# The worker benchmark over many GGUF files: scripts/bench-worker.sh (arena beside llama.cpp,
# back to back) for each, one Markdown table per file under a header naming the CPU.
#
#   THREADS=2 ./scripts/bench-matrix.sh                    # every file in ~/.cache/arena/bench-models
#   THREADS=1 ./scripts/bench-matrix.sh a.gguf b.gguf      # chosen files
#
# Make the benchmark models first: scripts/make-bench-models.py (see docs/BENCHMARKS.md).
# Run it on an idle machine: nothing else may compile or serve meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS="${THREADS:-2}"
dir="${BENCH_MODELS:-$HOME/.cache/arena/bench-models}"
if [ "$#" -gt 0 ]; then
    models=("$@")
else
    shopt -s nullglob
    models=("$dir"/*.gguf)
fi
if [ "${#models[@]}" -eq 0 ]; then
    echo "bench-matrix: no GGUF files given and none in $dir; run scripts/make-bench-models.py first" >&2
    exit 1
fi
field() { grep -m1 "^$1[[:space:]]*:" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'; }
cpu=$(field 'model name')
# VMs often report only "AMD EPYC": family and model name the generation (25/1 Zen 3, 25/17 Zen 4).
flags=$(grep -m1 '^flags' /proc/cpuinfo)
simd=$(grep -qw avx512_vnni <<<"$flags" && echo "AVX-512 VNNI" || echo "AVX2, no AVX-512 VNNI")
if grep -qw amx_bf16 <<<"$flags"; then simd="$simd, AMX"; fi
echo "CPU: ${cpu:-unknown} (family $(field 'cpu family') model $(field model), $simd, $(nproc) cores), threads: $THREADS, $(date -u +%Y-%m-%d)"
for m in "${models[@]}"; do
    echo
    echo "### $(basename "$m" .gguf)"
    echo
    MODEL="$m" THREADS="$THREADS" ./scripts/bench-worker.sh
done
