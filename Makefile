# The README's two commands: `make demo` (main job on the offline embedded default) and `make test`.
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup setup-demo demo test test-all bench

setup:
	bash scripts/setup.sh

# The main job installs only what it needs (no browser, gradio or pytest): part of its 30-minute budget.
setup-demo:
	bash scripts/setup.sh demo

demo: setup-demo
	$(PY) -m racl.demo

test: setup
	$(PY) -m pytest -q -m "not slow" tests

# What CI runs: the default suite plus the slow marker.
test-all: setup
	$(PY) -m pytest -q tests

bench: setup
	$(PY) -m benchmarks.bench_inference
