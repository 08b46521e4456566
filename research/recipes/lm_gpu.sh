#!/usr/bin/env bash
# Fine-tune the language-model restorer (`--arch lm`) on a borrowed GPU; README "On a borrowed GPU"
# gives the calls. Here, `python -m research.lm_gpu prepare` cut the payload (base blocks, tokenised
# pairs) into .carry/lm/p01..pNN; each `device` call runs this same script carrying one part:
#   run(command="bash research/recipes/lm_gpu.sh", carry=[".carry/lm/p01"], timeout_s=120)  ... pNN
# The parts wait in $STORE (outside the working tree, kept while the machine stays warm, 30 s
# after a call); the call that brings the last one unpacks them, trains for MINUTES (bf16 autocast),
# and leaves the exported model in $OUT as parts (`python -m research.lm_gpu assemble` rebuilds it).
# A further call on the still-warm machine, carrying nothing new, resumes from the checkpoint in
# $STORE/run and trains MINUTES more. Knobs (environment): MINUTES (7), DEVICE (cuda),
# BATCH_TOKENS (65536), LR (5e-4), WARMUP (100), FREEZE (22), EXTRA (more `python -m training.train`
# flags), STORE (/var/tmp/unspin-lm). Needs only python3 with torch, transformers, safetensors,
# numpy and click (all on the device's image).
set -u -o pipefail
export PYTHONUNBUFFERED=1 PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
OUT=${OUT:?OUT must name the folder whose files come back}
STORE=${STORE:-/var/tmp/unspin-lm} MINUTES=${MINUTES:-7} DEVICE=${DEVICE:-cuda} FREEZE=${FREEZE:-22}
BATCH_TOKENS=${BATCH_TOKENS:-65536} LR=${LR:-5e-4} WARMUP=${WARMUP:-100} EXTRA=${EXTRA:-}
PY=${PY:-python3}
mkdir -p "$STORE"
"$PY" -m research.lm_gpu receive --parts .carry/lm --store "$STORE"
case $? in 0) ;; 3) exit 0 ;; *) exit 1 ;; esac
export UNSPIN_CACHE="$STORE/cache"
init=()
[ -d "$STORE/init" ] && init=(--init "$STORE/init")
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
# shellcheck disable=SC2086  # EXTRA is a list of flags
"$PY" -m training.train --dataset "$STORE/data" --out "$STORE/run" --arch lm "${init[@]}" --device "$DEVICE" \
    --freeze-layers "$FREEZE" --batch-tokens "$BATCH_TOKENS" --lr "$LR" --warmup-steps "$WARMUP" \
    --max-steps 100000000 --max-minutes "$MINUTES" --eval-every 500 --eval-batches 10 --save-every 500 \
    --log-every 50 --seed 13 $EXTRA 2>&1 | tee -a "$STORE/train.log"
trained=$?
"$PY" -m research.lm_gpu send --model "$STORE/run/model" --out "$OUT" --log "$STORE/train.log" || exit 1
exit "$trained"
