#!/usr/bin/env python3
"""FastChat 0.2.36 counterpart of `arena bench controller`.

Starts FastChat's controller, model_worker (CPU) and openai_api_server on free
127.0.0.1 ports, waits until the worker is registered, then for each client count
runs, per client, `--requests` iterations of the two requests below, in random order, each
after a random wait of up to `--think-ms` (as `arena bench controller` does, so that
arrivals are not locked to the worker's steps):

  direct: POST model_worker /worker_generate_stream (prompt built with FastChat's
          conversation template for the model, temperature 0, max_new_tokens N,
          null-byte-delimited JSON stream)
  via:    POST openai_api_server /v1/chat/completions, stream true (SSE)

TTFT = time to the first streamed chunk with non-empty text (direct) or non-empty
delta.content (via); total = until the stream ends. p50/p99 use the same rule as
ours: sorted[round((n - 1) * q)]. The worker runs with --limit-worker-concurrency 64
(ours: --max-concurrency 64) and FastChat's default --stream-interval 2.

Install (Python 3.11, CPU only): scripts/setup-bench.sh fastchat, which makes
~/.cache/arena/venv-fastchat with torch 2.4.1, transformers 4.44.2, pydantic 1.10.14,
fastapi 0.109.2 and fschat 0.2.36 (accelerate then pulls torch's CUDA wheels anyway; they are
unused).

Run:
  /root/.cache/arena/venv-fastchat/bin/python scripts/bench-controller-fastchat.py \
      --model /root/.cache/arena/tiny-vicuna-hf --json
The folder name must contain "vicuna" so FastChat picks its vicuna_v1.1 template.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import aiohttp


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(v):
    v = sorted(v)
    at = lambda q: v[int(round((len(v) - 1) * q))]
    return {"p50": at(0.5), "p99": at(0.99)}


def http_json(url, body=None, timeout=2):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


async def direct(session, url, params):
    start = time.perf_counter()
    first = None
    buf = b""
    async with session.post(url, json=params) as resp:
        async for chunk in resp.content.iter_any():
            buf += chunk
            while b"\0" in buf:
                part, buf = buf.split(b"\0", 1)
                if part and first is None:
                    msg = json.loads(part)
                    if msg.get("error_code", 0) != 0:
                        raise RuntimeError(msg)
                    if msg.get("text"):
                        first = time.perf_counter() - start
    total = time.perf_counter() - start
    return (first if first is not None else total) * 1e3, total * 1e3


async def via(session, url, model, max_tokens):
    body = {"model": model, "messages": [{"role": "user", "content": "hello world"}],
            "temperature": 0, "max_tokens": max_tokens, "stream": True}
    start = time.perf_counter()
    first = None
    buf = b""
    async with session.post(url, json=body) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{resp.status} {await resp.text()}")
        async for chunk in resp.content.iter_any():
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                if first is not None or not event.startswith(b"data: "):
                    continue
                data = event[6:].strip()
                if data == b"[DONE]":
                    continue
                msg = json.loads(data)
                if "error_code" in msg:
                    raise RuntimeError(msg)
                if any(c.get("delta", {}).get("content") for c in msg.get("choices", [])):
                    first = time.perf_counter() - start
    total = time.perf_counter() - start
    return (first if first is not None else total) * 1e3, total * 1e3


async def bench(args, worker_url, api_url, model_name):
    from fastchat.model.model_adapter import get_conversation_template

    conv = get_conversation_template(args.model)
    conv.append_message(conv.roles[0], "hello world")
    conv.append_message(conv.roles[1], None)
    params = {"model": model_name, "prompt": conv.get_prompt(), "temperature": 0.0,
              "top_p": 1.0, "top_k": -1, "max_new_tokens": args.max_tokens, "echo": False,
              "stop": conv.stop_str, "stop_token_ids": conv.stop_token_ids}
    gen_url = worker_url + "/worker_generate_stream"
    chat_url = api_url + "/v1/chat/completions"
    # uvicorn drops idle keep-alive connections after 5 s; aiohttp keeps them 15 s by
    # default and then gets 'connection reset' on reuse, so expire them sooner.
    conn = aiohttp.TCPConnector(limit=0, keepalive_timeout=2)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        await direct(session, gen_url, params)  # warm both paths
        await via(session, chat_url, model_name, args.max_tokens)
        rounds = []
        for clients in args.clients:
            async def client():
                out = []
                for _ in range(args.requests):
                    direct_first = random.random() < 0.5
                    for path in (direct_first, not direct_first):
                        await asyncio.sleep(random.random() * args.think_ms / 1e3)
                        if path:
                            d = await direct(session, gen_url, params)
                        else:
                            v = await via(session, chat_url, model_name, args.max_tokens)
                    out.append((d, v))
                return out
            samples = [s for r in await asyncio.gather(*(client() for _ in range(clients))) for s in r]
            pick = lambda f: percentiles([f(s) for s in samples])
            rounds.append({
                "clients": clients,
                "ttft_direct_ms": pick(lambda s: s[0][0]),
                "ttft_controller_ms": pick(lambda s: s[1][0]),
                "total_direct_ms": pick(lambda s: s[0][1]),
                "total_controller_ms": pick(lambda s: s[1][1]),
            })
            print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
        return rounds


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--think-ms", type=float, default=5.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--logs", default="/tmp/bench-fastchat-logs")
    args = ap.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    args.model = os.path.abspath(args.model)
    model_name = os.path.basename(args.model.rstrip("/"))
    os.makedirs(args.logs, exist_ok=True)

    cport, wport, aport = free_port(), free_port(), free_port()
    ctrl = f"http://127.0.0.1:{cport}"
    worker_url = f"http://127.0.0.1:{wport}"
    api_url = f"http://127.0.0.1:{aport}"
    py = sys.executable
    cmds = {
        "controller": [py, "-m", "fastchat.serve.controller", "--host", "127.0.0.1",
                       "--port", str(cport)],
        "model_worker": [py, "-m", "fastchat.serve.model_worker", "--host", "127.0.0.1",
                         "--port", str(wport), "--worker-address", worker_url,
                         "--controller-address", ctrl, "--model-path", args.model,
                         "--device", "cpu", "--limit-worker-concurrency", "64"],
        "openai_api_server": [py, "-m", "fastchat.serve.openai_api_server", "--host",
                              "127.0.0.1", "--port", str(aport), "--controller-address", ctrl],
    }
    procs = []

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(1)))
    try:
        for name, cmd in cmds.items():
            log = open(os.path.join(args.logs, name + ".log"), "w")
            # FastChat writes its own *.log files into the working directory: keep them in the
            # logs directory, out of the repository.
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=args.logs))
            if name == "controller":
                time.sleep(0.5)
        deadline = time.time() + 120
        while True:
            for p, name in zip(procs, cmds):
                if p.poll() is not None:
                    raise SystemExit(f"{name} exited; see {args.logs}/{name}.log")
            try:
                ok = model_name in http_json(ctrl + "/list_models", {}).get("models", [])
                ok = ok and any(m["id"] == model_name
                                for m in http_json(api_url + "/v1/models")["data"])
                if ok:
                    break
            except Exception:
                pass
            if time.time() > deadline:
                raise SystemExit("the worker did not register")
            time.sleep(0.2)
        rounds = asyncio.run(bench(args, worker_url, api_url, model_name))
    finally:
        stop()

    report = {"rounds": rounds}
    if args.json:
        print(json.dumps(report, indent=2))
    print(f"{'clients':>7} | {'ttft direct p50/p99':>20} | {'ttft via p50/p99':>20} | "
          f"{'total direct p50/p99':>21} | {'total via p50/p99':>20}", file=sys.stderr)
    for r in rounds:
        f = lambda k: f"{r[k]['p50']:.1f}/{r[k]['p99']:.1f}"
        print(f"{r['clients']:>7} | {f('ttft_direct_ms'):>20} | {f('ttft_controller_ms'):>20} | "
              f"{f('total_direct_ms'):>21} | {f('total_controller_ms'):>20}", file=sys.stderr)


if __name__ == "__main__":
    main()
