#!/usr/bin/env bash
# Installs the reference systems the benchmarks compare arena with, each into its own cached
# virtualenv, when missing (an installed, working one is kept as is):
#
#   scripts/setup-bench.sh llamacpp   llama-cpp-python 0.3.36, built from PyPI's source without
#                                     AMX (DESIGN.md §12): ~/.cache/arena/venv-llamacpp, ~15 min
#   scripts/setup-bench.sh fastchat   FastChat 0.2.36 on CPU torch 2.4.1 (bench controller):
#                                     ~/.cache/arena/venv-fastchat, several GB of wheels
#   scripts/setup-bench.sh elo        FastChat 0.2.36's rating code with the numpy, pandas and
#                                     scikit-learn of its time: ~/.cache/arena/venv-elo
#   scripts/setup-bench.sh arena-rank LMArena's arena-rank 0.1.1 on jax 0.8.1 (CPU):
#                                     ~/.cache/arena/venv-arena-rank, about 300 MB
#
# ARENA_BENCH_VENVS moves the folders (default ~/.cache/arena). For llamacpp,
# LLAMACPP_PREBUILT=FILE.tar.gz unpacks a package folder built the same way instead of building
# (the one in ../shared/cache, say). Prints the virtualenv's python on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

need_cmd python3
VENVS="${ARENA_BENCH_VENVS:-$HOME/.cache/arena}"

# The CMake flags of llama.cpp's CPU kernels for this CPU, AMX always off: ggml 0.3.36's AMX
# path crashes on its first decode here, and GGML_NATIVE would turn it back on.
llamacpp_cmake_args() {
  local flags args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  local pair
  for pair in AVX:avx AVX2:avx2 FMA:fma F16C:f16c BMI2:bmi2 AVX_VNNI:avx_vnni AVX512:avx512f \
    AVX512_VBMI:avx512vbmi AVX512_VNNI:avx512_vnni AVX512_BF16:avx512_bf16; do
    if [[ "$flags" == *" ${pair#*:} "* ]]; then
      args+=" -DGGML_${pair%%:*}=ON"
    else
      args+=" -DGGML_${pair%%:*}=OFF"
    fi
  done
  echo "$args"
}

# A venv's llama.cpp is kept only if it was built for this CPU's features (or unpacked from the
# same prebuilt package): one built elsewhere can die with SIGILL here (an AVX-VNNI build on an
# AMD Zen 4) or run slower than this CPU allows.
setup_llamacpp() {
  local venv="$VENVS/venv-llamacpp" check="import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '0.3.36')"
  local built="$venv/arena-llamacpp-build" want
  if [ -n "${LLAMACPP_PREBUILT:-}" ]; then
    want="prebuilt $(basename "$LLAMACPP_PREBUILT")"
  else
    want="cmake $(llamacpp_cmake_args)"
  fi
  if "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    if [ "$(cat "$built" 2>/dev/null)" = "$want" ]; then
      echo "$venv/bin/python"
      return 0
    fi
    log "llama-cpp-python in $venv was built for another CPU or source ($(cat "$built" 2>/dev/null || echo unknown)); rebuilding"
    "$venv/bin/pip" uninstall --quiet --yes llama-cpp-python >/dev/null 2>&1 || true
  fi
  venv_install "$venv" "import numpy, gguf, jinja2, diskcache" numpy gguf typing_extensions diskcache jinja2
  local site
  site="$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
  rm -f "$built"
  if [ -n "${LLAMACPP_PREBUILT:-}" ]; then
    log "unpacking llama-cpp-python from $LLAMACPP_PREBUILT"
    rm -rf "$site/llama_cpp" "$site"/llama_cpp_python-*.dist-info
    tar xzf "$LLAMACPP_PREBUILT" -C "$site" || die "cannot unpack $LLAMACPP_PREBUILT"
  else
    need_cmd c++
    local cmake_args
    cmake_args="$(llamacpp_cmake_args)"
    log "building llama-cpp-python 0.3.36 from source (about 15 minutes on 2 cores): $cmake_args"
    CMAKE_ARGS="$cmake_args" nice -n 10 "$venv/bin/pip" install --quiet --disable-pip-version-check \
      --no-cache-dir --no-deps llama-cpp-python==0.3.36 \
      || die "could not build llama-cpp-python 0.3.36 (needs a C++ compiler; pip fetches cmake)"
  fi
  "$venv/bin/python" -c "$check" || die "llama_cpp 0.3.36 does not import from $venv"
  echo "$want" >"$built"
  echo "$venv/bin/python"
}

setup_fastchat() {
  local venv="$VENVS/venv-fastchat"
  local check="import fastchat, torch, transformers, aiohttp, sys; sys.exit(fastchat.__version__ != '0.2.36' or not torch.__version__.startswith('2.4.1'))"
  if ! "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    log "installing torch 2.4.1 (alone: FastChat's requirements would pick a newer one) into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (install Debian's python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps torch==2.4.1 \
      || die "could not install torch 2.4.1 into $venv"
    log "installing FastChat 0.2.36 and the libraries of its time into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check filelock sympy networkx jinja2 \
      fsspec typing-extensions 'numpy<2' transformers==4.44.2 tokenizers==0.19.1 \
      accelerate==0.34.2 pydantic==1.10.14 fastapi==0.109.2 fschat==0.2.36 uvicorn httpx \
      shortuuid requests sentencepiece protobuf aiohttp prompt_toolkit rich nh3 tiktoken \
      markdown2 psutil || die "could not install FastChat 0.2.36 into $venv"
    "$venv/bin/python" -c "$check" || die "FastChat 0.2.36 does not import from $venv"
  fi
  echo "$venv/bin/python"
}

setup_elo() {
  local venv="$VENVS/venv-elo"
  venv_install "$venv" \
    "import fastchat, numpy, pandas, sklearn, scipy, sys; sys.exit((fastchat.__version__, numpy.__version__, sklearn.__version__) != ('0.2.36', '1.26.4', '1.4.0'))" \
    fschat==0.2.36 numpy==1.26.4 pandas==2.2.0 scikit-learn==1.4.0 scipy==1.12.0 tqdm pytz psutil
  echo "$venv/bin/python"
}

# arena-rank pins jax and numpy; its other requirement, Hugging Face `datasets`, only serves its
# example notebooks and is left out (--no-deps), with every library it does import pinned.
setup_arena_rank() {
  local venv="$VENVS/venv-arena-rank"
  local check="import arena_rank, jax, optax, pandas, importlib.metadata as m, sys; sys.exit(m.version('arena-rank') != '0.1.1' or jax.__version__ != '0.8.1')"
  if ! "$venv/bin/python" -c "$check" >/dev/null 2>&1; then
    log "installing arena-rank 0.1.1 and jax 0.8.1 into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" || die "python3 -m venv failed (install Debian's python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps arena-rank==0.1.1 \
      jax==0.8.1 jaxlib==0.8.1 numpy==2.3.3 optax==0.2.8 jaxtyping==0.3.11 wadler_lindig==0.1.8 \
      pandas==3.1.1 python-dateutil==4.0.0 tzdata==2026.6 absl-py==2.5.1 ml_dtypes==0.7.0 \
      opt_einsum==3.4.0 scipy==1.17.1 \
      || die "could not install arena-rank 0.1.1 into $venv"
    "$venv/bin/python" -c "$check" || die "arena-rank 0.1.1 does not import from $venv"
  fi
  echo "$venv/bin/python"
}

case "${1:-}" in
  llamacpp) setup_llamacpp ;;
  fastchat) setup_fastchat ;;
  elo) setup_elo ;;
  arena-rank) setup_arena_rank ;;
  *)
    echo "usage: scripts/setup-bench.sh llamacpp|fastchat|elo|arena-rank" >&2
    exit 2
    ;;
esac
