# torchgrade: each target does its own set-up on a fresh machine.
#   make demo       install, grade nt_xent's example submissions (a minute), say what to open
#   make demo-full  install, grade every assignment's examples (6 to 18 minutes on 2 cores)
#   make test       install, plus what only the tests need (Chromium, docker.io), lint, test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
JOBS   ?= 2

.PHONY: install test-deps demo demo-full demo-serve test lint bench clean gpu-check

install: $(STAMP)

# What grading needs: bubblewrap gives the student worker its namespaces (without it torchgrade
# still runs, with rlimits only, and says so in every report), and the venv.
$(STAMP): requirements.txt requirements-runner.txt pyproject.toml
	@command -v bwrap >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q bubblewrap; } || \
	  echo "warning: could not install bubblewrap; workers will run with rlimits only"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	@# jsonschema's optional IRI checker (pulled in by jupyter-events' extra) builds a grammar
	@# at import: 3-5 s of CPU in every process importing jsonschema (nbformat, each of Ray's
	@# agents, slow enough that a Ray node fails its 15 s agent start-up on a busy 2-core
	@# machine). jsonschema works without it; nothing here validates IRIs.
	$(BIN)/python -m pip uninstall -q -y rfc3987-syntax
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# What only lint and the tests need: ruff and pandas (requirements-test.txt), then Chromium
# and docker.io. Chromium renders the class summary page in its test (headless);
# without it that one test is skipped and says why. docker.io is the engine the Docker
# executor's tests start (their own dockerd); without it they skip and say why.
TEST_STAMP := $(VENV)/.test-installed-stamp
$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-test.txt
	@touch $(TEST_STAMP)

# debootstrap builds the self-contained runner image the Docker executor's tests grade with.
test-deps: $(TEST_STAMP)
	@command -v debootstrap >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap; } || \
	  echo "warning: could not install debootstrap; the self-contained image's tests will skip"
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "warning: could not install chromium; the summary page's browser test will skip"
	@command -v dockerd >/dev/null 2>&1 || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io; } || \
	  echo "warning: could not install docker.io; the Docker executor's tests will skip"

# A first look: one assignment's example submissions graded in full (every check, training
# included) into demo-reports/<assignment>/, the class table, then what to open.
DEMO ?= nt_xent
demo: install
	@HF_HUB_OFFLINE=1 $(BIN)/torchgrade grade $(DEMO) examples/$(DEMO) \
	  --out demo-reports/$(DEMO) --jobs $(JOBS)
	@one=$$(awk -F, 'NR > 1 && $$3 > 0 && $$3 < $$4 { print $$1; exit }' \
	  demo-reports/$(DEMO)/$(DEMO).csv); \
	echo; echo "Open in a browser:"; \
	echo "  the class:     file://$(CURDIR)/demo-reports/$(DEMO)/$(DEMO)-summary.html"; \
	echo "  one student:   file://$(CURDIR)/demo-reports/$(DEMO)/$$one/$(DEMO).html"; \
	echo "  or serve them: make demo-serve  (http://127.0.0.1:8000/$(DEMO)/$(DEMO)-summary.html)"; \
	echo "All seven assignments' examples (68 submissions, 6 to 18 minutes): make demo-full"

# Every assignment with examples, graded into demo-reports/<assignment>/.
DEMO_ALL ?= nt_xent vit_attention mae_masking ddpm_sampler wgan_gp video_action clip_search
demo-full: install
	@for a in $(DEMO_ALL); do \
	  HF_HUB_OFFLINE=1 $(BIN)/torchgrade grade $$a examples/$$a --out demo-reports/$$a \
	    --jobs $(JOBS) || exit $$?; \
	  echo "$$a: HTML reports demo-reports/$$a/<student>/$$a.html, class summary" \
	    "demo-reports/$$a/$$a-summary.html, CSV demo-reports/$$a/$$a.csv"; echo; \
	done

# The demo's pages on this machine only (Ctrl-C stops it).
demo-serve: install
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory demo-reports 8000

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests graders solutions assignments benchmarks student_template ci notebooks

test: lint test-deps
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q --durations=20

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/run_all.py

# On a machine with CUDA, one command with no network, apt or bubblewrap (benchmarks/
# gpu_check.md): installs torchgrade from this tree (--no-deps, plus any missing wheel of
# benchmarks/wheels/) into $(GPU_SITE) for $(GPU_PYTHON), then grades each assignment's
# reference, stub and wrong example under --profile gpu into benchmarks/gpu-<date>.json.
# Without CUDA it says so and fails. GPU_CHECK_ARGS=--smoke: the same on the CPU.
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
GPU_SITE   ?= /tmp/torchgrade-gpu-check
gpu-check:
	@$(GPU_PYTHON) benchmarks/gpu_check_setup.py --site $(GPU_SITE)
	HF_HUB_OFFLINE=1 PYTHONPATH=$(GPU_SITE) $(GPU_PYTHON) -m torchgrade gpu-check $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) demo-reports build src/*.egg-info
