# Sourced by bench/gpu/*.sh: `py` is the GPU machine's PyTorch Python ($PYTHON overrides it),
# and its LibTorch libraries, which dddit-gpu links against, are put on LD_LIBRARY_PATH.
py=${PYTHON:-/opt/torch/.venv/bin/python}
export LD_LIBRARY_PATH=$($py -c 'import torch, os; print(os.path.dirname(torch.__file__))')/lib:${LD_LIBRARY_PATH:-}
