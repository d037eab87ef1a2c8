#!/usr/bin/env python3
"""arena-rank 0.1.1 counterpart of `arena bench leaderboard`: times LMArena's own rating code
on a battles file written by our benchmark generator (JSONL, with each answer's style in
conv_metadata).

Steps timed, each as a user calls it (arena-rank's classes, unmodified):
  load        pandas.read_json of the file (not arena-rank; reported apart)
  bt          PairDataset.from_pandas + BradleyTerry(...).compute_ratings_and_cis
              (plain fit, sandwich intervals)
  style       the style features as arena-rank's LMArena example computes them
              (examples/example_utils.py: (a - b) / (a + b), standardised), then
              ContextualPairDataset.from_pandas (reweighted) + ContextualBradleyTerry
              (...).compute_ratings_and_cis (sandwich intervals)
  category    one category's board as LMArena makes it: the battles tagged `coding` (the
              file's `categories`) selected with pandas, then the bt step on them
JAX compiles each function on its first call; the first run of each step is what a user
waits for, and a second run of the same step is reported as "warm".

Install: scripts/setup-bench.sh arena-rank (~/.cache/arena/venv-arena-rank).
Run (from the repository root):
  cargo run --release -- bench leaderboard \
      --battles 1000000 --models 100 --write /tmp/battles-1m.jsonl
  "$(scripts/setup-bench.sh arena-rank)" scripts/bench-leaderboard-arena-rank.py \
      /tmp/battles-1m.jsonl [--json]
"""
import argparse
import json
import os
import resource
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pandas as pd  # noqa: E402

from arena_rank.models.bradley_terry import BradleyTerry  # noqa: E402
from arena_rank.models.contextual_bradley_terry import ContextualBradleyTerry  # noqa: E402
from arena_rank.utils.data_utils import ContextualPairDataset, PairDataset  # noqa: E402

FEATURES = ["sum_assistant_tokens", "header_count", "bold_count", "list_count"]


def bradley_terry(df):
    data = PairDataset.from_pandas(df)
    out = BradleyTerry(n_competitors=len(data.competitors)).compute_ratings_and_cis(data)
    out["ratings"].block_until_ready()
    return out


def style_control(df, meta):
    df = df[["model_a", "model_b", "winner"]].copy()
    for f in FEATURES:
        key = "sum_assistant_{}_tokens" if f == "sum_assistant_tokens" else f + "_{}"
        a, b = meta[key.format("a")], meta[key.format("b")]
        total = (a + b).replace(0, 1)
        raw = (a - b) / total
        df[f] = (raw - raw.mean()) / raw.std()
    data = ContextualPairDataset.from_pandas(df, feature_cols=FEATURES)
    model = ContextualBradleyTerry(n_competitors=len(data.competitors), n_features=len(FEATURES))
    out = model.compute_ratings_and_cis(data)
    out["ratings"].block_until_ready()
    return out


def category(df, tags, name="coding"):
    return bradley_terry(df[tags.map(lambda t: name in t)])


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("battles", help="JSONL written by `arena bench leaderboard --write`")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    load_s, df = timed(pd.read_json, args.battles, lines=True)
    meta = pd.json_normalize(df["conv_metadata"])
    df["winner"] = df["winner"].map(
        {"model_a": "model_a", "model_b": "model_b"}).fillna("tie")
    report = {"engine": "arena-rank 0.1.1", "battles": len(df),
              "models": int(pd.concat([df.model_a, df.model_b]).nunique()), "load_s": load_s}
    report["bt_s"], _ = timed(bradley_terry, df)
    report["bt_warm_s"], _ = timed(bradley_terry, df)
    report["style_s"], _ = timed(style_control, df, meta)
    report["style_warm_s"], _ = timed(style_control, df, meta)
    if "categories" in df:
        report["category_s"], _ = timed(category, df, df["categories"])
    report["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for k, v in report.items():
            print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")


if __name__ == "__main__":
    main()
