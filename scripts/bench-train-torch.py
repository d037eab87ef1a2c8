#!/usr/bin/env python3
"""PyTorch reference for the training-speed benchmark (tokens/s of one training step on CPU).

Setup (once; download.pytorch.org is not reachable from our machines, so torch comes from PyPI,
which ships the CUDA build: ~5 GB on disk, and its CUDA libraries add ~300 MiB to the RSS of a
bare `import torch` even on CPU; see rss_import_mib below):
    python3 -m venv $HOME/.cache/arena/torch-venv
    $HOME/.cache/arena/torch-venv/bin/python -m pip install --upgrade pip
    $HOME/.cache/arena/torch-venv/bin/python -m pip install torch transformers peft safetensors tokenizers
(tested with torch 2.15.0+cu132, transformers 5.25.0, peft 0.21.2, Python 3.11.)

Run (from the repository root, on an idle machine):
    $HOME/.cache/arena/torch-venv/bin/python scripts/bench-train-torch.py --model /tmp/smol-hf [--json]
    ... [--lens 256,512] [--modes full,lora] [--rank 8] [--steps 3] [--warmup 1] [--threads 2] [--seed 0]

--model is a Hugging Face LLaMA folder (config.json, model.safetensors, tokenizer.json), e.g. the
SmolLM2-135M folder our trainer writes. The model is transformers.LlamaForCausalLM, float32, with
attn_implementation="sdpa"; LoRA is peft (rank r, alpha 16, dropout 0, on q,k,v,o,gate,up,down;
everything else, embeddings and norms included, frozen). Full fine-tuning trains every parameter
(the tied embedding / lm_head once).

Workload, per configuration (mode x length):
  data   L+1 random token ids in [0, vocab) from torch.Generator(seed): the model sees exactly the
         first L (batch 1) and every one of the L positions is scored against the next id, so the
         loss covers all L positions.
  step   forward, mean cross-entropy, backward, AdamW step (lr 2e-5, betas 0.9/0.999, eps 1e-8,
         weight decay 0), zero_grad. --warmup steps untimed, then --steps timed steps;
         seconds_per_step is their mean, tokens_per_s = L / seconds_per_step.
  RSS    ru_maxrss is process-wide and never goes down, so each configuration runs in a fresh
         subprocess (this script with --one MODE:LEN): peak_rss_mib is that configuration's peak.
         rss_import_mib is the same process's peak after importing torch/transformers/peft and
         before loading the model (the fixed cost of the runtime, CUDA libraries included).
  check  before training, each subprocess scores the real sentence "The capital of France is
         Paris." (tokenized with tokenizer.json) and fails if the next-token loss is not under
         5 nats: wrong or missing weights give ~10.8 (ln 49152). Reported as check_loss.
  util   cpu_util: CPU seconds the process got / (wall seconds x threads) over the timed steps;
         well under 1 means something else used the cores and the timings are not clean: rerun.

--json prints one JSON object per configuration (after the table, one per line).
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings

ATTN = "sdpa"
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
CHECK_TEXT = "The capital of France is Paris."


def rss_mib():
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_one(args, mode, length):
    """One configuration in this (fresh) process; returns the result dict."""
    # Never reach for a model hub: everything comes from --model.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation chatter
    import torch
    import torch.nn.functional as F
    import transformers
    from transformers import LlamaForCausalLM
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    import peft
    rss_import = rss_mib()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # LoRA's A matrices are randomly initialised
    model, info = LlamaForCausalLM.from_pretrained(
        args.model, dtype=torch.float32, attn_implementation=ATTN, output_loading_info=True)
    # lm_head.weight may be absent on disk (tie_word_embeddings); anything else missing is a bug.
    missing = [k for k in info["missing_keys"] if k != "lm_head.weight"]
    if missing or info["unexpected_keys"]:
        sys.exit(f"weights do not match the model: missing {missing}, unexpected {info['unexpected_keys']}")
    attn = model.config._attn_implementation
    vocab = model.config.vocab_size

    from tokenizers import Tokenizer
    ids = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json")).encode(CHECK_TEXT).ids
    with torch.no_grad():
        x = torch.tensor([ids])
        check_loss = F.cross_entropy(model(input_ids=x[:, :-1]).logits[0], x[0, 1:]).item()
    if not check_loss < 5.0:
        sys.exit(f"sanity check failed: loss {check_loss:.3f} on {CHECK_TEXT!r} (weights not loaded?)")

    if mode == "lora":
        cfg = peft.LoraConfig(r=args.rank, lora_alpha=16, lora_dropout=0.0, bias="none",
                              target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
        model = peft.get_peft_model(model, cfg)  # freezes every base parameter
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=2e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    g = torch.Generator().manual_seed(args.seed)
    seq = torch.randint(0, vocab, (1, length + 1), generator=g)
    inputs, targets = seq[:, :length], seq[0, 1:]

    def step():
        logits = model(input_ids=inputs).logits[0]  # (L, vocab)
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    for _ in range(args.warmup):
        step()
    times, losses = [], []
    cpu0 = sum(os.times()[:2])
    for _ in range(args.steps):
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)
    sps = sum(times) / len(times)
    # CPU seconds this process got per wall second per thread over the timed steps: well under 1
    # means other work on the machine (e.g. a build) took cores and the timings are not clean.
    cpu_util = (sum(os.times()[:2]) - cpu0) / (sum(times) * args.threads)
    return {
        "impl": "pytorch", "torch": torch.__version__, "transformers": transformers.__version__,
        "peft": peft.__version__, "attn": attn, "mode": mode,
        "rank": args.rank if mode == "lora" else None, "len": length, "threads": args.threads,
        "steps": args.steps, "warmup": args.warmup, "seconds_per_step": round(sps, 4),
        "step_seconds": [round(t, 4) for t in times], "tokens_per_s": round(length / sps, 2),
        "peak_rss_mib": round(rss_mib(), 1), "rss_import_mib": round(rss_import, 1),
        "trainable_params": trainable, "check_loss": round(check_loss, 4),
        "last_loss": round(losses[-1], 4), "cpu_util": round(cpu_util, 2),
        "cpu": cpu_model(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="Hugging Face LLaMA folder")
    ap.add_argument("--lens", default="256,512")
    ap.add_argument("--modes", default="full,lora")
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--one", metavar="MODE:LEN", help=argparse.SUPPRESS)  # internal: child process
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be at least 1")

    if args.one:
        mode, length = args.one.split(":")
        print("RESULT " + json.dumps(run_one(args, mode, int(length))), flush=True)
        return

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    lens = [int(x) for x in args.lens.split(",") if x.strip()]
    for m in modes:
        if m not in ("full", "lora"):
            ap.error(f"unknown mode {m!r} (full, lora)")
    passthrough = ["--model", args.model, "--rank", str(args.rank), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--threads", str(args.threads),
                   "--seed", str(args.seed)]
    results, failed = [], False
    for m in modes:
        for length in lens:
            # A fresh interpreter per configuration, so ru_maxrss is this configuration's own.
            cmd = [sys.executable, os.path.abspath(__file__), "--one", f"{m}:{length}"] + passthrough
            p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
            lines = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
            if p.returncode != 0 or not lines:
                print(f"{m} L={length}: failed (exit {p.returncode})", file=sys.stderr)
                failed = True
                continue
            r = json.loads(lines[-1][len("RESULT "):])
            results.append(r)
            print(f"  done {m} L={length}: {r['tokens_per_s']} tokens/s", file=sys.stderr, flush=True)

    if results:
        r0 = results[0]
        print(f"PyTorch {r0['torch']}, transformers {r0['transformers']}, peft {r0['peft']}, "
              f"attn {r0['attn']}, float32, batch 1, {args.threads} threads, "
              f"{args.warmup} warm-up + {args.steps} timed steps, CPU: {r0['cpu']}")
        print(f"check loss on {CHECK_TEXT!r}: {r0['check_loss']} nats")
        hdr = ("mode", "rank", "len", "s/step", "tokens/s", "peak RSS MiB", "RSS after import", "trainable", "cpu util")
        print("%-5s %5s %5s %9s %9s %13s %17s %12s %9s" % hdr)
        for r in results:
            print("%-5s %5s %5d %9.3f %9.1f %13.0f %17.0f %12d %9.2f" % (
                r["mode"], r["rank"] if r["rank"] is not None else "-", r["len"],
                r["seconds_per_step"], r["tokens_per_s"], r["peak_rss_mib"],
                r["rss_import_mib"], r["trainable_params"], r["cpu_util"]))
    if args.json:
        for r in results:
            print(json.dumps(r))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
