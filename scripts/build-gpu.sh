#!/usr/bin/env bash
# Builds an x86-64 `dddit` with LibTorch-CUDA on a CPU-only machine (no GPU, no CUDA toolkit),
# for a GPU machine that has PyTorch 2.11 (CUDA 13) installed.
#
#   scripts/build-gpu.sh [OUT]          # OUT defaults to dist/dddit-gpu
#
# 1. Downloads the PyPI wheel torch==2.11.0 (the cu130 build, ~530 MB; pip's cache or
#    $TORCH_WHEEL_DIR are reused) and unpacks only torch/include, torch/lib and torch/share into
#    $LIBTORCH_DIR (default .libtorch-cu130, git-ignored).
# 2. Builds with `--features tch` against it. tch 0.22 (burn 0.22's LibTorch binding) is written
#    for 2.9.0; its C++ wrapper compiles against 2.11's headers, hence
#    LIBTORCH_BYPASS_VERSION_CHECK=1. The target directory is $CARGO_TARGET_DIR (default
#    target-gpu, kept apart from the CPU build so neither rebuilds the other).
#    The CUDA runtime's headers (nvidia-cuda-runtime wheel) are unpacked beside it for the
#    CUDA-graph shim (DDDIT_CUDA_INCLUDE); NCCL's and cuBLAS/cuSPARSE/cuSOLVER's headers for
#    c10d's ProcessGroupNCCL (DDDIT_NCCL_INCLUDE; NCCL=0 leaves NCCL out).
# 3. Strips the binary (~35 MB; LibTorch itself is not inside: it is linked dynamically).
#
# On the GPU machine, run it with the PyTorch installation's libraries on the path:
#   LD_LIBRARY_PATH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib \
#     ./dddit-gpu devices            # lists tch-cuda:N
#   ... ./dddit-gpu run experiments/gpu/seed-6-1.toml --device tch-cuda:0 --precision tf32
set -euo pipefail
out=${1:-dist/dddit-gpu}
version=2.11.0
lt=${LIBTORCH_DIR:-.libtorch-cu130}
wheels=${TORCH_WHEEL_DIR:-$lt/wheels}
mkdir -p "$lt" "$wheels" "$(dirname "$out")"
lt=$(cd "$lt" && pwd)
if [ ! -f "$lt/torch/lib/libtorch_cuda.so" ]; then
  ls "$wheels"/torch-$version-*.whl >/dev/null 2>&1 ||
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d "$wheels" "torch==$version"
  python3 - "$wheels" "$lt" "$version" <<'PY'
import glob, os, sys, zipfile
wheels, dest, version = sys.argv[1:]
(wheel,) = glob.glob(os.path.join(wheels, f"torch-{version}-*.whl"))
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(("torch/include/", "torch/lib/", "torch/share/"))]
    z.extractall(dest, names)
print(f"unpacked LibTorch {version} (CUDA) from {os.path.basename(wheel)} into {dest}/torch")
PY
fi
# The CUDA runtime's headers, for the CUDA-graph part of dddit-core's C++ shim (LibTorch's
# wheel ships ATen's CUDA headers but not cuda_runtime_api.h): the nvidia-cuda-runtime wheel
# and crt wheels of torch 2.11's (cu130) CUDA 13.0 toolkit, ~2 MB.
if [ ! -f "$lt/cuda/include/crt/host_config.h" ]; then
  for w in nvidia-cuda-runtime==13.0.96 nvidia-cuda-crt==13.0.88; do
    ls "$wheels"/"$(echo "${w%%==*}" | tr - _)"-"${w##*==}"-*.whl >/dev/null 2>&1 ||
      python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$wheels" "$w"
  done
  python3 - "$wheels" "$lt" <<'PY'
import glob, os, sys, zipfile
wheels, dest = sys.argv[1:]
for pattern in ("nvidia_cuda_runtime-13.0.96-*.whl", "nvidia_cuda_crt-13.0.88-*.whl"):
    (wheel,) = glob.glob(os.path.join(wheels, pattern))
    with zipfile.ZipFile(wheel) as z:
        for n in z.namelist():
            if n.startswith("nvidia/cu13/include/") and not n.endswith("/"):
                out = os.path.join(dest, "cuda/include", n[len("nvidia/cu13/include/"):])
                os.makedirs(os.path.dirname(out), exist_ok=True)
                open(out, "wb").write(z.read(n))
print(f"unpacked the CUDA 13.0 runtime headers into {dest}/cuda/include")
PY
fi
# NCCL for data parallelism (c10d's ProcessGroupNCCL): nccl.h of the NCCL that torch 2.11 pins,
# and the headers ATen's CUDA context pulls in (cuBLAS, cuSPARSE, cuSOLVER of the CUDA 13.0.2
# toolkit torch 2.11 names). Only headers are kept; the wheels are ~970 MB, downloaded once.
# NCCL=0 builds without it (data parallelism then has gloo only).
if [ "${NCCL:-1}" = 1 ]; then
  if [ ! -f "$lt/nccl/include/nccl.h" ] || [ ! -f "$lt/cuda/include/cusolverDn.h" ]; then
    for w in nvidia-nccl-cu13==2.28.9 nvidia-cublas==13.1.0.3 nvidia-cusparse==12.6.3.3 nvidia-cusolver==12.0.4.66; do
      ls "$wheels"/"$(echo "${w%%==*}" | tr - _)"-"${w##*==}"-*.whl >/dev/null 2>&1 ||
        python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_17_x86_64 \
          --platform manylinux2014_x86_64 --platform manylinux_2_18_x86_64 --platform manylinux_2_27_x86_64 \
          -d "$wheels" "$w"
    done
    python3 - "$wheels" "$lt" <<'PY'
import glob, os, sys, zipfile
wheels, dest = sys.argv[1:]
for pattern, prefix, sub in (
    ("nvidia_nccl_cu13-2.28.9-*.whl", "nvidia/nccl/include/", "nccl/include"),
    ("nvidia_cublas-13.1.0.3-*.whl", "nvidia/cu13/include/", "cuda/include"),
    ("nvidia_cusparse-12.6.3.3-*.whl", "nvidia/cu13/include/", "cuda/include"),
    ("nvidia_cusolver-12.0.4.66-*.whl", "nvidia/cu13/include/", "cuda/include"),
):
    (wheel,) = glob.glob(os.path.join(wheels, pattern))
    with zipfile.ZipFile(wheel) as z:
        for n in z.namelist():
            if n.startswith(prefix) and not n.endswith("/"):
                out = os.path.join(dest, sub, n[len(prefix):])
                os.makedirs(os.path.dirname(out), exist_ok=True)
                open(out, "wb").write(z.read(n))
print(f"unpacked the NCCL 2.28.9, cuBLAS, cuSPARSE and cuSOLVER headers into {dest}")
PY
  fi
  export DDDIT_NCCL_INCLUDE="$lt/nccl/include"
fi
export DDDIT_CUDA_INCLUDE="$lt/cuda/include"
export LIBTORCH="$lt/torch" LIBTORCH_BYPASS_VERSION_CHECK=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target-gpu}
cargo build --release --locked -p dddit --features tch
strip -o "$out" "$CARGO_TARGET_DIR/release/dddit"
ls -la "$out"
echo "built $out against LibTorch $version (CUDA); run it with LD_LIBRARY_PATH set to PyTorch 2.11's torch/lib"
