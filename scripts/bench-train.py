#!/usr/bin/env python3
"""Training speed, arena beside PyTorch, in one run: for each length and mode, one
`arena bench train` process and one `scripts/bench-train-torch.py --one` process back to back
(each configuration in a fresh process, so each peak RSS is its own), then a markdown table with
the ratio. Run it on an idle machine; the torch venv is set up as bench-train-torch.py says.

    scripts/bench-train.py --arena target/release/arena --model DIR \
        [--python ~/.cache/arena/torch-venv/bin/python] [--lens 256,512] [--rank 8] [--steps 3]

DIR is a Hugging Face folder, e.g. the one `arena train sft --max-steps 0` writes from the GGUF.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def last_json(out):
    lines = [l.removeprefix("RESULT ") for l in out.splitlines()]
    return json.loads([l for l in lines if l.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arena", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--python", default=os.path.expanduser("~/.cache/arena/torch-venv/bin/python"))
    ap.add_argument("--lens", default="256,512")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores; {a.steps} timed steps after 1 untimed", file=sys.stderr)
    rows = []
    for length in [int(x) for x in a.lens.split(",")]:
        for mode in ["full", "lora"]:
            rank = a.rank if mode == "lora" else 0
            ours = last_json(subprocess.run(
                [a.arena, "bench", "train", "--model", a.model, "--len", str(length),
                 "--lora-rank", str(rank), "--steps", str(a.steps), "--json"],
                check=True, capture_output=True, text=True).stdout)
            torch = last_json(subprocess.run(
                [a.python, os.path.join(HERE, "bench-train-torch.py"), "--model", a.model,
                 "--rank", str(a.rank), "--steps", str(a.steps), "--one", f"{mode}:{length}"],
                check=True, capture_output=True, text=True).stdout)
            rows.append((mode, length, ours, torch))
            print(f"{mode} {length}: arena {ours['tokens_per_s']:.1f}, torch {torch['tokens_per_s']:.1f} tok/s",
                  file=sys.stderr)
    print("| mode | tokens | arena tok/s | PyTorch tok/s | ratio | arena peak RSS MiB | PyTorch peak RSS MiB (import alone) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for mode, length, o, t in rows:
        label = "full" if mode == "full" else f"LoRA r={a.rank}"
        print(f"| {label} | {length} | {o['tokens_per_s']:.1f} | {t['tokens_per_s']:.1f} | "
              f"{o['tokens_per_s'] / t['tokens_per_s']:.2f}× | {o['peak_rss_mib']:.0f} | "
              f"{t['peak_rss_mib']:.0f} ({t.get('rss_import_mib', 0):.0f}) |")


if __name__ == "__main__":
    main()
