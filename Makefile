# semprobe: the two set-up commands of the README, and their parts.
#   make demo   install into .venv, then run the main job on the embedded default (Fashion-MNIST + GloVe):
#               train, evaluate, CCA, similarity matrices, alpha curves, figures -> figures/demo/summary.md
#   make test   install into .venv (with the timm and robustbench extras), then run the test suite
#               (offline, a few minutes on 2 CPU cores)

PYTHON ?= python3
TEST_WORKERS ?= auto
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.semprobe-installed
DEMO   ?= figures/demo
DEMO_CACHE ?= demo-cache
FASHION_MNIST_SYSTEM_DIR := /usr/share/datasets/fashion-mnist

.PHONY: install data demo study test clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,timm]"
	# robustbench 1.1.1 pins timm==1.0.9, which would pull open_clip_torch back to 2.x (semprobe needs 3.x):
	# its model zoo runs with the newer timm, so it goes in without its pins, with what the zoo imports
	$(BIN)/python -m pip install --quiet --no-deps "robustbench==1.1.1" "gdown==5.1.0" "torchattacks==3.5.1"
	$(BIN)/python -m pip install --quiet geotorch torchdiffeq requests "setuptools<81" pandas jinja2 beautifulsoup4
	touch $(STAMP)

install: $(STAMP)

# Fashion-MNIST from Debian's package when it is missing and we may install it; otherwise
# semprobe looks in --data-dir / $$SEMPROBE_DATA and says where to put the files.
data:
	@if [ ! -d $(FASHION_MNIST_SYSTEM_DIR) ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	fi

# trains six small CNNs (cached in $(DEMO_CACHE), reused while their settings stay the same), runs every
# analysis and writes figures/demo/ with summary.md; see figures/demo.py
demo: install data
	$(BIN)/python figures/demo.py --out $(DEMO) --cache $(DEMO_CACHE)

# the well-trained Fashion-MNIST zoo of figures/study/, its analyses and REPORT.md (many hours on 2 CPU cores;
# resumable: run it again after a stop)
study: install data
	$(BIN)/python figures/study.py all
	$(BIN)/python figures/study_report.py

# two workers (pytest-xdist; one per core on the 2-core machines CI uses), each torch on one thread
test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

clean-venv:
	rm -rf $(VENV)
