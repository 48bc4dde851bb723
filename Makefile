# make test is the one command (see CONTRIBUTING.md): it
# installs the Debian packages that are missing (internal/testenv/install.sh,
# as root; a clear message otherwise), checks gofmt, go vet, staticcheck and
# govulncheck (offline data, internal/cmd/vulncheck), and runs every
# test with the race detector. The tests start their own throwaway PostgreSQL
# and OpenLDAP servers from Go (package internal/testenv); APPAUTH_TEST_STRICT=1
# makes a missing one a failure instead of a skip.
#
# Variables (on the command line or in the environment):
#   GOTESTFLAGS  extra go test flags, e.g. make test GOTESTFLAGS='-run TestX -v'
#   PKGS         packages, default ./...
#   FUZZTIME     time per fuzz target, default 30s
#   BENCHPEERSFLAGS  flags of make bench-peers, e.g. -quick (see BENCHMARKS.md)

export PATH := $(PATH):/usr/local/go/bin
PKGS ?= ./...
FUZZTIME ?= 30s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test bench bench-peers fuzz vet install

# The checks, then go test -race against real services, then the
# allocation tests without the race detector, which changes what allocates.
test: install vet
	APPAUTH_TEST_STRICT=1 go test -race -count=1 $(GOTESTFLAGS) $(PKGS)
	go test -count=1 -run 'Alloc' ./auth/ ./internal/token/

# Benchmarks, each with its baseline in the same run (see BENCHMARKS.md).
bench: install
	APPAUTH_TEST_STRICT=1 go test -run='^$$' -bench=. -benchmem $(GOTESTFLAGS) $(PKGS)

# davserver against Apache mod_dav, Radicale, hacdias/webdav and bare
# x/net/webdav on the same workload (internal/cmd/benchpeers, a few
# minutes; -quick for a short run). Not part of make test.
bench-peers: install
	go run ./internal/cmd/benchpeers $(BENCHPEERSFLAGS)

# Every Fuzz target in the tree, FUZZTIME each.
fuzz: install
	set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for name in $$(go test -list '^Fuzz' $$dir | grep '^Fuzz'); do \
			go test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $(GOTESTFLAGS) $$dir; \
		done; \
	done

# gofmt, go vet, staticcheck (zero findings) and known vulnerabilities.
vet:
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "gofmt -w needed:" $$files >&2; exit 1; fi
	go vet $(PKGS)
	go run $(STATICCHECK) $(PKGS)
	go run ./internal/cmd/vulncheck $(PKGS)

# The Debian packages behind the services, if missing.
install:
	bash internal/testenv/install.sh
