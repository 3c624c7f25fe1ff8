# The two commands every newcomer runs. Both install what they need themselves.
#   make demo                      the whole pipeline, locally, on the bundled samples
#   make demo FILES="a.wav b.mp3" JSON=1 MARGIN=1
#   make test                      every test, as CI runs it (load tests at a small size)
#   make soak                      the long load runs at full size, with their figures
#                                  (README, Reliability); not part of CI
#   make up                        the local stack, running until Ctrl-C (or the end of its
#                                  input); prints READY, writes target/devstack/env
#   make backfill MANIFEST=m.csv [MODE=analyse|reanalyse|remerge] [SENSITIVITY='{...}']
#                                  an S3 Batch Operations job against `make up`

CARGO ?= cargo
FILES ?=
JSON ?=
MARGIN ?= 0
MANIFEST ?=
MODE ?= analyse
SENSITIVITY ?=

VENV ?= .venv
PYTHON ?= python3
VENV_STAMP := $(VENV)/.installed-$(shell cat tools/moto/requirements.txt | cksum | cut -d' ' -f1)

.PHONY: demo test soak lint fmt venv aws-venv up backfill

demo: venv
	@$(CARGO) run --quiet --locked -p devstack -- demo --margin $(MARGIN) $(if $(JSON),--json) $(FILES)

up: venv
	@$(CARGO) run --quiet --locked -p devstack -- up

backfill:
	@test -n "$(MANIFEST)" || { echo "usage: make backfill MANIFEST=path.csv [MODE=analyse|reanalyse|remerge] [SENSITIVITY='{...}']" >&2; exit 2; }
	@$(CARGO) run --quiet --locked -p devstack -- backfill --manifest "$(MANIFEST)" --mode "$(MODE)" $(if $(SENSITIVITY),--sensitivity '$(SENSITIVITY)')

# The AWS CLI (v1, from PyPI) in .venv-aws/, for the README's `make up` session:
# .venv-aws/bin/aws. Its own venv: it pins a botocore of its own.
AWS_VENV ?= .venv-aws
AWS_STAMP := $(AWS_VENV)/.installed-$(shell cat tools/awscli/requirements.txt | cksum | cut -d' ' -f1)

aws-venv: $(AWS_STAMP)

$(AWS_STAMP): tools/awscli/requirements.txt
	@test -x $(AWS_VENV)/bin/python || $(PYTHON) -m venv $(AWS_VENV)
	$(AWS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/awscli/requirements.txt
	@rm -f $(AWS_VENV)/.installed-*
	@touch $@

# The project's own Python environment: the pinned moto server. Re-installed when
# tools/moto/requirements.txt changes; nothing is installed outside $(VENV).
venv: $(VENV_STAMP)

$(VENV_STAMP): tools/moto/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/moto/requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

test: venv aws-venv test-template
	$(CARGO) test --workspace --locked

# The soak twins (#[ignore = "soak: ..."]) of the load tests, at the size the README's
# figures come from, one at a time so they do not share the machine, figures printed.
# COCHL_LOAD_UPLOADS=N, COCHL_LEVELING_UPLOADS=N and COCHL_FAULT_UPLOADS=N change the sizes
# of the load, admission-control and fault runs (in `make test` too).
soak: venv
	$(CARGO) test --workspace --locked --tests -- --ignored --nocapture --test-threads=1

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

# --- Deploying to AWS (docs/DEPLOY.md) -----------------------------------------------------
#   make tools-venv        .venv-tools/: pinned cargo-lambda and zig (tools/deploy/requirements.txt)
#   make lint-venv         .venv-lint/: pinned cfn-lint and SAM translator (tools/template/requirements.txt)
#   make sam-venv          .venv-sam/: the pinned SAM CLI, on its own (tools/deploy/sam-requirements.txt)
#   make build-lambda      cargo lambda build --release --arm64 -> target/lambda/<binary>/bootstrap
#   make package           one zip per function in target/lambda/, with its size
#   make test-template     cfn-lint, the template/code consistency check and its unit tests
#   make bench             every performance figure as a table (README, Performance); needs
#                          `make package` (arm64 zips, built first) and the host release binaries

TOOLS_VENV ?= .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed-$(shell cat tools/deploy/requirements.txt | cksum | cut -d' ' -f1)
LINT_VENV ?= .venv-lint
LINT_STAMP := $(LINT_VENV)/.installed-$(shell cat tools/template/requirements.txt | cksum | cut -d' ' -f1)
SAM_VENV ?= .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(shell cat tools/deploy/sam-requirements.txt | cksum | cut -d' ' -f1)
TOOLS_PATH := $(CURDIR)/$(TOOLS_VENV)/bin:$(PATH)
LAMBDA_TARGET := aarch64-unknown-linux-gnu
LAMBDA_BINARIES := cochl-submit cochl-on-result cochl-sweeper cochl-backfill cochl-query

.PHONY: tools-venv lint-venv sam-venv lint-template check-template test-template build-lambda package bench

tools-venv: $(TOOLS_STAMP)

$(TOOLS_STAMP): tools/deploy/requirements.txt
	@test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/deploy/requirements.txt
	@rm -f $(TOOLS_VENV)/.installed-*
	@touch $@

# What the template checks need, apart from the (large) build tools, so `make test` stays light.
lint-venv: $(LINT_STAMP)

$(LINT_STAMP): tools/template/requirements.txt
	@test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/template/requirements.txt
	@rm -f $(LINT_VENV)/.installed-*
	@touch $@

# SAM CLI in a venv of its own (it pins an older boto3): .venv-sam/bin/sam
sam-venv: $(SAM_STAMP)

$(SAM_STAMP): tools/deploy/sam-requirements.txt
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tools/deploy/sam-requirements.txt
	@rm -f $(SAM_VENV)/.installed-*
	@touch $@

# cfn-lint on the SAM template, then on its expansion (SAM's generated resources, circular
# dependencies): no errors and no warnings.
lint-template: lint-venv
	$(LINT_VENV)/bin/cfn-lint template.yaml
	$(LINT_VENV)/bin/python tools/template/expand_template.py template.yaml target/template/expanded.json
	$(LINT_VENV)/bin/cfn-lint target/template/expanded.json

check-template: lint-venv
	$(LINT_VENV)/bin/python tools/template/check_template.py template.yaml

test-template: lint-template check-template
	$(LINT_VENV)/bin/python -m unittest discover -s tools/template -p 'test_*.py'

# cargo-lambda cross-compiles with zig (from the tools venv: `python3 -m ziglang`), so no
# Docker and no cross linker are needed; only the Rust standard library for the target.
build-lambda: tools-venv
	rustup target add $(LAMBDA_TARGET)
	PATH="$(TOOLS_PATH)" $(CARGO) lambda build --release --arm64 --locked $(addprefix --bin ,$(LAMBDA_BINARIES))
	@for bin in $(LAMBDA_BINARIES); do ls -l target/lambda/$$bin/bootstrap; done

package: build-lambda
	PATH="$(TOOLS_PATH)" $(CARGO) lambda build --release --arm64 --locked --output-format zip $(addprefix --bin ,$(LAMBDA_BINARIES))
	@for bin in $(LAMBDA_BINARIES); do \
	  printf '%-16s %10d bytes zipped  target/lambda/%s/bootstrap.zip\n' $$bin $$(wc -c < target/lambda/$$bin/bootstrap.zip) $$bin; \
	done

# The performance figures (crates/bench). The functions are measured as they ship: the
# workspace's release profile (host target for the cold start, arm64 zips for the size);
# the bench itself is optimised without LTO (profile bench-tool) so it builds quickly.
#   make bench BENCH="postprocess writes"   only some sections
#   make bench BENCH_FLAGS="--files 5000"   cost model parameters (see cochl-bench help)
BENCH ?= all
BENCH_FLAGS ?=
bench: venv package
	$(CARGO) build --release --locked $(addprefix --bin ,$(LAMBDA_BINARIES))
	COCHL_BENCH_PROFILE=bench-tool $(CARGO) run --profile bench-tool --locked -p cochl-bench -- $(BENCH) $(BENCH_FLAGS)

# --- Mutation testing (tools/mutants/) ------------------------------------------------------
#   make mutants                      every mutant of crates/core (cochl-core): is each one
#                                     caught by the crate's tests? Slow (see the README); not CI
#   make mutants MUTANTS_ARGS="--file crates/core/src/job.rs"    only one file's mutants
#   make mutants MUTANTS_ARGS="--re 'close_segment'"             only the mutants matching
# cargo-mutants (pinned) is installed into .tools/ on first use. Each mutant is built and
# tested in cargo-mutants' own copy of the tree (never --in-place: the work tree may be in
# use), with its own target directory, so CARGO_TARGET_DIR is unset for it. Results and
# logs go to target/mutants/mutants.out/ (caught.txt, missed.txt, ...); the command fails
# when a mutant is missed.
MUTANTS_VERSION ?= 27.1.0
MUTANTS_ROOT ?= .tools
MUTANTS_JOBS ?= 1
MUTANTS_ARGS ?=
MUTANTS_BIN := $(MUTANTS_ROOT)/bin/cargo-mutants

# The handler crates, judged by their fast tests: the lib tests and tests/flow.rs, which run
# the handlers against in-memory doubles (their moto-backed tests need the venvs, which the
# copy leaves out). Slower per mutant than core: each relinks a test binary with the AWS SDK.
MUTANTS_HANDLERS ?= cochl-submit cochl-on-result cochl-sweeper

.PHONY: mutants mutants-handlers mutants-tool

mutants-tool:
	@$(MUTANTS_BIN) mutants --version 2>/dev/null | grep -qx 'cargo-mutants $(MUTANTS_VERSION)' || \
	  $(CARGO) install --locked --root $(MUTANTS_ROOT) cargo-mutants --version $(MUTANTS_VERSION)

mutants: mutants-tool
	@mkdir -p target
	env -u CARGO_TARGET_DIR nice -n 10 $(MUTANTS_BIN) mutants --config tools/mutants/mutants.toml \
	  --package cochl-core --output target/mutants --jobs $(MUTANTS_JOBS) $(MUTANTS_ARGS)

mutants-handlers: mutants-tool
	@mkdir -p target
	env -u CARGO_TARGET_DIR nice -n 10 $(MUTANTS_BIN) mutants --config tools/mutants/mutants.toml \
	  $(addprefix --package ,$(MUTANTS_HANDLERS)) --output target/mutants-handlers \
	  --jobs $(MUTANTS_JOBS) --cargo-test-arg=--lib --cargo-test-arg=--test=flow $(MUTANTS_ARGS)
