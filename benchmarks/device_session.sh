#!/usr/bin/env bash
# One prepared call on a lent GPU machine (no network): the CUDA tests (FSDP on 0.0.20 too), the real-audio GPU
# recipe (3 seeds trained side by side on the one GPU, then scored on the CPU table's test
# clips) and the paper-scale benchmark, in about 9 minutes. Every stage writes its log
# under $OUT as it finishes, so a stage that fails or runs out of time loses only itself.
#
# Here, beforehand (after the README's setup and experiments/real_audio.py's data):
#   bash ../shared/device/make_wheels.sh .venv-current/bin/python      # .whl/, ~30 MB
#   .venv/bin/python experiments/real_audio_bundle.py pack              # data/real_bundle/, 30 MiB
# Then a device `run` with carry [".whl", "data/real_bundle"] and timeout_s ~ 580:
#   bash benchmarks/device_session.sh
# Locally, as a smoke test of the script itself (CPU, minutes):
#   SMOKE=1 OUT=/tmp/device_smoke RUNS=/tmp/device_runs PY=.venv/bin/python \
#     MODEL_CONFIG=model_configs/saga_real_cpu_config.json BATCH=2 WORKERS=1 PRECISION=32 \
#     TRAIN_TIME=00:00:00:20 DEMO_EVERY=0 EVAL_ARGS="--test-clips 1 --steps 2" bash benchmarks/device_session.sh
set -u
OUT=${OUT:-runs/device}
TRAIN_TIME=${TRAIN_TIME:-00:00:04:00}
MODEL_CONFIG=${MODEL_CONFIG:-model_configs/saga_real_gpu_config.json}
BATCH=${BATCH:-32}
WORKERS=${WORKERS:-4}
PRECISION=${PRECISION:-bf16-mixed}
RUNS=${RUNS:-runs/real_audio_gpu}
PY=${PY:-python3}
mkdir -p "$OUT"
log() { echo "[$(date +%T) +${SECONDS}s] $*"; }

if [ -d .whl ] && [ -z "${SMOKE:-}" ]; then
  rm -rf /tmp/site  # a warm machine keeps the last call's packages: start clean
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >/dev/null || { log "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1 WANDB_MODE=offline
log "stack"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
"$PY" -c "import torch, torchaudio, pytorch_lightning, transformers, stable_audio_tools, importlib.metadata as md; \
print('torch', torch.__version__, 'cuda', torch.version.cuda, '| torchaudio', torchaudio.__version__, \
'| lightning', pytorch_lightning.__version__, '| transformers', transformers.__version__, \
'| stable-audio-tools', md.version('stable-audio-tools'))"

log "data: unpack the bundle"
"$PY" experiments/real_audio_bundle.py unpack --bundle data/real_bundle --out data/real_gpu 2>&1 | tail -1
"$PY" - <<'PY'
import sys; sys.path.insert(0, "experiments")
from pathlib import Path
import real_audio  # the test and demo subsets once, before the seeds start side by side
real_audio.test_subset(Path("data/real_gpu/test"), Path("data/real_gpu/test_eval"), 32)
real_audio.test_subset(Path("data/real_gpu/val"), Path("data/real_gpu/val_demo"), 2)
PY

COMMON=(--prepared --data data/real_gpu --model-config "$MODEL_CONFIG" --batch-size "$BATCH" --precision "$PRECISION"
        --num-workers "$WORKERS" --demo-every "${DEMO_EVERY:-200}" --out "$RUNS"
        --title "Real recordings: speech and music, GPU recipe")
log "real audio: training seeds 0 1 2 side by side for $TRAIN_TIME each"
for seed in 0 1 2; do
  "$PY" experiments/real_audio.py "${COMMON[@]}" --seeds $seed --max-time "$TRAIN_TIME" --train-only \
    > "$OUT/train_seed$seed.log" 2>&1 &
done

log "cuda tests (while the seeds train)"
if [ -z "${SMOKE:-}" ]; then
  timeout 300 "$PY" -m pytest -m cuda tests/test_devices.py -q -p no:cacheprovider 2>&1 | tail -25 \
    | tee "$OUT/cuda_tests.log"
fi

log "FSDP at world size 1 (stable-audio-tools 0.0.20's strategy, pre-wrap callback and FSDP-aware EMA)"
if [ -z "${SMOKE:-}" ] && ls .whl/sat020/*.whl >/dev/null 2>&1; then
  rm -rf /tmp/site020  # 0.0.20 is pure Python; its Requires-Python (<3.11) is about its pins, not its code
  "$PY" -m pip install -q --no-index --no-deps --ignore-requires-python --target /tmp/site020 .whl/sat020/*.whl \
    >/dev/null && PYTHONPATH=/tmp/site020:${PYTHONPATH:-$PWD} timeout 240 "$PY" -m pytest -m cuda \
    tests/training/test_ddp.py -q -p no:cacheprovider 2>&1 | tail -15 | tee "$OUT/fsdp.log"
  # paper-scale memory per GPU at batch 8: DDP against FSDP, both at world size 1
  PYTHONPATH=/tmp/site020:${PYTHONPATH:-$PWD} timeout 240 "$PY" benchmarks/paper_scale.py --train-steps 3 \
    --precisions bf16-mixed --compare-precision none --strategies ddp fsdp --upsample-dtypes \
    2>&1 | grep -v Warning | tee -a "$OUT/fsdp.log"
fi
wait
log "training done"; tail -n 4 "$OUT"/train_seed*.log

log "real audio: scoring the 3 seeds on the test split"
timeout 240 "$PY" experiments/real_audio.py "${COMMON[@]}" --seeds 0 1 2 --skip-training --eval-name _test \
  ${EVAL_ARGS:-} > "$OUT/eval.log" 2>&1
tail -n 45 "$OUT/eval.log" | grep -v "^$" | head -40
mkdir -p "$OUT/real_audio_gpu"
(cd "$RUNS" && find . \( -name "*.md" -o -name "*.json" -o -name "*.csv" -o -name "*.png" \) -not -path "./inputs/*" \
   -not -name "model.json" -print0 | xargs -0 -I{} cp --parents {} "$OUT/real_audio_gpu/")
(cd "$RUNS" && find . -path "*examples_test*" -name "*.wav" -print0 | xargs -0 -I{} cp --parents {} "$OUT/real_audio_gpu/") 2>/dev/null

if [ -z "${SMOKE:-}" ]; then
  log "paper-scale benchmark"
  timeout "${BENCH_TIMEOUT:-170}" "$PY" benchmarks/paper_scale.py ${BENCH_ARGS:---train-steps 3 --upsample-seconds 30 \
    --window-batches 1 8} 2>&1 | grep -v Warning | tee "$OUT/paper_scale.log"
fi
log "done"
