# torchgrade: two commands do all the set-up on a fresh machine.
#   make demo   install everything, grade the bundled example submissions into demo-reports/
#   make test   install everything, lint, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
JOBS   ?= 2

.PHONY: install demo test lint bench clean

install: $(STAMP)

# bubblewrap gives the student worker its namespaces; without it torchgrade still runs, with
# rlimits only, and says so in every report. Chromium renders the class summary page in its
# test (headless); without it that one test is skipped and says why.
$(STAMP): requirements.txt pyproject.toml
	@command -v bwrap >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q bubblewrap; } || \
	  echo "warning: could not install bubblewrap; workers will run with rlimits only"
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "warning: could not install chromium; the summary page's browser test will skip"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/torchgrade grade nt_xent examples/nt_xent --out demo-reports --jobs $(JOBS)
	@echo "HTML reports: demo-reports/<student>/nt_xent.html   class CSV: demo-reports/nt_xent.csv"
	@echo "class summary: demo-reports/nt_xent-summary.html"

lint: install
	$(BIN)/ruff check src tests graders solutions assignments benchmarks

test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo-reports build src/*.egg-info
