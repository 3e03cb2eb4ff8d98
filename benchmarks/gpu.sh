#!/usr/bin/env bash
# The gpu suite of benchmarks/jacobian.py on a CUDA machine, with no network: rows in $OUT/gpu.jsonl, progress and
# errors in $OUT/gpu.log. Run from anywhere; extra arguments go to jacobian.py (e.g. --budget-gb 60).
#   OUT=/tmp/bench bash benchmarks/gpu.sh
# Installs nothing from the network: it needs a Python whose torch sees CUDA, plus numpy, safetensors and diffusers
# (the SD-like rows are skipped without diffusers). gendebias itself maps folders to subpackages (pyproject.toml
# package-dir), so it is installed editable without dependencies, or, where pip cannot, linked into a temporary
# folder on PYTHONPATH.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/out}"
PYTHON="${PYTHON:-python}"
mkdir -p "$OUT"

if ! "$PYTHON" -c "import gendebias.geometry" 2>/dev/null; then
  if ! "$PYTHON" -m pip install -q --no-build-isolation --no-deps -e . >"$OUT/pip.log" 2>&1; then
    echo "pip install -e . failed (see $OUT/pip.log); linking the package folders instead" >&2
    SRC="$(mktemp -d)"
    mkdir -p "$SRC/gendebias"
    cp gendebias/*.py "$SRC/gendebias/"
    for room in geometry generators service clients jobs cli; do ln -s "$PWD/$room" "$SRC/gendebias/$room"; done
    ln -s "$PWD/proto/gendebias/v1" "$SRC/gendebias/v1"
    export PYTHONPATH="$SRC${PYTHONPATH:+:$PYTHONPATH}"
  fi
fi
"$PYTHON" - <<'PY'
import importlib.util, torch
assert torch.cuda.is_available(), "torch sees no CUDA device: the gpu suite would run on CPU"
missing = [name for name in ("numpy", "safetensors", "diffusers") if importlib.util.find_spec(name) is None]
print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}; missing: {missing or 'nothing'}", flush=True)
PY
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv >"$OUT/nvidia-smi.csv" || true
"$PYTHON" benchmarks/jacobian.py --suite gpu --out "$OUT/gpu.jsonl" "$@" 2> >(tee "$OUT/gpu.log" >&2)
