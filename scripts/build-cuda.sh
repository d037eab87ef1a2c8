#!/usr/bin/env bash
# Builds `arena` with CUDA (`cargo build --release --features cuda`) on any x86-64 Linux
# machine, with or without a GPU, then runs the CUDA build's own check
# (tests/cuda.rs, ignored by default).
#
#   scripts/build-cuda.sh            # build, strip, check
#   scripts/build-cuda.sh --no-test  # build and strip only
#
# The CUDA compiler, headers and the libraries candle links (cudart, cuBLAS, cuBLASLt, cuRAND,
# NVRTC) come from PyPI into a cached virtualenv, ~/.cache/arena/venv-cuda13.0 (1.2 GB, made
# once). CUDA 13.0 matches the NVIDIA driver 580: PTX from a newer nvcc than the driver knows
# does not load. The kernels are built for compute capability $CUDA_COMPUTE_CAP (default 90:
# Hopper, H100/H200; 80 for A100, 89 for L4/L40, 86 for RTX 30xx).
#
# Linking needs the driver library, libcuda.so, which only an NVIDIA driver installs. On a
# machine without one the script writes a stub (every call answers CUDA_ERROR_STUB_LIBRARY,
# as the stub in NVIDIA's toolkit does) to link against; the binary loads the real
# libcuda.so.1 of the machine it runs on.
#
# Output: $ARENA_CUDA_TARGET_DIR/arena-cuda (default ~/.cache/arena/target-cuda), stripped
# (about 75 MB, a third of it the GPU kernels), built for x86-64-v2 (RUSTFLAGS overrides) so it runs on the GPU host's CPU whatever it is;
# the CPU kernels pick their instruction set at run time. Run it with the CUDA libraries on
# the library path; the script prints the line.
set -euo pipefail
cd "$(dirname "$0")/.."

run_test=1
for arg in "$@"; do
  case "$arg" in
    --no-test) run_test=0 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "build-cuda.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

cuda_version=13.0
venv="${ARENA_CUDA_VENV:-$HOME/.cache/arena/venv-cuda$cuda_version}"
target_dir="${ARENA_CUDA_TARGET_DIR:-$HOME/.cache/arena/target-cuda}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# CUDA 13.0's own release of every package, dependencies included, installed with --no-deps:
# left to pip, nvcc 13.0 pulls the newest nvidia-nvvm, whose PTX its own ptxas refuses.
packages=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.0.2.14
  nvidia-curand==10.4.0.35
)

SCRIPT_NAME=build-cuda.sh
. scripts/lib.sh

[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] ||
  die "the CUDA packages on PyPI used here are for Linux x86-64; this is $(uname -s) $(uname -m)"
need_cmd cargo
# venv for the toolkit, g++ as nvcc's host compiler (and cc for the stub).
apt_install python3 python3-venv g++

# The toolkit from PyPI, once: the check holds each package at its pinned version.
pins="$(printf '%s\n' "${packages[@]}" | sed 's/\(.*\)==\(.*\)/("\1","\2"),/' | tr -d '\n')"
venv_install "$venv" "import importlib.metadata as m; assert all(m.version(n) == v for n, v in [$pins])" \
  --no-deps "${packages[@]}"
cuda_home="$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)"
[ -x "$cuda_home/bin/nvcc" ] || die "no nvcc under $cuda_home: remove $venv and rerun"
lib="$cuda_home/lib"

# The linker looks for libNAME.so; the wheels ship only the versioned names.
for so in cudart cublas cublasLt curand nvrtc; do
  versioned="$(cd "$lib" && ls "lib$so.so."* 2>/dev/null | grep -E "^lib$so\.so\.[0-9]+$" | head -1)"
  [ -n "$versioned" ] || die "lib$so.so.N missing from $lib"
  ln -sfn "$versioned" "$lib/lib$so.so"
done

# The stub driver to link against, with every driver entry point cudarc declares.
cudarc_src="$(cargo metadata --format-version 1 --features cuda 2>/dev/null |
  python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc").rsplit("/",1)[0])')" ||
  die "cargo metadata could not locate cudarc (is the registry reachable for cargo fetch?)"
stubs="$cuda_home/lib/stubs"
mkdir -p "$stubs"
if [ ! -f "$stubs/libcuda.so" ] || [ "$cudarc_src/src/driver/sys/mod.rs" -nt "$stubs/libcuda.so" ]; then
  {
    echo '/* Stub of the NVIDIA driver library, written by scripts/build-cuda.sh for linking. */'
    echo 'static const char msg[] = "CUDA driver is a stub library: this machine has no NVIDIA driver";'
    echo 'int cuGetErrorString(int e, const char **s) { (void)e; *s = msg; return 0; }'
    echo 'int cuGetErrorName(int e, const char **s) { (void)e; *s = "CUDA_ERROR_STUB_LIBRARY"; return 0; }'
    grep -oE 'pub unsafe fn cu[A-Za-z0-9_]+' "$cudarc_src/src/driver/sys/mod.rs" | awk '{print $4}' |
      sort -u | grep -vxE 'cuGetErrorString|cuGetErrorName' |
      sed 's/.*/int &(void) { return 34; \/* CUDA_ERROR_STUB_LIBRARY *\/ }/'
  } >"$stubs/libcuda-stub.c"
  cc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/libcuda-stub.c" ||
    die "could not compile the stub driver library"
  ln -sfn libcuda.so "$stubs/libcuda.so.1"
fi

# At run time the machine's own driver comes first; the stub only where there is none.
runtime_path="$lib"
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
  runtime_path="$lib:$stubs"
fi

export PATH="$cuda_home/bin:$PATH" CUDA_HOME="$cuda_home" CUDA_ROOT="$cuda_home"
export CARGO_TARGET_DIR="$target_dir"
export RUSTFLAGS="${RUSTFLAGS:--C target-cpu=x86-64-v2}"
log "cargo build --release --features cuda (CUDA $cuda_version, sm_$CUDA_COMPUTE_CAP, RUSTFLAGS='$RUSTFLAGS', into $target_dir)"
cargo build --release --features cuda --bin arena
# A stripped copy to carry to the GPU host; cargo's own stays as cargo left it (a later cargo
# test would link it again anyway).
bin="$target_dir/arena-cuda"
cp "$target_dir/release/arena" "$bin"
strip "$bin" 2>/dev/null || log "strip not found; $bin keeps its symbols"
log "built $bin ($(du -h "$bin" | cut -f1))"

if [ "$run_test" = 1 ]; then
  log "checking the CUDA build (tests/cuda.rs)"
  LD_LIBRARY_PATH="$runtime_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    cargo test --release --features cuda --test cuda -- --ignored --nocapture
fi

log "run it with the CUDA $cuda_version libraries on the library path:"
echo "  LD_LIBRARY_PATH=$lib $bin worker --model PATH --device cuda:0"
