#!/usr/bin/env bash
# Runs every check and test of the project: the README's test command, and what CI runs.
#
# It installs what the tests need when it can (postgresql, redis-server, chromium and
# chromium-driver from Debian, the openai clients from PyPI), starts a throwaway Postgres
# cluster and Redis on free ports in a temp dir, fetches the real model into its cache,
# then runs rustfmt, clippy and the whole test suite (cargo-nextest when installed, cargo
# test otherwise). Anything it starts is stopped when it exits, also on failure or Ctrl-C, and
# it fails when a test left a process or a temp file behind.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
. scripts/lib.sh

need_cmd cargo
need_cmd python3

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Everything started here lives in one temp dir and is stopped on exit, also on failure or
# Ctrl-C. The tests run with ARENA_TEST_RUN set to a fresh id, which every process they start
# inherits (browsers and their drivers, arena servers and their children), so whatever they
# leave behind is found by that mark, even once its parent is gone.
WORK="$(mktemp -d)"
RUN_ID="$(basename "$WORK")-$$"
PIDS=()
PG_STOP=()
kill_tagged() {
  local pids
  pids="$(tagged_pids "$RUN_ID")"
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
}
cleanup() {
  kill_tagged
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ ${#PG_STOP[@]} -eq 0 ] || "${PG_STOP[@]}" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

apt_install "${TEST_PACKAGES[@]}"

log "starting a throwaway Postgres cluster"
PG_BIN="$(pg_bin)"
[ -x "$PG_BIN/initdb" ] || { echo "test.sh: initdb not found under /usr/lib/postgresql" >&2; exit 1; }
# initdb refuses to run as root: the cluster belongs to the postgres user then.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
chmod 755 "$WORK"
mkdir -p "$WORK/pg"
[ "$(id -u)" -ne 0 ] || chown postgres "$WORK/pg"
PG_PORT="$(free_port)"
as_pg "$PG_BIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust -E UTF8 >"$WORK/initdb.log" 2>&1 \
  || { echo "test.sh: initdb failed:" >&2; cat "$WORK/initdb.log" >&2; exit 1; }
as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w \
  -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
  start >/dev/null || { echo "test.sh: postgres did not start:" >&2; cat "$WORK/pg/server.log" >&2; exit 1; }
PG_STOP=(as_pg "$PG_BIN/pg_ctl" -D "$WORK/pg/data" -m immediate stop)
export ARENA_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
log "starting a throwaway Redis"
REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" \
  --logfile "$WORK/redis.log" &
PIDS+=("$!")
for _ in $(seq 50); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping >/dev/null || { echo "test.sh: redis did not start:" >&2; cat "$WORK/redis.log" >&2; exit 1; }
export ARENA_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"

log "fetching the SmolLM2 model (cached after the first run)"
ARENA_MODELS="${ARENA_MODELS:-$HOME/.cache/arena/models}"
export ARENA_MODELS
./scripts/fetch-models.sh >/dev/null

log "OpenAI Python clients for the API client tests, the pinned old one and the newest (cached virtualenvs)"
VENV="${ARENA_CLIENTS_VENV:-$HOME/.cache/arena/venv-clients}"
clients_venv "$VENV"
export ARENA_CLIENTS_PYTHON="$VENV/bin/python"
VENV_LATEST="${ARENA_CLIENTS_LATEST_VENV:-$HOME/.cache/arena/venv-clients-latest}"
clients_latest_venv "$VENV_LATEST"
export ARENA_CLIENTS_LATEST_PYTHON="$VENV_LATEST/bin/python"

log "the scripts' own tests (fetch-sft-data.sh, offline)"
python3 scripts/test-fetch-sft-data.py

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

runner=(cargo test --workspace)
if cargo nextest --version >/dev/null 2>&1; then
  runner=(cargo nextest run --workspace)
else
  log "cargo-nextest is not installed: running the tests with cargo test"
fi
log "${runner[*]} --no-run (building the tests)"
"${runner[@]}" --no-run

# Temp files of the tests (browser profiles among them) go under $WORK, removed at the end.
log "${runner[*]} --no-fail-fast"
mkdir -p "$WORK/tmp"
status=0
ARENA_TEST_RUN="$RUN_ID" TMPDIR="$WORK/tmp" "${runner[@]}" --no-fail-fast || status=$?

# A test that leaves a process running is a failing test, whatever its assertions said.
left="$(tagged_pids "$RUN_ID")"
if [ -n "$left" ]; then
  echo "test.sh: the tests left these processes running (now killed):" >&2
  ps -o pid,ppid,etime,args -p "$(echo $left | tr ' ' ',')" >&2 || true
  kill_tagged
  status=1
fi
leftover_tmp="$(find "$WORK/tmp" -mindepth 1 -maxdepth 1 2>/dev/null | head -n 20)"
if [ -n "$leftover_tmp" ]; then
  echo "test.sh: the tests left these temp files and folders behind (now removed):" >&2
  echo "$leftover_tmp" >&2
  status=1
fi
[ "$status" -eq 0 ] && log "all checks passed; nothing left running"
exit "$status"
