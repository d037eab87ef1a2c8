# Shell functions shared by the project's scripts (sourced, not run): logging, required
# commands, and the install steps, kept in one place so scripts/check-installs.sh exercises
# exactly the code the other scripts run.

log() { printf '\n==> %s\n' "$*" >&2; }

die() {
  echo "${SCRIPT_NAME:-$(basename "$0")}: $*" >&2
  exit 1
}

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is required but not installed"
}

# Installs the Debian packages among "$@" that are missing: as root directly, otherwise through
# `sudo -n` (sudo without a password prompt). Fails with a message naming the packages.
apt_install() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]} from Debian"
  # `env` makes DEBIAN_FRONTEND an assignment both as root (empty prefix) and through sudo:
  # written bare after an expansion, bash would run it as a command name.
  local as_root=(env)
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "${missing[*]} missing, and not root and no sudo to install them: install them and run again"
    as_root=(sudo -n env)
  fi
  local out
  if ! out="$("${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get update -qq 2>&1 \
      && "${as_root[@]}" DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" 2>&1)"; then
    printf '%s\n' "$out" | tail -n 20 >&2
    die "could not install ${missing[*]} (output above); install them and run again"
  fi
  for pkg in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
      || die "apt-get said it installed $pkg, but dpkg does not list it as installed"
  done
}

# Makes "$1" a virtualenv whose `python -c "$2"` succeeds, by (re)creating it and running
# `pip install` with the rest of the arguments when the check fails. Used for every cached
# virtualenv of the tests and benchmarks.
venv_install() {
  local venv="$1" check="$2"
  shift 2
  if "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    return 0
  fi
  log "installing $* into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || die "python3 -m venv failed (install Debian's python3-venv)"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" \
    || die "could not install $* from PyPI into $venv"
  "$venv/bin/python" -c "$check" || die "$venv was installed, but its check still fails: $check"
}

# The OpenAI Python client (and the httpx it was released with) for the API client tests.
clients_venv() {
  venv_install "$1" "import openai, sys; sys.exit(openai.__version__ != '1.12.0')" \
    openai==1.12.0 httpx==0.26.0
}

# The newest OpenAI Python client when this pin was last moved (`pip index versions openai`),
# for the same tests: the API must work with the client people install today, not only an old
# one. Pinned so that every run tests the same client; move it forward on purpose.
OPENAI_LATEST=3.57.0
clients_latest_venv() {
  venv_install "$1" "import openai, sys; sys.exit(openai.__version__ != '$OPENAI_LATEST')" \
    "openai==$OPENAI_LATEST"
}

# The Debian packages the test suite needs.
TEST_PACKAGES=(postgresql redis-server chromium chromium-driver)

# The newest installed Postgres server's bin folder (initdb, pg_ctl), or nothing.
pg_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# The ids of the processes whose environment holds ARENA_TEST_RUN="$1", and of all their
# descendants: everything a test run started, however deep, also after its parent died and it
# was handed to init (Chromium starts some of its helpers with an environment of its own, so
# the mark alone would miss them).
tagged_pids() {
  local f pid marked=()
  for f in /proc/[0-9]*/environ; do
    pid="${f#/proc/}"
    pid="${pid%/environ}"
    [ "$pid" = "$$" ] && continue
    { tr '\0' '\n' <"$f"; } 2>/dev/null | grep -qxF "ARENA_TEST_RUN=$1" && marked+=("$pid")
  done
  [ ${#marked[@]} -eq 0 ] && return 0
  ps -e -o pid=,ppid= | awk -v marked="${marked[*]}" '
    BEGIN { n = split(marked, m, " "); for (i = 1; i <= n; i++) keep[m[i]] = 1 }
    { parent[$1] = $2 }
    END {
      for (p in parent) {
        for (q = p; q in parent && q > 1; q = parent[q]) if (q in keep) { print p; break }
      }
    }'
}
