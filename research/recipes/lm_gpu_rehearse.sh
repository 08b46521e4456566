#!/usr/bin/env bash
# Rehearse the GPU calls of research/recipes/lm_gpu.sh here, on CPU, before a GPU is lent: each call
# runs in a scratch "device" folder that keeps what earlier calls carried (as a warm machine does),
# with its own empty OUT; the last call trains 2 tiny steps; the parts it leaves are assembled into
# a model folder and restored with. Usage (repo root, after `python -m research.lm_gpu prepare`):
#   PY=.venv/bin/python bash research/recipes/lm_gpu_rehearse.sh [SCRATCH]
set -eu -o pipefail
PY=${PY:-python3} ROOT=$(pwd) SCRATCH=${1:-$(mktemp -d)}
case $PY in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac  # the calls run elsewhere
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$SCRATCH/device"
parts=$(cd .carry/lm && ls -d p[0-9][0-9])
for part in $parts; do
    mkdir -p "$SCRATCH/device/.carry/lm" "$SCRATCH/out-$part"
    cp -r ".carry/lm/$part" "$SCRATCH/device/.carry/lm/"
    echo "== call carrying $part"
    (cd "$SCRATCH/device" && OUT="$SCRATCH/out-$part" STORE="$SCRATCH/store" PY="$PY" DEVICE=cpu \
        BATCH_TOKENS=1024 WARMUP=1 MINUTES=5 EXTRA="--fp32 --max-steps 2 --max-train-samples 64 --eval-batches 1" \
        /usr/bin/time -f "call took %e s, %M KB peak" bash "$ROOT/research/recipes/lm_gpu.sh")
done
last=$(echo "$parts" | tail -n 1)
ls -l "$SCRATCH/out-$last"
"$PY" -m research.lm_gpu assemble "$SCRATCH/out-$last" --out "$SCRATCH/model"
"$PY" -c "import sys; from rewrite import Restorer
r = Restorer.from_pretrained(sys.argv[1], backend='torch'); print(r.restore('Rubio mentioned the plan on Wednesday.').text)" \
    "$SCRATCH/model"
