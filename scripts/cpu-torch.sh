#!/usr/bin/env bash
# Makes a CPU-only *Python* PyTorch 2.9.0 out of the PyPI CUDA wheel, on a machine without CUDA,
# cuDNN or a GPU, so the golden-value scripts in tools/ (and CPU baselines) can run anywhere.
#
# The PyPI wheel's libtorch_python.so needs libtorch_cuda.so, libc10_cuda.so, libcudnn.so.9,
# libcusparseLt.so.0 and libcufile.so.0. This script installs the wheel into DEST, keeps the CPU
# libraries, and replaces those five by small stub libraries that define the symbols
# libtorch_python.so refers to (as functions returning a zeroed buffer, or type_info objects
# with their right names). None of them is ever called on the CPU path; torch.cuda reports no
# device. A wrapper DEST/python runs the interpreter with ASLR off (`setarch -R`), without
# which the stubbed import crashes now and then.
#
# Usage: scripts/cpu-torch.sh DEST        (needs python3.11 + pip, gcc, nm, setarch)
#        DEST/python tools/make_inception_fixtures.py
set -euo pipefail
DEST=${1:?usage: scripts/cpu-torch.sh DEST}
PY=${PYTHON:-python3}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
if [ ! -d "$DEST/torch" ]; then
  "$PY" -m pip install --no-deps --target "$DEST" torch==2.9.0 nvidia-cuda-runtime-cu12==12.8.90 nvidia-cuda-cupti-cu12==12.8.90
  "$PY" -m pip install --target "$DEST" numpy
fi
LIB="$DEST/torch/lib"
cp -n "$DEST"/nvidia/cuda_runtime/lib/libcudart.so.12 "$LIB"/ 2>/dev/null || true
rm -f "$LIB"/libtorch_cuda_linalg.so "$LIB"/libtorch_nvshmem.so "$LIB"/libcaffe2_nvrtc.so
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# libtorch.so of the wheel also needs libtorch_cuda.so: drop that reference.
patchelf --remove-needed libtorch_cuda.so "$LIB/libtorch.so" 2>/dev/null || true
# Symbols libtorch_python.so needs that no CPU library defines.
nm -D --undefined-only "$LIB/libtorch_python.so" | awk '{print $2}' | sed 's/@.*//' | sort -u > "$WORK/undef"
for l in "$LIB"/libtorch_cpu.so "$LIB"/libtorch.so "$LIB"/libc10.so "$LIB"/libshm.so "$LIB"/libcudart.so.12 "$LIB"/libgomp*.so* \
         /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libm.so.6 /usr/lib/x86_64-linux-gnu/libstdc++.so.6 /lib/x86_64-linux-gnu/libgcc_s.so.1; do
  nm -D --defined-only "$l" 2>/dev/null | awk '{print $3}' | sed 's/@.*//'
done | sort -u > "$WORK/def"
comm -23 "$WORK/undef" "$WORK/def" | grep -v -E '^(Py|_Py|_ITM_|__gmon|__cxa_finalize|_ZT[HW])' > "$WORK/missing"
nm -D --undefined-only "$LIB/libtorch_python.so" | awk '{print $2}' | grep '@libcudnn' | sed 's/@.*//' > "$WORK/cudnn"
grep -v -x -f "$WORK/cudnn" "$WORK/missing" > "$WORK/cuda" || true
stub() { # name symbols-file
  {
    echo 'static char dddit_buf[4096]; extern char _ZTVN10__cxxabiv117__class_type_infoE[]; struct ti { void* v; const char* n; };'
    while read -r s; do
      case "$s" in
        _ZTI*) echo "__attribute__((visibility(\"default\"))) struct ti $s = { _ZTVN10__cxxabiv117__class_type_infoE + 16, \"${s#_ZTI}\" };" ;;
        _ZT*|*allocatorE) echo "__attribute__((visibility(\"default\"))) char $s[256];" ;;
        *) echo "__attribute__((visibility(\"default\"))) void* $s(void) { return dddit_buf; }" ;;
      esac
    done < "$2"
  } > "$WORK/$1.c"
  echo "$1 { global: *; };" > "$WORK/$1.map"
  gcc -shared -fPIC -o "$LIB/$1" "$WORK/$1.c" -Wl,--version-script="$WORK/$1.map" -Wl,-soname,"$1" -lstdc++
}
stub libtorch_cuda.so "$WORK/cuda"
stub libcudnn.so.9 "$WORK/cudnn"
: > "$WORK/none"
for l in libc10_cuda.so libcusparseLt.so.0 libcufile.so.0; do stub "$l" "$WORK/none"; done
PYBIN=$("$PY" -c 'import sys; print(sys.executable)')
cat > "$DEST/python" <<WRAP
#!/bin/sh
PYTHONPATH="$DEST\${PYTHONPATH:+:\$PYTHONPATH}" exec setarch "\$(uname -m)" -R "$PYBIN" "\$@"
WRAP
chmod +x "$DEST/python"
"$DEST/python" -c "import torch; x = torch.nn.Conv2d(3, 8, 3)(torch.randn(1, 3, 8, 8)); print('torch', torch.__version__, 'CPU OK', tuple(x.shape))"
