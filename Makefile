# e-Defter Yedekleme. Everything runs from the project's own venv.
SHELL := /bin/bash
PY_SYS ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)

.PHONY: setup test lint run demo bench clean

$(STAMP): requirements.txt constraints.txt
	test -x $(PY) || $(PY_SYS) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip==26.3"
	$(PY) -m pip install -q -r requirements.txt -c constraints.txt
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .

run: setup
	$(PY) -m include.pipeline.demo run

demo: setup
	$(PY) -m include.pipeline.demo demo

bench: setup
	$(PY) -m bench

clean:
	rm -rf var airflow_home .pytest_cache
