#!/usr/bin/env python3
"""Write ratings/tests/fixtures/leaderboard/{battles.jsonl,expected.json}: a seeded set of
battles and what FastChat 0.2.36 (and scikit-learn run to the optimum) computes from them, the
reference for ratings/tests/leaderboard.rs; also arena_shape.{csv,jsonl}, five rows in the
public Chatbot Arena dataset's columns as pandas writes them.

Install (Python 3.11; the versions of FastChat 0.2.36's time, February 2024):
    scripts/setup-bench.sh elo     (~/.cache/arena/venv-elo: fschat==0.2.36 numpy==1.26.4
                                    pandas==2.2.0 scikit-learn==1.4.0 scipy==1.12.0 tqdm pytz psutil)
Run (from the repository root, about a minute):
    ~/.cache/arena/venv-elo/bin/python scripts/make-elo-fixture.py

`import fastchat.serve.monitor.elo_analysis` pulls in torch through the model registry, so
this script executes only the needed functions' source, read unmodified from the installed
FastChat file (compute_elo, compute_elo_mle_with_tie, get_bootstrap_result,
compute_pairwise_win_fraction).

Recorded numbers (all anchored like FastChat: llama-13b shifted to 800):
  elo_online           FastChat compute_elo, rows in file order (= time order)
  bt_optimum           FastChat compute_elo_mle_with_tie with sklearn's LogisticRegression
                       patched to tol=1e-8, max_iter=100000: the exact L2 (C=1) optimum
  bt_fastchat          the same function unpatched (lbfgs tol 1e-4, max_iter 100: stops early)
  bt_unregularized     patched to penalty=None, tol=1e-10: the plain maximum likelihood
  bootstrap_fastchat   get_bootstrap_result(battles, compute_elo_mle_with_tie, 1000) after
                       np.random.seed(BOOT_SEED), 2.5% / 97.5% quantiles (pandas, linear)
  win_fraction         compute_pairwise_win_fraction on the battles without ties
"""
import ast
import json
import math
import os
import sys
import warnings
from collections import defaultdict

os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore", category=DeprecationWarning)

import numpy as np
import pandas as pd
import sklearn
import sklearn.linear_model
from tqdm import tqdm

import fastchat

SEED = 20240214
BOOT_SEED = 7
N_BATTLES = 3000
# True strengths on the Elo scale: spread like the 2023 arena, llama-13b present for the anchor.
MODELS = {
    "gpt-4": 1250,
    "claude-v1": 1200,
    "gpt-3.5-turbo": 1130,
    "vicuna-13b": 1060,
    "koala-13b": 990,
    "alpaca-13b": 910,
    "dolly-v2-12b": 860,
    "llama-13b": 820,
}
P_TIE, P_BOTHBAD = 0.15, 0.10
OUT = os.path.join("ratings", "tests", "fixtures", "leaderboard")
FUNCS = [
    "compute_elo",
    "get_bootstrap_result",
    "compute_elo_mle_with_tie",
    "compute_pairwise_win_fraction",
]


def load_fastchat():
    """The four functions, executed from FastChat's own source."""
    path = os.path.join(os.path.dirname(fastchat.__file__), "serve", "monitor", "elo_analysis.py")
    src = open(path).read()
    tree = ast.parse(src)
    ns = {"defaultdict": defaultdict, "math": math, "np": np, "pd": pd, "tqdm": tqdm}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in FUNCS:
            exec(compile(ast.Module([node], []), path, "exec"), ns)
    return ns


def generate():
    rng = np.random.default_rng(SEED)
    names = list(MODELS)
    rows, t = [], 1682000000.0
    for _ in range(N_BATTLES):
        i, j = rng.choice(len(names), size=2, replace=False)
        a, b = names[i], names[j]
        u = rng.random()
        if u < P_TIE:
            winner = "tie"
        elif u < P_TIE + P_BOTHBAD:
            winner = "tie (bothbad)"
        else:
            pa = 1 / (1 + 10 ** ((MODELS[b] - MODELS[a]) / 400))
            winner = "model_a" if rng.random() < pa else "model_b"
        t += float(rng.exponential(30.0))
        rows.append(
            {
                "model_a": a,
                "model_b": b,
                "winner": winner,
                "tstamp": round(t, 3),
                "anony": True,
                "turn": int(rng.integers(1, 4)),
            }
        )
    return rows


def write_arena_shape():
    """A few rows in the public Chatbot Arena dataset's columns, written by pandas as CSV
    (Python reprs with quotes, commas and newlines inside quoted fields) and JSON lines."""
    conv = lambda q, a: [{"content": q, "role": "user"}, {"content": a, "role": "assistant"}]
    rows = [
        ("m1", "vicuna-13b", "koala-13b", "model_a", "Hi, \"there\"", "Hello!\nHow can I help?"),
        ("m2", "koala-13b", "alpaca-13b", "tie (bothbad)", "2+2?", "5"),
        ("m3", "alpaca-13b", "vicuna-13b", "model_b", "Name, a color", "red, green"),
        ("m4", "vicuna-13b", "alpaca-13b", "tie", "Say 'x'", "x"),
        ("m5", "koala-13b", "vicuna-13b", "model_a", "Why?", "Because."),
    ]
    df = pd.DataFrame(
        {
            "question_id": [r[0] for r in rows],
            "model_a": [r[1] for r in rows],
            "model_b": [r[2] for r in rows],
            "winner": [r[3] for r in rows],
            "judge": ["arena_user_%d" % i for i in range(len(rows))],
            "conversation_a": [conv(r[4], r[5]) for r in rows],
            "conversation_b": [conv(r[4], r[5] + " (b)") for r in rows],
            "turn": [1, 1, 2, 1, 1],
            "anony": [True, True, False, True, True],
            "language": ["English"] * len(rows),
            "tstamp": [1682351591.1322, 1682351620.5, 1682351700.25, 1682351800.0, 1682351900.75],
            "openai_moderation": [{"categories": {"hate": False}, "flagged": False}] * len(rows),
            "toxic_chat_tag": [{"roberta-large": {"flagged": False, "probability": 0.01}}] * len(rows),
        }
    )
    df.to_csv(os.path.join(OUT, "arena_shape.csv"), index=False)
    df.to_json(os.path.join(OUT, "arena_shape.jsonl"), orient="records", lines=True)


def with_lr(**kwargs):
    """Patch sklearn's LogisticRegression defaults, for FastChat's function to pick up."""
    base = sklearn.linear_model.LogisticRegression

    class Patched(base):
        def __init__(self, **kw):
            super().__init__(**{**kw, **kwargs})

    return base, Patched


def series(s):
    return {k: float(v) for k, v in s.items()}


def main():
    fc = load_fastchat()
    rows = generate()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "battles.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    battles = pd.read_json(os.path.join(OUT, "battles.jsonl"), lines=True)
    write_arena_shape()

    elo_online = fc["compute_elo"](battles)
    bt_fastchat = fc["compute_elo_mle_with_tie"](battles)
    base, patched = with_lr(tol=1e-8, max_iter=100000)
    sklearn.linear_model.LogisticRegression = patched
    bt_optimum = fc["compute_elo_mle_with_tie"](battles)
    _, patched = with_lr(penalty=None, tol=1e-10, max_iter=100000)
    sklearn.linear_model.LogisticRegression = patched
    bt_unreg = fc["compute_elo_mle_with_tie"](battles)
    sklearn.linear_model.LogisticRegression = base

    np.random.seed(BOOT_SEED)
    boot = fc["get_bootstrap_result"](battles, fc["compute_elo_mle_with_tie"], 1000)
    q025, q975 = boot.quantile(0.025), boot.quantile(0.975)

    no_ties = battles[~battles["winner"].str.contains("tie")]
    wf = fc["compute_pairwise_win_fraction"](no_ties, None)
    num_battles = battles["model_a"].value_counts() + battles["model_b"].value_counts()

    expected = {
        "about": "made by scripts/make-elo-fixture.py; see its header",
        "versions": {
            "fschat": fastchat.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "python": sys.version.split()[0],
        },
        "seed": SEED,
        "bootstrap_seed": BOOT_SEED,
        "bootstrap_rounds": 1000,
        "battles": len(battles),
        "true_strengths": MODELS,
        "anchor": ["llama-13b", 800.0],
        "elo_online": {k: float(v) for k, v in elo_online.items()},
        "bt_optimum": series(bt_optimum),
        "bt_fastchat": series(bt_fastchat),
        "bt_unregularized": series(bt_unreg),
        "bootstrap_fastchat": {m: [float(q025[m]), float(q975[m])] for m in boot.columns},
        "win_fraction": {
            r: {c: (None if pd.isna(v) else float(v)) for c, v in wf.loc[r].items()}
            for r in wf.index
        },
        "num_battles": {k: int(v) for k, v in num_battles.items()},
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")
    diff = max(abs(bt_optimum[m] - bt_fastchat[m]) for m in bt_optimum.index)
    print(f"wrote {OUT}: {len(battles)} battles; FastChat's BT is {diff:.3f} points off the optimum")


if __name__ == "__main__":
    main()
