#!/usr/bin/env bash
# Assembles, on the GPU machine, what bench/gpu/*.sh need from the parts carried to it (each
# call carries at most 64 MiB, so the 87 MB Inception weights come in two parts):
#
#   bench/gpu/stage.sh CARRIED_DIR STAGE
#
# CARRIED_DIR may hold dddit-gpu.xz, inception.part1/.part2 and fashion-mnist/*.gz; STAGE
# (e.g. /tmp/dddit-stage, which outlives a call while the machine stays warm) receives
# dddit-gpu, assets/inception/default_1.pt (SHA-256 checked) and fashion-mnist/.
set -euo pipefail
src=$1; stage=$2
py=${PYTHON:-/opt/torch/.venv/bin/python}
mkdir -p "$stage/assets/inception" "$stage/fashion-mnist" "$stage/parts"
if [ -f "$src/dddit-gpu.xz" ]; then
  $py -c 'import lzma, sys; open(sys.argv[2], "wb").write(lzma.open(sys.argv[1]).read())' "$src/dddit-gpu.xz" "$stage/dddit-gpu"
  chmod +x "$stage/dddit-gpu"
fi
[ -d "$src/fashion-mnist" ] && cp "$src"/fashion-mnist/*.gz "$stage/fashion-mnist/"
cp "$src"/inception.part* "$stage/parts/" 2>/dev/null || true
want=7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34
if [ -f "$stage/parts/inception.part1" ] && [ -f "$stage/parts/inception.part2" ]; then
  cat "$stage/parts/inception.part1" "$stage/parts/inception.part2" > "$stage/assets/inception/default_1.pt"
  got=$(sha256sum "$stage/assets/inception/default_1.pt" | cut -d' ' -f1)
  [ "$got" = "$want" ] || { echo "Inception weights: SHA-256 $got, expected $want"; exit 1; }
  echo "Inception weights assembled and verified"
fi
ls -la "$stage" "$stage/fashion-mnist" "$stage/assets/inception"
