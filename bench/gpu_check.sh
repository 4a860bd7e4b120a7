#!/usr/bin/env bash
# The GPU measurements of bench/runs.md in one short run, for a session lent a GPU
# (the `device` tool: an H100 or H200, torch preinstalled, no network).
#
#   bench/gpu_prepare.sh                  # here, first: stage the tokenizer and paper CSV
#   run: bash bench/gpu_check.sh          # there, with carry=["artifacts/gpu"]
#
# It prints versions, runs tests/test_gpu.py (the CUDA-only paths against the CPU ones),
# then the 7B-shaped extraction benchmark on the paper's world places (baseline and
# project; the project again with its files in /dev/shm), a profile of one 7B batch
# (bench/forward_profile.py), the 7B-sized probe sweep (32 layers, d=4096, n=32k) and the
# storage benchmark (the machine's disk); the benchmarks end in `ratio:`. A failed stage
# is reported and the others still run. Every stage's output is also written to $OUT
# (when set) for the closing note. About 9 minutes on an H100, the stages in order of
# importance: run it with timeout_s 590, and keep the outputs under docs/gpu-runs/.
#
# Smaller, on a CPU (checks the script itself):
#   DEVICE=cpu SHAPE=small SWEEP=2 D=64 N=2000 EXTRACT_N=200 STORE_N=500 PACED_N=2000 bash bench/gpu_check.sh
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
export PYTHONUNBUFFERED=1  # stage output reaches $OUT as it comes
export SPACETIME_CACHE=${SPACETIME_CACHE:-$(mktemp -d)}

failed=()
report() {  # run a stage, keep its output beside the console; a failed stage does not stop the rest
  local name=$1; shift
  local status=0
  if [ -n "$OUT" ]; then "$@" 2>&1 | tee "$OUT/$name.txt" || status=$?; else "$@" || status=$?; fi
  [ "$status" = 0 ] || { echo "== $name FAILED (exit $status)"; failed+=("$name"); }
}

report versions "$PY" -c "
import os, shutil, sys, tempfile, numpy, scipy, sklearn, torch, transformers
print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'scipy', scipy.__version__,
      'sklearn', sklearn.__version__, 'torch', torch.__version__, 'transformers', transformers.__version__)
print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')
free = shutil.disk_usage(tempfile.gettempdir()).free / 1e9
print('cpus', os.cpu_count(), 'temp dir', tempfile.gettempdir(), f'{free:.0f} GB free')
"
[ -f "$SPACETIME_PAPER_WORLD" ] || { echo "missing $SPACETIME_PAPER_WORLD: run bench/gpu_prepare.sh here and carry $STAGED" >&2; exit 2; }

# the GPU-only code paths give the CPU paths' numbers (overlapped copies, torch solver)
report tests timeout 150 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py
extract_args=(--gpu --shape "$SHAPE" --device "$DEVICE" --source paper)
[ -n "$EXTRACT_N" ] && extract_args+=(--n "$EXTRACT_N")
# VARIANTS=1 adds project-sync and project-2x (~70 s more on an H100)
[ -n "${VARIANTS:-}" ] && extract_args+=(--variants)
report extract timeout 240 "$PY" -m bench.extract "${extract_args[@]}"
# the same build with its layer files in memory (/dev/shm): the GPU side without the disk
# (and with attention by plain matrix products first, which may suit names of a few tokens)
[ -d /dev/shm ] && report extract-memory env TMPDIR=/dev/shm timeout 120 "$PY" -m bench.extract "${extract_args[@]}" --methods project project-math
# one typical batch: its kernels, each attention kernel tried first, compiled norms and MLP
profile_args=(--shape "$SHAPE" --device "$DEVICE" --attention --compile --rows 12)
[ "$DEVICE" = cpu ] && profile_args+=(--batch 64)
report profile timeout 120 "$PY" -m bench.forward_profile "${profile_args[@]}"
report probes timeout 200 "$PY" -m bench.probes --sweep "$SWEEP" --d "$D" --n "$N" --device "$DEVICE" --profile --compare-staging 4
# the machine's disk, which the extraction's ~10 GB of float16 goes through
report store timeout 90 "$PY" -m bench.store --n "${STORE_N:-8000}" --rounds 1
# a 7B build's disk path behind a GPU-fast model: checkpoint fsyncs inline vs in the background
report store-paced timeout 120 "$PY" -m bench.store --n "${PACED_N:-40000}" --batch 1024 --pace 1.4 --rounds 1
[ ${#failed[@]} = 0 ] || { echo "failed stages: ${failed[*]}"; exit 1; }
