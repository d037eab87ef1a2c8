#!/usr/bin/env bash
# Exercises the install steps of the project's scripts, so that a broken one is found here and
# not by a user on a fresh machine. Each step first removes what it installs (or installs into
# a fresh temp folder), then runs the same function the scripts run, then checks the result.
# Run it as root (CI does); it changes the machine's Debian packages.
#
#   scripts/check-installs.sh          quick (about a minute): apt_install as root and through
#                                      `sudo -n` on a small package it removes first, its clear
#                                      failure without sudo rights, fetch-models.sh into an empty
#                                      folder, the test clients' two virtualenvs
#   scripts/check-installs.sh --all    also removes postgresql (with its server), redis-server,
#                                      chromium and chromium-driver and installs them back as
#                                      scripts/test.sh does, and builds the three benchmark
#                                      virtualenvs of scripts/setup-bench.sh from nothing
#                                      (tens of minutes, several GB)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ALL=0
case "${1:-}" in
  "") ;;
  --all) ALL=1 ;;
  *)
    echo "usage: scripts/check-installs.sh [--all]" >&2
    exit 2
    ;;
esac
[ "$(id -u)" -eq 0 ] || die "run it as root: it removes and installs Debian packages"

PROBE=hello # a small package nothing else needs
TMP="$(mktemp -d)"
chmod 755 "$TMP"
USERS=()
cleanup() {
  local u
  for u in "${USERS[@]}"; do
    rm -f "/etc/sudoers.d/$u"
    userdel "$u" >/dev/null 2>&1 || true
  done
  DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$PROBE" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
remove() {
  log "removing $*"
  DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "$@" >/dev/null
  local p
  for p in "$@"; do ! installed "$p" || die "$p is still installed after apt-get remove"; done
}
pass() { printf 'check-installs: ok: %s\n' "$*" >&2; }

# A throwaway user that runs lib.sh's functions, with passwordless sudo or none.
make_user() {
  local u="arena-check-$1-$$"
  useradd --no-create-home --home-dir "$TMP" --shell /bin/bash "$u"
  USERS+=("$u")
  if [ "$2" = sudo ]; then
    echo "$u ALL=(root) NOPASSWD: ALL" >"/etc/sudoers.d/$u"
    chmod 440 "/etc/sudoers.d/$u"
  fi
  echo "$u"
}
as_user() {
  local u="$1"
  shift
  cp scripts/lib.sh "$TMP/lib.sh"
  chmod 644 "$TMP/lib.sh"
  runuser -u "$u" -- env SCRIPT_NAME=lib.sh bash -c ". '$TMP/lib.sh'; cd /; $*"
}

# 1. apt_install as root.
installed "$PROBE" && remove "$PROBE"
apt_install "$PROBE"
installed "$PROBE" && command -v "$PROBE" >/dev/null || die "apt_install as root did not install $PROBE"
pass "apt_install as root installed $PROBE"

# 2. apt_install through sudo -n, as a user with passwordless sudo (sudo itself installed first).
apt_install sudo
remove "$PROBE"
user="$(make_user sudo sudo)"
as_user "$user" "apt_install $PROBE" || die "apt_install through sudo -n failed"
installed "$PROBE" || die "apt_install through sudo -n did not install $PROBE"
pass "apt_install through sudo -n installed $PROBE"

# 3. Without sudo rights it fails, and says what to install.
remove "$PROBE"
user="$(make_user nosudo none)"
if out="$(as_user "$user" "apt_install $PROBE" 2>&1)"; then
  die "apt_install without sudo rights succeeded?"
fi
grep -q "could not install $PROBE" <<<"$out" || die "apt_install without sudo rights said: $out"
pass "apt_install without sudo rights fails with: $(tail -n 1 <<<"$out")"

# 4. The model, into an empty folder (the same script `arena demo` runs on first start).
log "scripts/fetch-models.sh into an empty folder"
model="$(ARENA_MODELS="$TMP/models" ./scripts/fetch-models.sh)"
[ -s "$model" ] || die "fetch-models.sh printed $model, which is not there"
pass "fetch-models.sh fetched $(basename "$model") ($(du -h "$model" | cut -f1))"

# 5. The test clients' virtualenvs (the pinned old client and the newest), from nothing.
clients_venv "$TMP/venv-clients"
pass "clients_venv: $("$TMP/venv-clients/bin/python" -c 'import openai; print("openai", openai.__version__)')"
clients_latest_venv "$TMP/venv-clients-latest"
pass "clients_latest_venv: $("$TMP/venv-clients-latest/bin/python" -c 'import openai; print("openai", openai.__version__)')"

if [ "$ALL" -eq 1 ]; then
  # 6. The test packages, the Postgres server package too (initdb lives there).
  server_pkgs="$(dpkg-query -W -f='${Package}\n' 'postgresql-[0-9]*' 2>/dev/null || true)"
  remove "${TEST_PACKAGES[@]}" $server_pkgs
  apt_install "${TEST_PACKAGES[@]}"
  [ -x "$(pg_bin)/initdb" ] || die "no initdb after installing postgresql"
  redis-server --version >/dev/null || die "redis-server does not run"
  chromium --version >/dev/null || die "chromium does not run"
  chromedriver --version >/dev/null || die "chromedriver does not run"
  pass "apt_install ${TEST_PACKAGES[*]}: initdb, redis-server, $(chromium --version), chromedriver"

  # 7. The benchmark references, each into an empty folder.
  for what in elo arena-rank llamacpp fastchat; do
    python="$(ARENA_BENCH_VENVS="$TMP/bench" ./scripts/setup-bench.sh "$what")"
    pass "setup-bench.sh $what: $python"
  done
fi
echo "check-installs: all install steps passed" >&2
