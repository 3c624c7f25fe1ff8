# The two commands every newcomer runs. Both install what they need themselves.
#   make demo                      the whole pipeline, locally, on the bundled samples
#   make demo FILES="a.wav b.mp3" JSON=1 MARGIN=1
#   make test                      every test, as CI runs it

CARGO ?= cargo
FILES ?=
JSON ?=
MARGIN ?= 0

VENV ?= .venv
PYTHON ?= python3
VENV_STAMP := $(VENV)/.installed-$(shell cat tools/moto/requirements.txt | cksum | cut -d' ' -f1)

.PHONY: demo test lint fmt venv

demo: venv
	@$(CARGO) run --quiet --locked -p devstack -- demo --margin $(MARGIN) $(if $(JSON),--json) $(FILES)

# The project's own Python environment: the pinned moto server. Re-installed when
# tools/moto/requirements.txt changes; nothing is installed outside $(VENV).
venv: $(VENV_STAMP)

$(VENV_STAMP): tools/moto/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/moto/requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

test: venv
	$(CARGO) test --workspace --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all
