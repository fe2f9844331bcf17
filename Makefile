# Two commands for a fresh machine with python3 and the package registries:
#   make demo   synthetic data -> train -> evaluate -> a poked video
#   make test   the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
WORKDIR ?= runs/synthetic
INSTALLED := $(VENV)/.installed

.PHONY: demo test install data train evaluate sample serve bench lint clean chromium

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(INSTALLED)

data: $(INSTALLED)
	$(BIN)/python -m datasets.articulated_pokes.build --data_dir $(DATA_DIR)

train: data
	$(BIN)/python launch.py --config configs/synthetic.py \
	  --workdir $(WORKDIR) --config.data.data_dir=$(DATA_DIR)

evaluate: $(INSTALLED)
	$(BIN)/python -m ii2v_jax.evaluate --workdir $(WORKDIR)

sample: $(INSTALLED)
	$(BIN)/python -m ii2v_jax.sample --workdir $(WORKDIR) --poke 50,120,-30,-30

serve: $(INSTALLED)
	$(BIN)/python -m ii2v_jax.serve --workdir $(WORKDIR)

demo: train evaluate sample
	@echo
	@echo "dataset:     $(DATA_DIR)/articulated_pokes/64"
	@echo "checkpoints: $(WORKDIR)/checkpoints"
	@echo "tensorboard: $(BIN)/tensorboard --logdir $(WORKDIR)/tb (pip install tensorboard)"
	@echo "evaluation:  $(WORKDIR)/eval.json, $(WORKDIR)/eval.md, $(WORKDIR)/eval_curves.png"
	@echo "poked video: $(WORKDIR)/samples/ (mp4, gif, _strip.png)"

# The real-browser test drives Debian's chromium; installed when missing
# (needs root and apt; otherwise that test fails and says how).
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  (apt-get update && apt-get install -y chromium) || \
	  echo "could not install chromium: the browser test will fail"

test: $(INSTALLED) chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(INSTALLED)
	$(BIN)/python -m ii2v_jax.bench

lint: $(INSTALLED)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) runs bench_results
