#!/usr/bin/env python3
"""FastChat 0.2.36 counterpart of `arena bench leaderboard`: times FastChat's own rating
functions on a battles file written by our benchmark generator.

Steps timed (FastChat's functions, source read unmodified from the installed package, as in
scripts/make-elo-fixture.py, since importing elo_analysis pulls in torch):
  load       pandas.read_csv of the file (not a FastChat function; reported apart)
  elo        compute_elo(battles)                      online Elo
  bt         compute_elo_mle_with_tie(battles)         sklearn lbfgs, FastChat's defaults
  bootstrap  get_bootstrap_result(battles, compute_elo_mle_with_tie, ROUNDS)
             with np.random.seed(0); also scaled linearly to 100 rounds
Peak RSS is the process's ru_maxrss.

Install: scripts/setup-bench.sh elo (~/.cache/arena/venv-elo: fschat==0.2.36 numpy==1.26.4
pandas==2.2.0 scikit-learn==1.4.0 scipy==1.12.0 tqdm pytz psutil).
Run (from the repository root):
  cargo run --release -- bench leaderboard \
      --battles 1000000 --models 100 --write /tmp/battles-1m.csv
  ~/.cache/arena/venv-elo/bin/python scripts/bench-leaderboard-fastchat.py \
      /tmp/battles-1m.csv --bootstrap-rounds 5 [--ratings-out /tmp/fastchat-bt.json] \
      [--optimum-out /tmp/sklearn-optimum.json] [--json]
"""
import argparse
import ast
import json
import math
import os
import resource
import time
import warnings
from collections import defaultdict

os.environ.setdefault("TQDM_DISABLE", "1")
warnings.filterwarnings("ignore", category=DeprecationWarning)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm import tqdm  # noqa: E402

import fastchat  # noqa: E402

FUNCS = ["compute_elo", "get_bootstrap_result", "compute_elo_mle_with_tie"]


def load_fastchat():
    path = os.path.join(os.path.dirname(fastchat.__file__), "serve", "monitor", "elo_analysis.py")
    tree = ast.parse(open(path).read())
    ns = {"defaultdict": defaultdict, "math": math, "np": np, "pd": pd, "tqdm": tqdm}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in FUNCS:
            exec(compile(ast.Module([node], []), path, "exec"), ns)
    return ns


def timed(f, *args):
    t = time.perf_counter()
    out = f(*args)
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("battles", help="CSV written by arena bench leaderboard --write")
    ap.add_argument("--bootstrap-rounds", type=int, default=5)
    ap.add_argument("--ratings-out", help="write FastChat's BT ratings here (JSON)")
    ap.add_argument(
        "--optimum-out",
        help="also run the fit with sklearn patched to tol=1e-8, max_iter=100000 (the exact "
        "optimum, for checking ours) and write those ratings here (JSON)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    fc = load_fastchat()
    battles, load_s = timed(pd.read_csv, args.battles)
    _, elo_s = timed(fc["compute_elo"], battles)
    bt, bt_s = timed(fc["compute_elo_mle_with_tie"], battles)
    np.random.seed(0)
    _, boot_s = timed(fc["get_bootstrap_result"], battles, fc["compute_elo_mle_with_tie"], args.bootstrap_rounds)
    report = {
        "fschat": fastchat.__version__,
        "battles": len(battles),
        "models": int(pd.concat([battles["model_a"], battles["model_b"]]).nunique()),
        "load_s": load_s,
        "elo_s": elo_s,
        "bt_s": bt_s,
        "bootstrap_rounds": args.bootstrap_rounds,
        "bootstrap_s": boot_s,
        "bootstrap_100_s_scaled": boot_s / args.bootstrap_rounds * 100,
        "total_100_s_scaled": elo_s + bt_s + boot_s / args.bootstrap_rounds * 100,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.optimum_out:
        import sklearn.linear_model

        base = sklearn.linear_model.LogisticRegression

        class Patched(base):
            def __init__(self, **kw):
                super().__init__(**{**kw, "tol": 1e-8, "max_iter": 100000})

        sklearn.linear_model.LogisticRegression = Patched
        opt, report["bt_optimum_s"] = timed(fc["compute_elo_mle_with_tie"], battles)
        sklearn.linear_model.LogisticRegression = base
        with open(args.optimum_out, "w") as f:
            json.dump({k: float(v) for k, v in opt.items()}, f, indent=1)
    if args.ratings_out:
        with open(args.ratings_out, "w") as f:
            json.dump({k: float(v) for k, v in bt.items()}, f, indent=1)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for k, v in report.items():
            print(f"{k:>24}: {v:.3f}" if isinstance(v, float) else f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
