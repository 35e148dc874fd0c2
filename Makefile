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
# test (headless); without it that one test is skipped and says why. docker.io is the engine
# the Docker executor's tests start (their own dockerd); without it they skip and say why.
$(STAMP): requirements.txt pyproject.toml
	@command -v bwrap >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q bubblewrap; } || \
	  echo "warning: could not install bubblewrap; workers will run with rlimits only"
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "warning: could not install chromium; the summary page's browser test will skip"
	@command -v dockerd >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io; } || \
	  echo "warning: could not install docker.io; the Docker executor's tests will skip"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	@# jsonschema's optional IRI checker (pulled in by jupyter-events' extra) builds a grammar
	@# at import: 3-5 s of CPU in every process importing jsonschema (nbformat, each of Ray's
	@# agents, slow enough that a Ray node fails its 15 s agent start-up on a busy 2-core
	@# machine). jsonschema works without it; nothing here validates IRIs.
	$(BIN)/python -m pip uninstall -q -y rfc3987-syntax
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# Every assignment with examples is graded into demo-reports/<assignment>/ (DEMO=nt_xent for one).
DEMO ?= nt_xent vit_attention mae_masking ddpm_sampler wgan_gp video_action clip_search
demo: install
	@for a in $(DEMO); do \
	  HF_HUB_OFFLINE=1 $(BIN)/torchgrade grade $$a examples/$$a --out demo-reports/$$a \
	    --jobs $(JOBS) || exit $$?; \
	  echo "$$a: HTML reports demo-reports/$$a/<student>/$$a.html, class summary" \
	    "demo-reports/$$a/$$a-summary.html, CSV demo-reports/$$a/$$a.csv"; echo; \
	done

lint: install
	$(BIN)/ruff check src tests graders solutions assignments benchmarks student_template ci notebooks

test: lint
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=20

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo-reports build src/*.egg-info
