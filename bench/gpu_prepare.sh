#!/usr/bin/env bash
# Stage, under the git-ignored artifacts/gpu/, what bench/gpu_check.sh needs on a machine
# with no network: SmolLM2's tokenizer files (names split about as Llama's would; the
# weights stay here) and the paper's world places CSV (read from ../shared, never
# committed). Then pass carry=["artifacts/gpu"] to the device tool.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
STAGED=artifacts/gpu
PAPER=${SPACETIME_PAPER_DIR:-../shared/paper-data/entity_datasets}

mkdir -p "$STAGED/tokenizer"
"$PY" -m core prepare --model smollm2-135m >/dev/null
model_dir=$(ls -d cache/models/smollm2-135m-* | head -n 1)
cp "$model_dir"/tokenizer*.json "$STAGED/tokenizer/"
cp "$PAPER/world_place.csv" "$STAGED/world_place.csv"
du -sh "$STAGED"
