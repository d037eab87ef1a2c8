#!/usr/bin/env bash
# Runs every check and test of the project: the README's test command, and what CI runs.
#
# It installs what the tests need when it can, fetches the real model into its cache,
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
