#!/usr/bin/env bash
# The GPU measurements of bench/README.md in one short run, for a session lent a GPU
# (the `device` tool: an H100 or H200, torch preinstalled, no network).
#
#   bench/gpu_prepare.sh                  # here, first: stage the tokenizer and paper CSV
#   run: bash bench/gpu_check.sh          # there, with carry=["artifacts/gpu"]
#
# It prints versions, then the 7B-sized probe sweep (32 layers, d=4096, n=32k), the
# 7B-shaped extraction benchmark on the paper's world places and the storage benchmark
# (the machine's disk), each ending in `ratio:`.
# Both outputs are also written to $OUT (when set) for the closing note.
#
# Smaller, on a CPU (checks the script itself):
#   DEVICE=cpu SHAPE=small SWEEP=2 D=64 N=2000 EXTRACT_N=200 STORE_N=500 bash bench/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
SHAPE=${SHAPE:-7b}
SWEEP=${SWEEP:-32}
D=${D:-4096}
N=${N:-32000}
EXTRACT_N=${EXTRACT_N:-}
OUT=${OUT:-}
STAGED=artifacts/gpu

export SPACETIME_BENCH_TOKENIZER=${SPACETIME_BENCH_TOKENIZER:-$STAGED/tokenizer}
export SPACETIME_PAPER_WORLD=${SPACETIME_PAPER_WORLD:-$STAGED/world_place.csv}
export SPACETIME_CACHE=${SPACETIME_CACHE:-$(mktemp -d)}

report() {  # run a command, keep its output beside the console
  local name=$1; shift
  if [ -n "$OUT" ]; then "$@" 2>&1 | tee "$OUT/$name.txt"; else "$@"; fi
}

report versions "$PY" -c "
import sys, numpy, scipy, sklearn, torch, transformers
print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'scipy', scipy.__version__,
      'sklearn', sklearn.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)
print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')
"
[ -f "$SPACETIME_PAPER_WORLD" ] || { echo "missing $SPACETIME_PAPER_WORLD: run bench/gpu_prepare.sh here and carry $STAGED" >&2; exit 2; }

report probes timeout 300 "$PY" -m bench.probes --sweep "$SWEEP" --d "$D" --n "$N" --device "$DEVICE"
extract_args=(--gpu --shape "$SHAPE" --device "$DEVICE" --source paper --variants)
[ -n "$EXTRACT_N" ] && extract_args+=(--n "$EXTRACT_N")
report extract timeout 420 "$PY" -m bench.extract "${extract_args[@]}"
# the machine's disk, which the extraction's ~10 GB of float16 goes through
report store timeout 120 "$PY" -m bench.store --n "${STORE_N:-8000}" --rounds 1
