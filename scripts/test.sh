#!/usr/bin/env bash
# Runs every check and test of the project: the README's test command, and what CI runs.
#
# It installs what the tests need when it can (postgresql, redis-server, chromium and
# chromium-driver from Debian, the openai client from PyPI), starts a throwaway Postgres
# cluster and Redis on free ports in a temp dir, fetches the real model into its cache,
# then runs rustfmt, clippy and the whole test suite (cargo-nextest when installed, cargo
# test otherwise). Anything it starts is stopped when it exits, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || { echo "test.sh: '$1' is required but not installed" >&2; exit 1; }
}

need_cmd cargo
need_cmd python3

# Installs Debian packages the tests need when they are missing (root, or sudo without a password).
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  if ! { $sudo apt-get update -qq && $sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null; then
    echo "test.sh: could not install ${missing[*]}; install them and run again" >&2
    exit 1
  fi
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Everything started here lives in one temp dir and is stopped on exit, also on failure.
WORK="$(mktemp -d)"
PIDS=()
PG_STOP=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ ${#PG_STOP[@]} -eq 0 ] || "${PG_STOP[@]}" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

apt_install postgresql redis-server chromium chromium-driver

log "starting a throwaway Postgres cluster"
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
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

log "OpenAI Python client for the API client tests (cached virtualenv)"
VENV="${ARENA_CLIENTS_VENV:-$HOME/.cache/arena/venv-clients}"
if ! "$VENV/bin/python" -c "import openai, sys; sys.exit(openai.__version__ != '1.12.0')" 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" || { echo "test.sh: python3 -m venv failed (install python3-venv)" >&2; exit 1; }
  "$VENV/bin/pip" install --quiet --disable-pip-version-check openai==1.12.0 httpx==0.26.0 \
    || { echo "test.sh: could not install openai==1.12.0 from PyPI" >&2; exit 1; }
fi
export ARENA_CLIENTS_PYTHON="$VENV/bin/python"

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
  log "cargo nextest run --workspace"
  cargo nextest run --workspace --no-fail-fast
else
  log "cargo test --workspace (cargo-nextest not installed)"
  cargo test --workspace --no-fail-fast
fi
