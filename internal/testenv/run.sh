#!/usr/bin/env bash
# run.sh: the test harness behind `make test`, `make bench`, `make fuzz` and
# `make vet` (see the Makefile and the Testing section of DESIGN.md).
#
# Usage: internal/testenv/run.sh MODE [ARGS...]
#
#   test   gofmt check, go vet, then `go test -race -count=1` against throwaway
#          services (the default; `make test`, `.ci/run`)
#   bench  `go test -run='^$' -bench=. -benchmem` against throwaway services
#   fuzz   every Fuzz target in the tree for $FUZZTIME each (default 30s)
#   vet    gofmt check and go vet only, no services
#   exec   start the services, export their variables, run ARGS (for example
#          `internal/testenv/run.sh exec go test -v ./backends/sqlstore`)
#
# Environment read:
#   GOTESTFLAGS  extra flags for go test (split on spaces), e.g. '-run TestX -v'
#   PKGS         packages to test (split on spaces), default ./...
#   FUZZTIME     duration of each fuzz target, default 30s
#
# Environment given to the tests (read by package internal/testenv):
#   APPAUTH_TEST_STRICT=1            a test whose service is missing fails
#   APPAUTH_TEST_POSTGRES            postgres://appauth@127.0.0.1:PORT/postgres?sslmode=disable
#                                    (superuser, trust auth, loopback only)
#   APPAUTH_TEST_POSTGRES_CTL        script: `start`, `stop` or `status` for
#                                    exactly this throwaway server
#   APPAUTH_TEST_POSTGRES_LOCK       lock file that serializes outages (stop/start)
#                                    against other tests, across test binaries
#
# What is missing is installed (Debian/Ubuntu packages, when run as root) or
# named in a clear message. Services run from a temporary directory on free
# loopback ports and are stopped, and the directory removed, on exit, failure
# or Ctrl-C. Nothing listens on anything but 127.0.0.1.
#
# Adding a service (OpenLDAP slapd, Chromium, ...): write ensure_X (find or
# install it), start_X (start it in "$WORKDIR/X", export APPAUTH_TEST_X...,
# register stop_X with register_stop), then call them from ensure_services
# and start_services below.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

log() { printf '==> %s\n' "$*" >&2 || true; }
die() {
	printf 'run.sh: error: %s\n' "$*" >&2
	exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# ---------------------------------------------------------------------------
# Installing what is missing

APT_UPDATED=0
POLICY_RC_CREATED=0

# apt_install PACKAGE... installs Debian/Ubuntu packages when we are root and
# apt-get exists. It returns 1 (installing nothing) otherwise, so the caller
# can print what to install.
apt_install() {
	is_root && command -v apt-get >/dev/null 2>&1 || return 1
	if [ "$APT_UPDATED" = 0 ]; then
		log "apt-get update"
		apt-get update -q
		APT_UPDATED=1
	fi
	# Keep packages from starting system services (such as the distribution's
	# own PostgreSQL cluster) during the install: we never use them.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		POLICY_RC_CREATED=1
	fi
	log "apt-get install $*"
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" || rc=$?
	remove_policy_rc
	return "$rc"
}

remove_policy_rc() {
	if [ "$POLICY_RC_CREATED" = 1 ]; then
		rm -f /usr/sbin/policy-rc.d
		POLICY_RC_CREATED=0
	fi
}

# missing WHAT PACKAGE: the message for a tool we could not install.
missing() {
	local what=$1 pkg=$2
	if command -v apt-get >/dev/null 2>&1; then
		die "$what not found. Install the Debian/Ubuntu package '$pkg' (sudo apt-get install $pkg), or run this as root to have it installed; then run 'make test' again."
	fi
	die "$what not found. Install '$pkg' with your system's package manager (and put its programs on PATH); then run 'make test' again."
}

ensure_go() {
	if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
		export PATH="/usr/local/go/bin:$PATH"
	fi
	command -v go >/dev/null 2>&1 ||
		die "go not found. Install Go (the version named in go.mod) from https://go.dev/dl/ and put it on PATH; then run 'make test' again."
}

# ensure_cc: the race detector needs cgo, and cgo needs a C compiler.
ensure_cc() {
	local cc
	cc=$(go env CC)
	command -v "${cc%% *}" >/dev/null 2>&1 && return 0
	apt_install gcc libc6-dev || missing "A C compiler ($cc, needed by go test -race)" gcc
	export CGO_ENABLED=1
}

# ---------------------------------------------------------------------------
# Temporary directory and the user that runs servers

WORKDIR=""
STOP_FUNCS=()

register_stop() { STOP_FUNCS+=("$1"); }

cleanup() {
	local rc=$?
	# Keep cleaning up even if stderr is a pipe whose reader died with us.
	trap '' INT TERM PIPE
	set +e
	local i
	for ((i = ${#STOP_FUNCS[@]} - 1; i >= 0; i--)); do
		"${STOP_FUNCS[i]}" || true
	done
	remove_policy_rc
	if [ -n "$WORKDIR" ] && [ -d "$WORKDIR" ]; then
		rm -rf "$WORKDIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

make_workdir() {
	[ -n "$WORKDIR" ] && return 0
	# As root the directory must be reachable by the unprivileged server user,
	# so do not follow a TMPDIR that may sit under /root. Socket paths must
	# stay short (about 100 bytes), another reason to prefer /tmp.
	local base=/tmp
	if ! is_root && [ -n "${TMPDIR:-}" ] && [ ${#TMPDIR} -le 40 ]; then
		base=$TMPDIR
	fi
	WORKDIR=$(mktemp -d "$base/appauth-test.XXXXXX")
	chmod 711 "$WORKDIR"
	mkdir "$WORKDIR/bin"
}

# Servers such as PostgreSQL refuse to run as root. As root we run them as
# SERVICE_USER: `postgres` if that system user exists, else `appauth-test`
# (created here). Otherwise they run as ourselves (SERVICE_USER empty).
SERVICE_USER=""

pick_service_user() {
	is_root || return 0
	if id -u postgres >/dev/null 2>&1; then
		SERVICE_USER=postgres
		return 0
	fi
	if ! id -u appauth-test >/dev/null 2>&1; then
		command -v useradd >/dev/null 2>&1 || die "running as root and no user 'postgres' exists; create an unprivileged user 'appauth-test' (useradd is missing), or run as a normal user"
		log "creating system user appauth-test to run the test servers"
		useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin appauth-test
	fi
	SERVICE_USER=appauth-test
}

# as_service_user CMD...: the prefix that runs CMD as SERVICE_USER, written
# as shell words so it can also go into generated scripts.
as_service_user_prefix() {
	if [ -z "$SERVICE_USER" ]; then
		return 0
	elif command -v runuser >/dev/null 2>&1; then
		printf 'runuser -u %q -- ' "$SERVICE_USER"
	elif command -v setpriv >/dev/null 2>&1; then
		printf 'setpriv --reuid=%q --regid=%q --init-groups -- ' "$SERVICE_USER" "$SERVICE_USER"
	else
		die "running as root, but neither runuser nor setpriv (util-linux) is installed to drop privileges"
	fi
}

# service_dir NAME: a directory for one service, owned by SERVICE_USER.
service_dir() {
	local dir="$WORKDIR/$1"
	mkdir -p "$dir"
	if [ -n "$SERVICE_USER" ]; then
		chown "$SERVICE_USER:" "$dir"
	fi
	printf '%s\n' "$dir"
}

free_port() {
	[ -x "$WORKDIR/bin/freeport" ] || go build -o "$WORKDIR/bin/freeport" ./internal/testenv/cmd/freeport
	"$WORKDIR/bin/freeport"
}

# ---------------------------------------------------------------------------
# PostgreSQL

PG_BINDIR=""
PG_DIR=""
PG_CTL_SCRIPT=""

# find_pg_bindir prints a directory that holds both initdb and pg_ctl: the
# one of initdb on PATH, else the newest /usr/lib/postgresql/*/bin (Debian,
# Ubuntu) or /usr/pgsql-*/bin (RPM).
find_pg_bindir() {
	local d
	if d=$(command -v initdb 2>/dev/null); then
		d=$(dirname "$(readlink -f "$d")")
		if [ -x "$d/pg_ctl" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	fi
	while IFS= read -r d; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	done < <(compgen -G '/usr/lib/postgresql/*/bin' '/usr/pgsql-*/bin' 2>/dev/null | sort -rV)
	return 1
}

ensure_postgres() {
	if PG_BINDIR=$(find_pg_bindir); then
		return 0
	fi
	log "PostgreSQL (initdb, pg_ctl) not found in PATH or /usr/lib/postgresql/*/bin"
	apt_install postgresql || missing "PostgreSQL (initdb and pg_ctl)" postgresql
	PG_BINDIR=$(find_pg_bindir) || die "installed the package 'postgresql', but still cannot find initdb and pg_ctl in PATH or /usr/lib/postgresql/*/bin"
}

start_postgres() {
	PG_DIR=$(service_dir postgres)
	local run data="$PG_DIR/data" pglog="$PG_DIR/postgres.log"
	run=$(as_service_user_prefix)
	register_stop stop_postgres

	log "PostgreSQL: initdb ($("$PG_BINDIR/postgres" --version 2>/dev/null || echo "$PG_BINDIR"))"
	if ! (cd "$PG_DIR" && eval "$run"'"$PG_BINDIR/initdb" -D "$data" -U appauth -A trust -E UTF8 --no-locale -N') >"$WORKDIR/initdb.log" 2>&1; then
		cat "$WORKDIR/initdb.log" >&2
		die "PostgreSQL initdb failed"
	fi
	# The settings live in their own file; the port is written per attempt.
	printf "\ninclude 'appauth-test.conf'\n" >>"$data/postgresql.conf"
	(cd "$PG_DIR" && eval "$run"'mkdir -m 700 "$PG_DIR/sock"')

	# The control script, for the harness and for tests (APPAUTH_TEST_POSTGRES_CTL).
	PG_CTL_SCRIPT="$WORKDIR/postgres-ctl"
	{
		printf '#!/usr/bin/env bash\n'
		printf '# Starts or stops the throwaway PostgreSQL of one internal/testenv/run.sh run.\n'
		printf '# Usage: %s start|stop|status\n' "$PG_CTL_SCRIPT"
		printf 'set -euo pipefail\n'
		printf 'cd %q\n' "$PG_DIR"
		printf 'pg() { %s%q "$@"; }\n' "$run" "$PG_BINDIR/pg_ctl"
		printf 'data=%q\nlog=%q\n' "$data" "$pglog"
		cat <<'EOF'
case "${1:-}" in
start)
	pg -D "$data" status >/dev/null 2>&1 && exit 0
	if ! pg -D "$data" -l "$log" -w -t 60 start >/dev/null; then
		echo "postgres-ctl: PostgreSQL failed to start; last lines of $log:" >&2
		tail -n 30 "$log" >&2 || true
		exit 1
	fi
	;;
stop)
	pg -D "$data" status >/dev/null 2>&1 || exit 0
	pg -D "$data" -m fast -w -t 30 stop >/dev/null ||
		pg -D "$data" -m immediate -w -t 30 stop >/dev/null
	;;
status)
	pg -D "$data" status
	;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
EOF
	} >"$PG_CTL_SCRIPT"
	chmod 755 "$PG_CTL_SCRIPT"

	local attempt port=""
	for attempt in 1 2 3; do
		port=$(free_port)
		cat >"$data/appauth-test.conf" <<EOF
# Written by internal/testenv/run.sh: a throwaway server for tests.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_DIR/sock'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
		log "PostgreSQL: starting on 127.0.0.1:$port (attempt $attempt)"
		if "$PG_CTL_SCRIPT" start; then
			break
		fi
		port=""
	done
	[ -n "$port" ] || die "PostgreSQL failed to start (see its log above)"

	# pg_ctl -w waited for the server; check the TCP listener the tests use.
	if [ -x "$PG_BINDIR/pg_isready" ]; then
		local i
		for ((i = 0; i < 60; i++)); do
			"$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -U appauth -d postgres -t 2 && break
			sleep 0.5
		done
		if ((i == 60)); then
			tail -n 30 "$pglog" >&2 || true
			die "PostgreSQL does not answer on 127.0.0.1:$port"
		fi
	fi

	: >"$WORKDIR/postgres.lock"
	chmod 666 "$WORKDIR/postgres.lock"
	export APPAUTH_TEST_POSTGRES="postgres://appauth@127.0.0.1:$port/postgres?sslmode=disable"
	export APPAUTH_TEST_POSTGRES_CTL="$PG_CTL_SCRIPT"
	export APPAUTH_TEST_POSTGRES_LOCK="$WORKDIR/postgres.lock"
	log "PostgreSQL: ready at $APPAUTH_TEST_POSTGRES"
}

stop_postgres() {
	[ -n "$PG_CTL_SCRIPT" ] && [ -x "$PG_CTL_SCRIPT" ] || return 0
	[ -f "$PG_DIR/data/postmaster.pid" ] || return 0
	log "PostgreSQL: stopping"
	"$PG_CTL_SCRIPT" stop || true
}

# ---------------------------------------------------------------------------
# OpenLDAP (slapd), Chromium: add ensure_slapd/start_slapd/stop_slapd here,
# in the same shape as the PostgreSQL functions, and call them below.

# ---------------------------------------------------------------------------
# Modes

ensure_services() {
	ensure_postgres
	# ensure_slapd
}

start_services() {
	make_workdir
	pick_service_user
	start_postgres
	# start_slapd
	export APPAUTH_TEST_STRICT=1
}

read -r -a GOTESTFLAGS_A <<<"${GOTESTFLAGS:-}"
read -r -a PKGS_A <<<"${PKGS:-./...}"

check_gofmt() {
	log "gofmt -l"
	local files
	files=$(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path './vendor/*' -print0 |
		xargs -0 -r gofmt -l)
	if [ -n "$files" ]; then
		printf 'run.sh: these files need gofmt -w:\n%s\n' "$files" >&2
		exit 1
	fi
}

run_vet() {
	log "go vet ${PKGS_A[*]}"
	go vet "${PKGS_A[@]}"
}

mode_vet() {
	ensure_go
	check_gofmt
	run_vet
}

mode_test() {
	ensure_go
	ensure_cc
	ensure_services
	check_gofmt
	run_vet
	start_services
	log "go test -race -count=1 ${GOTESTFLAGS_A[*]} ${PKGS_A[*]}"
	go test -race -count=1 "${GOTESTFLAGS_A[@]}" "${PKGS_A[@]}"
}

mode_bench() {
	ensure_go
	ensure_services
	start_services
	log "go test -run='^\$' -bench=. -benchmem ${GOTESTFLAGS_A[*]} ${PKGS_A[*]}"
	go test -run='^$' -bench=. -benchmem "${GOTESTFLAGS_A[@]}" "${PKGS_A[@]}"
}

mode_fuzz() {
	ensure_go
	ensure_services
	local fuzztime=${FUZZTIME:-30s} targets
	# Lines "DIR NAME" for every `func FuzzXxx(` in a _test.go file.
	targets=$(grep -rE --include='*_test.go' --exclude-dir=.git --exclude-dir=testdata --exclude-dir=vendor \
		-o '^func Fuzz[A-Za-z0-9_]*\(' . |
		sed -E 's#^(.*)/[^/]*:func (Fuzz[A-Za-z0-9_]*)\($#\1 \2#' | sort -u || true)
	if [ -z "$targets" ]; then
		log "no Fuzz targets found"
		return 0
	fi
	start_services
	local dir name
	while read -r dir name; do
		log "fuzz $dir $name for $fuzztime"
		go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "${GOTESTFLAGS_A[@]}" "$dir"
	done <<<"$targets"
}

mode_exec() {
	[ $# -gt 0 ] || die "usage: $0 exec COMMAND [ARGS...]"
	ensure_go
	ensure_services
	start_services
	log "exec: $*"
	"$@"
}

mode=${1:-test}
[ $# -gt 0 ] && shift
case "$mode" in
test | go-test) mode_test ;;
bench) mode_bench ;;
fuzz) mode_fuzz ;;
vet) mode_vet ;;
exec) mode_exec "$@" ;;
*) die "unknown mode '$mode' (want test, bench, fuzz, vet or exec)" ;;
esac
