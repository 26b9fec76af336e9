#!/usr/bin/env bash
# GPU checks, one script (<= 5 min on one H100/H200):  bash tests/gpu/run_gpu_checks.sh
#   1. tests/gpu: the vLLM sampler against the HF model, weight pushes, train + evaluate on vLLM
#   2. the Ray executor on the GPU machine (each cell asks Ray for one GPU there)
# Needs `pip install -e '.[gpu,dev]'` (vLLM, Ray) done beforehand: the GPU machines are offline.
# Without CUDA it says so and exits 0; a failing check exits non-zero. Logs go to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/../.."
LOG_DIR="${OUT:-/tmp}"
if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA GPU visible: nothing to check"; exit 0
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python -c "import vllm; print('vllm', vllm.__version__)" || { echo "vLLM is not installed: pip install -e '.[gpu]'"; exit 1; }
status=0
timeout 240 pytest tests/gpu -q -rs -p no:cacheprovider 2>&1 | tee "$LOG_DIR/gpu_vllm.log" || status=1
timeout 120 pytest tests/test_ray_executor.py -q -rs -p no:cacheprovider 2>&1 | tee "$LOG_DIR/gpu_ray.log" || status=1
echo "gpu checks: $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
