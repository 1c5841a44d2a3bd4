#!/usr/bin/env bash
# Fetches LibTorch for dddit's `tch` feature from PyPI (no other network access needed) and
# prints the environment to build and run with it.
#
#   scripts/fetch-libtorch.sh [DEST] [TORCH_VERSION]
#
# DEST defaults to ./.libtorch; TORCH_VERSION to 2.9.0, the version tch 0.22 (burn 0.22's
# LibTorch binding) is written for. The PyPI wheel is a CUDA build (~900 MB download); only its
# include/, lib/ and share/ folders are kept (~2 GB unpacked), plus the CUDA runtime and CUPTI
# libraries that libtorch_cuda.so needs to load even on a CPU-only machine.
set -euo pipefail
dest=${1:-.libtorch}
version=${2:-2.9.0}
mkdir -p "$dest/wheels"
dest=$(cd "$dest" && pwd)
python3 -m pip download --no-deps -d "$dest/wheels" "torch==$version" \
  nvidia-cuda-runtime-cu12==12.8.90 nvidia-cuda-cupti-cu12==12.8.90
python3 - "$dest" "$version" <<'PY'
import glob, os, sys, zipfile
dest, version = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(dest, "wheels", f"torch-{version}-*.whl"))
with zipfile.ZipFile(wheel) as z:
    members = [n for n in z.namelist() if n.startswith(("torch/include/", "torch/lib/", "torch/share/"))]
    z.extractall(dest, members)
for w in glob.glob(os.path.join(dest, "wheels", "nvidia_*.whl")):
    with zipfile.ZipFile(w) as z:
        libs = [n for n in z.namelist() if "/lib/" in n and ".so" in n]
        for n in libs:
            target = os.path.join(dest, "torch", "lib", os.path.basename(n))
            with z.open(n) as src, open(target, "wb") as out:
                out.write(src.read())
print(f"unpacked LibTorch {version} into {dest}/torch")
PY
cat <<MSG

Build and run dddit with LibTorch:
  export LIBTORCH=$dest/torch
  export LD_LIBRARY_PATH=$dest/torch/lib:\${LD_LIBRARY_PATH:-}
  cargo build --release --features tch
  ./target/release/dddit flops --model DiT-S/4 --image-size 32 --channels 1 --measure --device tch-cpu
MSG
