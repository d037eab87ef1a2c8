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
