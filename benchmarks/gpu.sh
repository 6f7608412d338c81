#!/usr/bin/env bash
# GPU figures for docs/benchmarks.md: the same benchmarks as on CPU, on CUDA.
#
#   bash benchmarks/gpu.sh [OUT_DIR]          # from anywhere; ~10-20 min on one H100
#
# Measures, each in one run (JSON per step under OUT_DIR, default benchmarks/results/gpu-<UTC time>):
#   1. embedded SmolLM2-135M, bf16:   naive loop vs library vs bare forward, 100 passages x ~150 tokens
#   2. embedded SmolLM2-135M, 4-bit:  the same with bitsandbytes NF4 (bf16 compute)
#   3. randomly initialised Llama with Llama-3-8B's shape (no weights needed), bf16, 100 passages x
#      200 tokens: seconds per query and model-FLOPs utilisation, for batch sizes 16, 32 and 100
#   4. cross-caller batching (16 concurrent queries) and peak memory, on the GPU
# Needs: an NVIDIA GPU, a CUDA build of torch, this package installed with its extras
# (pip install -e '.[quantization,langchain,llamaindex]'), and the shared data directory
# ($RANKRAG_DATA_DIR, default ../shared/data beside the checkout). Nothing is downloaded.
# A failing step is reported and the others still run; the exit status says whether all passed.
set -uo pipefail

cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/results/gpu-$(date -u +%Y%m%d-%H%M)}"
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTHON="${PYTHON:-python}"

"$PYTHON" - <<'EOF' || { echo "gpu.sh: no CUDA GPU visible to torch; nothing measured" >&2; exit 2; }
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device")
print(f"GPU: {torch.cuda.get_device_name(0)}  torch {torch.__version__}  CUDA {torch.version.cuda}")
EOF
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee "$OUT/nvidia-smi.csv"

failed=()
step() {  # step NAME COMMAND...: run, keep the log, remember failures
  local name="$1"; shift
  echo "=== $name: $*" | tee -a "$OUT/log.txt"
  if "$@" 2> >(tee -a "$OUT/$name.stderr.txt" >&2); then
    echo "=== $name: ok" | tee -a "$OUT/log.txt"
  else
    echo "=== $name: FAILED (exit $?)" | tee -a "$OUT/log.txt"
    failed+=("$name")
  fi
}

step smollm2_bf16 "$PYTHON" benchmarks/rerank_throughput.py --device cuda --dtype bfloat16 --rounds 5 \
  --json "$OUT/smollm2_bf16.json"
step smollm2_4bit "$PYTHON" benchmarks/rerank_throughput.py --device cuda --dtype bfloat16 --quantization 4bit \
  --rounds 5 --json "$OUT/smollm2_4bit.json"
for bs in 16 32 100; do
  # naive (one passage per forward) only once: it does not depend on the batch size
  skip=(--skip naive); [ "$bs" = 16 ] && skip=()
  step "llama8b_bf16_bs$bs" "$PYTHON" benchmarks/rerank_throughput.py --device cuda --dtype bfloat16 \
    --random-llama 8b --passage-tokens 200 --batch-size "$bs" --rounds 5 ${skip[@]+"${skip[@]}"} \
    --json "$OUT/llama8b_bf16_bs$bs.json"
done
step concurrency "$PYTHON" benchmarks/concurrency.py --device cuda --dtype bfloat16 --json "$OUT/concurrency.json"
step memory "$PYTHON" benchmarks/memory.py --json "$OUT/memory.json"

"$PYTHON" benchmarks/summarize.py "$OUT"/*.json | tee "$OUT/summary.md"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "gpu.sh: failed steps: ${failed[*]} (logs in $OUT)" >&2
  exit 1
fi
echo "gpu.sh: all steps passed; results in $OUT (paste summary.md into docs/benchmarks.md)"
