# The two commands every newcomer runs. Both install what they need themselves.
#   make demo                      run the pipeline on the bundled samples
#   make demo FILES="a.json b.json" JSON=1 MARGIN=1
#   make test                      every test, as CI runs it

CARGO ?= cargo
FILES ?=
JSON ?=
MARGIN ?= 0

.PHONY: demo test lint fmt

demo:
	@$(CARGO) run --quiet --locked -p devstack -- demo --margin $(MARGIN) $(if $(JSON),--json) $(FILES)

test:
	$(CARGO) test --workspace --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all
