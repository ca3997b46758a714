#!/usr/bin/env bash
# Makes a clean Debian root filesystem for the package tests, once per machine per suite.
#
#   test/tools/debian-root.sh bookworm|trixie   # prints the cached root's path on stdout, progress on stderr
#
# `debootstrap --variant=minbase SUITE` from the mirror the machine itself uses (the first
# URIs: line of /etc/apt/sources.list.d/debian.sources, else deb.debian.org), then inside:
# a policy-rc.d that exits 101 (maintainer scripts start no service), `apt-get update`, and
# the Debian packages the Bulwark packages depend on downloaded (not installed) into
# /var/cache/apt/archives, so a test's `apt-get install ./*.deb` resolves them from Debian
# without fetching them again.
#
# The root is cached outside the repository, keyed by suite and by ROOT_VERSION below (raise
# it when what goes into a root changes):
#   ${BULWARK_DEBIAN_ROOT_CACHE:-/var/cache/bulwark}/debian-root-<suite>-v<ROOT_VERSION>/
# A later call returns at once; concurrent callers wait on a lock and debootstrap runs once.
# The cache is read-only by convention: tests copy it (cp -a) and work on the copy.
# Exit 1 with the reason on stderr when the suite cannot be fetched.
set -euo pipefail

ROOT_VERSION=1
SUITE="${1:-}"
case "$SUITE" in
  bookworm|trixie) ;;
  *) echo "usage: $0 bookworm|trixie" >&2; exit 2 ;;
esac
CACHE_ROOT="${BULWARK_DEBIAN_ROOT_CACHE:-/var/cache/bulwark}"
ROOT="$CACHE_ROOT/debian-root-$SUITE-v$ROOT_VERSION"
STAMP="$ROOT/.bulwark-complete"
# What the packages depend on (packaging/build-deb.sh), fetched ahead so installs are local.
PREFETCH=(adduser nats-server tpm2-tools nftables libstdc++6 libgcc-s1 init-system-helpers)

say() { echo "debian-root: $*" >&2; }
die() { say "$*"; exit 1; }

if [ -f "$STAMP" ]; then echo "$ROOT"; exit 0; fi

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap and chroot)"
command -v debootstrap >/dev/null 2>&1 || die "debootstrap is missing (packaging/dev-setup.sh installs it)"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is missing"
mkdir -p "$CACHE_ROOT" 2>/dev/null || die "cannot create the cache directory $CACHE_ROOT (set BULWARK_DEBIAN_ROOT_CACHE)"

exec 9>"$CACHE_ROOT/debian-root-$SUITE.lock"
if ! flock -n 9; then
  say "another debootstrap of $SUITE is running; waiting for it"
  flock 9
fi
# Whoever held the lock before us may have finished.
if [ -f "$STAMP" ]; then echo "$ROOT"; exit 0; fi

MIRROR="${BULWARK_DEBIAN_MIRROR:-}"
if [ -z "$MIRROR" ] && [ -r /etc/apt/sources.list.d/debian.sources ]; then
  MIRROR=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources | grep -v security | head -n 1)
fi
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

WORK="$ROOT.tmp.$$"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
rm -rf "$ROOT"

start=$(date +%s)
say "debootstrap --variant=minbase $SUITE from $MIRROR (about half a minute)"
if ! debootstrap --variant=minbase "$SUITE" "$WORK" "$MIRROR" >"$CACHE_ROOT/debian-root-$SUITE.log" 2>&1; then
  tail -n 5 "$CACHE_ROOT/debian-root-$SUITE.log" | sed 's/^/    /' >&2
  die "debootstrap of $SUITE failed (log: $CACHE_ROOT/debian-root-$SUITE.log)"
fi

# Maintainer scripts inside the root must never start a service (invoke-rc.d and
# deb-systemd-invoke ask this script; 101: action forbidden).
printf '#!/bin/sh\nexit 101\n' >"$WORK/usr/sbin/policy-rc.d"
chmod 0755 "$WORK/usr/sbin/policy-rc.d"

in_root() { chroot "$WORK" env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"; }
in_root apt-get update -qq >&2 || die "apt-get update in the $SUITE root failed"
in_root apt-get install -y -qq --download-only --no-install-recommends "${PREFETCH[@]}" >&2 ||
  die "downloading ${PREFETCH[*]} in the $SUITE root failed"

printf 'debian-root %s v%s\nmirror %s\nbuilt %s in %s s\n' "$SUITE" "$ROOT_VERSION" "$MIRROR" "$(date -u +%FT%TZ)" "$(( $(date +%s) - start ))" >"$WORK/.bulwark-complete"
mv "$WORK" "$ROOT"
trap - EXIT
say "made $ROOT in $(( $(date +%s) - start )) s"
echo "$ROOT"
