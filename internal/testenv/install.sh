#!/usr/bin/env bash
# install.sh: installs the Debian/Ubuntu packages behind `make test` that are
# missing (when root), or names them. The services themselves are started by
# package internal/testenv from Go, per test binary.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
need=()
have initdb || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
have slapd || [ -x /usr/sbin/slapd ] || need+=(slapd)
have chromium || have chromium-browser || have google-chrome || need+=(chromium)
for p in litmus vdirsyncer curl; do have "$p" || need+=("$p"); done
have nextcloudcmd || need+=(nextcloud-desktop-cmd)
/usr/bin/python3 -c 'import caldav' >/dev/null 2>&1 || need+=(python3-caldav)
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || need+=(python3-aiosmtpd)
have freeradius || [ -x /usr/sbin/freeradius ] || need+=(freeradius)
[ -e /usr/lib/freeradius/rlm_rest.so ] || need+=(freeradius-rest)
have radclient || need+=(freeradius-utils)
have eapol_test || need+=(eapoltest)
have node && have npm || need+=(nodejs npm) # oidc-provider, installed by npm ci from Go (oidc.go)
have gcc || have cc || need+=(gcc libc6-dev) # go test -race needs cgo
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! have apt-get; then
	echo "install.sh: missing packages: ${need[*]}" >&2
	echo "install them (on Debian/Ubuntu: sudo apt-get install ${need[*]}), or run make test as root" >&2
	exit 1
fi
# Keep the packages from starting system services (their own PostgreSQL
# cluster, slapd, freeradius): the tests start private servers.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 755 /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
# Debian's slapd would otherwise configure (and ask about) a directory of its own.
echo 'slapd slapd/no_configuration boolean true' | debconf-set-selections
echo "install.sh: apt-get install ${need[*]}" >&2
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
