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
#   APPAUTH_TEST_LDAP_URL            ldap://127.0.0.1:PORT of a throwaway slapd (StartTLS
#                                    available); APPAUTH_TEST_LDAPS_URL ldaps://...;
#                                    APPAUTH_TEST_LDAP_CA its CA; ..._BASE_DN, ..._BIND_DN
#                                    and ..._BIND_PASSWORD (read-only service account),
#                                    ..._ADMIN_DN and ..._ADMIN_PASSWORD (root DN)
#   APPAUTH_TEST_LDAP_CTL, _LOCK     as for PostgreSQL; APPAUTH_TEST_LDAP_LOG slapd's log
#   APPAUTH_TEST_CHROMIUM            path of the Chromium program for browser tests
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
# OpenLDAP (slapd)
#
# A throwaway slapd with its own cn=config (built with slapadd from an LDIF),
# an mdb database, the memberof and ppolicy overlays, ldap:// (StartTLS
# available) and ldaps:// on free loopback ports, a CA and server
# certificate for 127.0.0.1/localhost made here with openssl, and the
# fixture internal/testenv/testdata/slapd-fixture.ldif loaded through the
# server (so the overlays see it). Anonymous binds with a DN and no password
# are allowed (olcAllows: bind_anon_dn), so tests can show the library
# never sends one.

SLAPD_BIN=""
SLAPD_DIR=""
SLAPD_CTL_SCRIPT=""

find_slapd() {
	local d
	for d in "$(command -v slapd 2>/dev/null || true)" /usr/sbin/slapd /usr/local/sbin/slapd /usr/libexec/slapd /usr/local/libexec/slapd; do
		if [ -n "$d" ] && [ -x "$d" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	return 1
}

# first_dir_with FILE DIR...: the first DIR that holds FILE.
first_dir_with() {
	local f=$1 d
	shift
	for d in "$@"; do
		if [ -e "$d/$f" ]; then
			printf '%s\n' "$d"
			return 0
		fi
	done
	return 1
}

ensure_slapd() {
	local need=()
	find_slapd >/dev/null || need+=(slapd)
	command -v ldapadd >/dev/null 2>&1 && command -v ldapsearch >/dev/null 2>&1 || need+=(ldap-utils)
	command -v openssl >/dev/null 2>&1 || need+=(openssl)
	if [ ${#need[@]} -gt 0 ]; then
		log "OpenLDAP: not found: ${need[*]}"
		apt_install "${need[@]}" || missing "OpenLDAP (slapd, ldapadd, ldapsearch, openssl)" "${need[*]}"
	fi
	SLAPD_BIN=$(find_slapd) || die "installed 'slapd', but still cannot find the slapd program"
	command -v ldapadd >/dev/null 2>&1 || die "installed 'ldap-utils', but still cannot find ldapadd"
}

# slapd_tls DIR: a CA and a server certificate for 127.0.0.1 and localhost.
slapd_tls() {
	local dir=$1
	(
		cd "$dir"
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
			-subj "/CN=appauth test CA" -addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign"
		openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost"
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >server.ext
		openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
			-extfile server.ext -out server.crt
		chmod 600 ca.key server.key
	) >"$WORKDIR/slapd-openssl.log" 2>&1 || {
		cat "$WORKDIR/slapd-openssl.log" >&2
		die "OpenLDAP: making the test certificates with openssl failed"
	}
}

start_slapd() {
	SLAPD_DIR="$WORKDIR/slapd"
	mkdir -p "$SLAPD_DIR/config" "$SLAPD_DIR/data" "$SLAPD_DIR/tls"
	register_stop stop_slapd
	local bin=$SLAPD_BIN moddir schemadir
	# Ubuntu confines /usr/sbin/slapd with AppArmor to its own paths; a copy
	# of the binary is not confined.
	if [ -e /etc/apparmor.d/usr.sbin.slapd ]; then
		cp "$SLAPD_BIN" "$WORKDIR/bin/slapd"
		bin="$WORKDIR/bin/slapd"
	fi
	moddir=$(first_dir_with memberof.so /usr/lib/ldap /usr/lib/x86_64-linux-gnu/ldap /usr/lib/aarch64-linux-gnu/ldap \
		/usr/lib64/openldap /usr/lib/openldap /usr/libexec/openldap /usr/local/libexec/openldap) ||
		die "OpenLDAP: cannot find the slapd modules (memberof.so) in /usr/lib/ldap or /usr/lib64/openldap"
	schemadir=$(first_dir_with inetorgperson.ldif /etc/ldap/schema /etc/openldap/schema /usr/local/etc/openldap/schema) ||
		die "OpenLDAP: cannot find the schema files (inetorgperson.ldif) in /etc/ldap/schema or /etc/openldap/schema"
	slapd_tls "$SLAPD_DIR/tls"

	local admin_pw mdb_load="" ppolicy_schema=""
	admin_pw=$(openssl rand -hex 16)
	[ -e "$moddir/back_mdb.so" ] && mdb_load="olcModuleLoad: back_mdb"
	# OpenLDAP 2.4 ships the ppolicy schema as a file; 2.5+ builds it in.
	[ -e "$schemadir/ppolicy.ldif" ] && ppolicy_schema="include: file://$schemadir/ppolicy.ldif"
	cat >"$SLAPD_DIR/config.ldif" <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $SLAPD_DIR/slapd.pid
olcArgsFile: $SLAPD_DIR/slapd.args
olcTLSCACertificateFile: $SLAPD_DIR/tls/ca.crt
olcTLSCertificateFile: $SLAPD_DIR/tls/server.crt
olcTLSCertificateKeyFile: $SLAPD_DIR/tls/server.key
olcAllows: bind_anon_cred bind_anon_dn
olcLogLevel: stats

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: $moddir
$mdb_load
olcModuleLoad: memberof
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://$schemadir/core.ldif
include: file://$schemadir/cosine.ldif
include: file://$schemadir/inetorgperson.ldif
include: file://$schemadir/nis.ldif
$ppolicy_schema

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: 1000

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: dc=example,dc=org
olcRootDN: cn=admin,dc=example,dc=org
olcRootPW: $admin_pw
olcDbDirectory: $SLAPD_DIR/data
olcDbMaxSize: 268435456
olcDbNoSync: TRUE
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: mail eq
olcDbIndex: member eq
olcDbIndex: entryUUID eq
olcAccess: {0}to attrs=userPassword by anonymous auth by * none
olcAccess: {1}to * by * read

dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={1}ppolicy,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {1}ppolicy
olcPPolicyDefault: cn=default,ou=policies,dc=example,dc=org
EOF
	if ! "$bin" -Ta -n0 -F "$SLAPD_DIR/config" -l "$SLAPD_DIR/config.ldif" >"$WORKDIR/slapadd.log" 2>&1 ||
		! "$bin" -Tt -u -F "$SLAPD_DIR/config" >>"$WORKDIR/slapadd.log" 2>&1; then
		cat "$WORKDIR/slapadd.log" >&2
		die "OpenLDAP: building the slapd configuration failed"
	fi

	# The control script, for the harness and for tests (APPAUTH_TEST_LDAP_CTL).
	local ports port tls_port
	free_port >/dev/null
	ports=$("$WORKDIR/bin/freeport" 2)
	port=${ports%%$'\n'*}
	tls_port=${ports##*$'\n'}
	SLAPD_CTL_SCRIPT="$WORKDIR/slapd-ctl"
	{
		printf '#!/usr/bin/env bash\n'
		printf '# Starts or stops the throwaway slapd of one internal/testenv/run.sh run.\n'
		printf '# Usage: %s start|stop|status\n' "$SLAPD_CTL_SCRIPT"
		printf 'set -euo pipefail\n'
		printf 'bin=%q\nconf=%q\nlog=%q\npidfile=%q\n' "$bin" "$SLAPD_DIR/config" "$SLAPD_DIR/slapd.log" "$SLAPD_DIR/ctl.pid"
		printf 'urls=%q\nprobe=%q\n' "ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$tls_port/" "ldap://127.0.0.1:$port"
		cat <<'EOF'
running() { [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "${1:-}" in
start)
	running && exit 0
	# -d keeps slapd in the foreground, logging (loglevel stats: every
	# bind and search filter) to $log.
	"$bin" -F "$conf" -h "$urls" -d 256 </dev/null >>"$log" 2>&1 &
	echo $! >"$pidfile"
	for ((i = 0; i < 300; i++)); do
		if LDAPTLS_REQCERT=never ldapsearch -x -H "$probe" -b "" -s base -LLL namingContexts >/dev/null 2>&1; then
			exit 0
		fi
		running || break
		sleep 0.1
	done
	echo "slapd-ctl: slapd failed to start; last lines of $log:" >&2
	tail -n 30 "$log" >&2 || true
	exit 1
	;;
stop)
	running || exit 0
	pid=$(cat "$pidfile")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || exit 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	;;
status)
	running
	;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
EOF
	} >"$SLAPD_CTL_SCRIPT"
	chmod 755 "$SLAPD_CTL_SCRIPT"

	log "OpenLDAP: starting slapd on 127.0.0.1:$port (ldap) and :$tls_port (ldaps)"
	"$SLAPD_CTL_SCRIPT" start || die "OpenLDAP: slapd failed to start (see its log above)"
	if ! ldapadd -x -H "ldap://127.0.0.1:$port" -D "cn=admin,dc=example,dc=org" -w "$admin_pw" -e relax \
		-f "$ROOT/internal/testenv/testdata/slapd-fixture.ldif" >"$WORKDIR/ldapadd.log" 2>&1; then
		cat "$WORKDIR/ldapadd.log" >&2
		die "OpenLDAP: loading the fixture failed"
	fi

	: >"$WORKDIR/slapd.lock"
	chmod 666 "$WORKDIR/slapd.lock"
	export APPAUTH_TEST_LDAP_URL="ldap://127.0.0.1:$port"
	export APPAUTH_TEST_LDAPS_URL="ldaps://127.0.0.1:$tls_port"
	export APPAUTH_TEST_LDAP_CA="$SLAPD_DIR/tls/ca.crt"
	export APPAUTH_TEST_LDAP_BASE_DN="dc=example,dc=org"
	export APPAUTH_TEST_LDAP_BIND_DN="cn=appauth,ou=services,dc=example,dc=org"
	export APPAUTH_TEST_LDAP_BIND_PASSWORD="service-Secret-0"
	export APPAUTH_TEST_LDAP_ADMIN_DN="cn=admin,dc=example,dc=org"
	export APPAUTH_TEST_LDAP_ADMIN_PASSWORD="$admin_pw"
	export APPAUTH_TEST_LDAP_CTL="$SLAPD_CTL_SCRIPT"
	export APPAUTH_TEST_LDAP_LOCK="$WORKDIR/slapd.lock"
	export APPAUTH_TEST_LDAP_LOG="$SLAPD_DIR/slapd.log"
	log "OpenLDAP: ready at $APPAUTH_TEST_LDAP_URL and $APPAUTH_TEST_LDAPS_URL"
}

stop_slapd() {
	[ -n "$SLAPD_CTL_SCRIPT" ] && [ -x "$SLAPD_CTL_SCRIPT" ] || return 0
	log "OpenLDAP: stopping slapd"
	"$SLAPD_CTL_SCRIPT" stop || true
}

# ---------------------------------------------------------------------------
# Chromium
#
# The browser test of auth/settings drives headless Chromium (chromedp). No
# server is started here: each test starts its own browser with a temporary
# profile on loopback. We find or install the program and export its path as
# APPAUTH_TEST_CHROMIUM (read by testenv.Chromium).

CHROMIUM_BIN=""

# find_chromium prints the path of a Chromium or Chrome program: the one in
# APPAUTH_TEST_CHROMIUM if set, else the first on PATH.
find_chromium() {
	local c p
	if [ -n "${APPAUTH_TEST_CHROMIUM:-}" ]; then
		[ -x "$APPAUTH_TEST_CHROMIUM" ] || return 1
		printf '%s\n' "$APPAUTH_TEST_CHROMIUM"
		return 0
	fi
	for c in chromium chromium-browser google-chrome-stable google-chrome; do
		if p=$(command -v "$c" 2>/dev/null); then
			printf '%s\n' "$p"
			return 0
		fi
	done
	return 1
}

ensure_chromium() {
	if CHROMIUM_BIN=$(find_chromium); then
		return 0
	fi
	if [ -n "${APPAUTH_TEST_CHROMIUM:-}" ]; then
		die "APPAUTH_TEST_CHROMIUM=$APPAUTH_TEST_CHROMIUM is not an executable file; unset it to use chromium from PATH"
	fi
	log "Chromium not found (chromium, chromium-browser or google-chrome on PATH)"
	apt_install chromium || missing "Chromium (for the browser test of auth/settings)" chromium
	CHROMIUM_BIN=$(find_chromium) || die "installed the package 'chromium', but still cannot find the chromium program on PATH"
}

start_chromium() {
	export APPAUTH_TEST_CHROMIUM="$CHROMIUM_BIN"
	log "Chromium: $CHROMIUM_BIN"
}

# ---------------------------------------------------------------------------
# DAV clients
#
# The real-client test of examples/davserver runs litmus (the WebDAV
# compliance suite), Debian's python3-caldav (with /usr/bin/python3, not a
# python3 from pyenv or a virtualenv, which would lack the package),
# vdirsyncer (CardDAV sync) and curl against the built server. No service is
# started: the test starts the server itself on a free loopback port.

davclients_python() {
	local py
	for py in /usr/bin/python3 python3; do
		if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import caldav' >/dev/null 2>&1; then
			return 0
		fi
	done
	return 1
}

ensure_davclients() {
	local need=()
	command -v litmus >/dev/null 2>&1 || need+=(litmus)
	command -v curl >/dev/null 2>&1 || need+=(curl)
	command -v vdirsyncer >/dev/null 2>&1 || need+=(vdirsyncer)
	davclients_python || need+=(python3-caldav)
	[ ${#need[@]} -eq 0 ] && return 0
	log "DAV clients missing: ${need[*]}"
	apt_install "${need[@]}" || missing "DAV clients for the examples/davserver test (${need[*]})" "${need[*]}"
	command -v litmus >/dev/null 2>&1 || die "installed 'litmus', but still cannot find the litmus program on PATH"
	command -v curl >/dev/null 2>&1 || die "installed 'curl', but still cannot find curl on PATH"
	command -v vdirsyncer >/dev/null 2>&1 || die "installed 'vdirsyncer', but still cannot find vdirsyncer on PATH"
	davclients_python || die "installed 'python3-caldav', but /usr/bin/python3 still cannot import caldav"
}

# ---------------------------------------------------------------------------
# Modes

ensure_services() {
	ensure_postgres
	ensure_slapd
	ensure_chromium
	ensure_davclients
}

start_services() {
	make_workdir
	pick_service_user
	start_postgres
	start_slapd
	start_chromium
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
