#!/usr/bin/env python3
"""Writes ratings/tests/fixtures/arena_rank/expected.json: generated battles with style
metadata, and the ratings, 95% intervals and style coefficients that LMArena's own `arena-rank` 0.1.1
computes from them. ratings/tests/arena_rank.rs checks that ours agree.

Run (from the repository root):
    "$(scripts/setup-bench.sh arena-rank)" scripts/make-arena-rank-fixture.py

The battles are drawn from a fixed seed: 8 models with known strengths, pairs drawn unevenly
(one pair takes a third of the battles, so that reweighting by 1/max(n_pair, 50) matters),
answers whose length and markdown counts depend on the model, and outcomes from a
Bradley-Terry model that also rewards the longer answer (so that style control moves the
ratings), with ties and "both bad" votes. Style features are computed exactly as arena-rank's
LMArena example does (examples/example_utils.py: add_style_feature_cols): per feature
(a - b) / (a + b) (a zero sum counts as 1), standardised.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import pandas as pd

from arena_rank.models.bradley_terry import BradleyTerry
from arena_rank.models.contextual_bradley_terry import ContextualBradleyTerry
from arena_rank.utils.data_utils import ContextualPairDataset, PairDataset

FEATURES = ["sum_assistant_tokens", "header_count", "bold_count", "list_count"]
MODELS = [f"model-{c}" for c in "abcdefgh"]


def battles(seed, n):
    rng = np.random.default_rng(seed)
    strength = np.linspace(1.2, -1.0, len(MODELS))
    verbosity = rng.uniform(80, 600, len(MODELS))
    markdown = rng.uniform(0.0, 4.0, len(MODELS))
    pairs = [(i, j) for i in range(len(MODELS)) for j in range(len(MODELS)) if i != j]
    p = np.ones(len(pairs))
    p[pairs.index((0, 1))] = len(pairs) / 2  # the over-sampled pair
    p /= p.sum()
    rows = []
    for k in rng.choice(len(pairs), size=n, p=p):
        a, b = pairs[k]
        side = {}
        for s, m in (("a", a), ("b", b)):
            side[s] = {
                "tokens": int(rng.lognormal(math.log(verbosity[m]), 0.4)),
                "header": int(rng.poisson(markdown[m])),
                "bold": int(rng.poisson(markdown[m] * 1.5)),
                "list": int(rng.poisson(markdown[m] * 2.0)),
            }
        ta, tb = side["a"]["tokens"], side["b"]["tokens"]
        z = strength[a] - strength[b] + 0.8 * (ta - tb) / (ta + tb)
        u = rng.uniform()
        pa = 1 / (1 + math.exp(-z))
        if u < 0.15:
            winner = "tie"
        elif u < 0.2:
            winner = "tie (bothbad)"
        else:
            winner = "model_a" if rng.uniform() < pa else "model_b"
        rows.append({"model_a": MODELS[a], "model_b": MODELS[b], "winner": winner, **{
            f"{f}_{s}": side[s][f] for s in "ab" for f in ("tokens", "header", "bold", "list")
        }})
    return rows


def outcome(w):
    # arena-rank's default_outcome_map knows "both_bad"; the public dataset writes
    # "tie (bothbad)". Both are a draw.
    return {"model_a": "model_a", "model_b": "model_b"}.get(w, "tie")


def as_lists(result, keys):
    return {k: [float(x) for x in np.asarray(result[k])] for k in keys}


def bradley_terry(df, reweighted):
    data = PairDataset.from_pandas(df, reweighted=reweighted)
    model = BradleyTerry(n_competitors=len(data.competitors))
    out = model.compute_ratings_and_cis(data, significance_level=0.05)
    return {"competitors": list(data.competitors),
            **as_lists(out, ["ratings", "rating_lower", "rating_upper"])}


def contextual(df, reweighted):
    df = df.copy()
    for f, col in zip(FEATURES, ("tokens", "header", "bold", "list")):
        a, b = df[f"{col}_a"], df[f"{col}_b"]
        total = (a + b).replace(0, 1)
        raw = (a - b) / total
        df[f] = (raw - raw.mean()) / raw.std()
    data = ContextualPairDataset.from_pandas(df, feature_cols=FEATURES, reweighted=reweighted)
    model = ContextualBradleyTerry(n_competitors=len(data.competitors), n_features=len(FEATURES))
    out = model.compute_ratings_and_cis(data, significance_level=0.05)
    return {"competitors": list(data.competitors),
            **as_lists(out, ["ratings", "rating_lower", "rating_upper", "coeffs"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="ratings/tests/fixtures/arena_rank/expected.json")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--battles", type=int, default=3000)
    args = ap.parse_args()
    rows = battles(args.seed, args.battles)
    df = pd.DataFrame(rows)
    df["winner"] = df["winner"].map(outcome)
    winners = ["model_a", "model_b", "tie", "tie (bothbad)"]
    fields = [f"{f}_{s}" for f in ("tokens", "header", "bold", "list") for s in "ab"]
    fixture = {
        "source": "arena-rank 0.1.1 via scripts/make-arena-rank-fixture.py",
        "seed": args.seed,
        "models": MODELS,
        "columns": ["model_a", "model_b", "winner"] + fields,
        "winners": winners,
        # One row per battle: model indices, winner index, then the style counts.
        "battles": [[MODELS.index(r["model_a"]), MODELS.index(r["model_b"]),
                     winners.index(r["winner"])] + [r[f] for f in fields] for r in rows],
        "bt": bradley_terry(df, reweighted=False),
        "bt_reweighted": bradley_terry(df, reweighted=True),
        "contextual": contextual(df, reweighted=True),
        "contextual_unweighted": contextual(df, reweighted=False),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        # A battle per line keeps diffs of a regenerated fixture readable.
        text = json.dumps(fixture, separators=(",", ":"))
        f.write(text.replace("],[", "],\n[") + "\n")
    print(f"wrote {args.out}: {len(rows)} battles", file=sys.stderr)


if __name__ == "__main__":
    main()
