# The README's commands. Each creates .venv and installs the package (editable) when needed.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
NEWEST ?= build/venv-newest
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: demo test test-newest lint docs bench chromium

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --editable ".[dev]"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/lightning-cv fit --config quickstart

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The serve page's test drives Debian's chromium (Playwright cannot download a browser here).
chromium:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

# pytest-xdist: one worker per CPU core, each taking the next test when it is free, each with
# one torch thread (two workers of two threads each on two cores spend much of it waiting)
test: lint chromium
	WANDB_MODE=offline OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n auto --dist worksteal \
		--durations=15

# The tests that pin Lightning's and jsonargparse's behaviour (-m upstream), and the entry
# point's tests, on the newest lightning, torch, torchvision and jsonargparse that pyproject.toml's
# ranges allow. The other dependencies are $(VENV)'s (a .pth line): only newer releases download.
# $(VENV)'s pip installs into it (--python), so no older pip or setuptools shadows $(VENV)'s.
test-newest: $(BIN)/.installed
	rm -rf $(NEWEST)
	$(BIN)/python -m venv --without-pip $(NEWEST)
	$(BIN)/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
		> "$$($(NEWEST)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/reused.pth"
	$(BIN)/python -m pip --python $(NEWEST)/bin/python install --quiet --upgrade \
		--no-build-isolation --editable . lightning torch torchvision jsonargparse
	$(BIN)/python -m pip --python $(NEWEST)/bin/python list \
		| grep -E "^(lightning|torch|torchvision|jsonargparse) "
	WANDB_MODE=offline OMP_NUM_THREADS=1 $(NEWEST)/bin/python -m pytest -n auto -m upstream \
		--ignore=tests/test_entry.py
	WANDB_MODE=offline OMP_NUM_THREADS=1 $(NEWEST)/bin/python -m pytest tests/test_entry.py

docs: $(BIN)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run_all.py
