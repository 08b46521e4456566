#!/usr/bin/env bash
# How the shipped default (and the shallow-decoder comparison) were trained: two runs side by side
# on one GPU, same data, same wall-clock budget. Usage (repo root):
#   DATA=data/full TOK=runs/tokenizer MINUTES=7 bash research/recipes/gpu_train.sh
# DATA must hold manifest.json and the tokenised splits (tokens-*/train.npz, validation.npz) that
# `python -m training.train --prepare-only true` writes; the training machine needs only torch, transformers,
# sentencepiece, tokenizers, numpy and click.
set -u
export PYTHONUNBUFFERED=1
DATA=${DATA:?set DATA} TOK=${TOK:?set TOK} MINUTES=${MINUTES:-7} RUNS=${RUNS:-runs}
mkdir -p "$RUNS"
common=(--dataset "$DATA" --tokenizer "$TOK" --device cuda --batch-tokens 65536 --lr 1.5e-3
        --warmup-steps 600 --max-steps 1000000 --max-minutes "$MINUTES" --eval-every 1000
        --save-every 1000000 --log-every 200 --eval-batches 20 --seed 13)
python3 -m training.train "${common[@]}" --out "$RUNS/default" --preset default > "$RUNS/default.log" 2>&1 &
python3 -m training.train "${common[@]}" --out "$RUNS/shallow" --preset shallow > "$RUNS/shallow.log" 2>&1 &
wait
tail -n 3 "$RUNS/default.log" "$RUNS/shallow.log"
