# The logic lives in internal/testenv/run.sh; see the Testing section of
# DESIGN.md. Variables (on the command line or in the environment):
#   GOTESTFLAGS  extra go test flags, e.g. make test GOTESTFLAGS='-run TestX -v'
#   PKGS         packages, default ./...
#   FUZZTIME     time per fuzz target, default 30s

FUZZTIME ?= 30s
export GOTESTFLAGS PKGS FUZZTIME

RUN := bash internal/testenv/run.sh

.PHONY: test bench fuzz vet

# gofmt, go vet, then go test -race against throwaway PostgreSQL (installed
# if missing, when root on Debian/Ubuntu).
test:
	$(RUN) test

# Benchmarks against the same throwaway services.
bench:
	$(RUN) bench

# Every Fuzz target in the tree, FUZZTIME each.
fuzz:
	$(RUN) fuzz

# gofmt check and go vet only.
vet:
	$(RUN) vet
