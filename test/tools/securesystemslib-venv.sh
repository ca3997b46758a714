#!/usr/bin/env bash
# Makes a Python venv with securesystemslib[crypto] from PyPI for the DSSE interop test
# (test/lib/dsse-interop.test.ts), once per machine.
#
#   test/tools/securesystemslib-venv.sh      # prints the venv's python3 on stdout, progress on stderr
#
# securesystemslib (Apache-2.0 / MIT) is the Python library in-toto and python-tuf sign
# DSSE envelopes with: an independent implementation of PAE, envelope encoding and
# threshold verification, which is why the test checks Bulwark's lib/dsse against it.
#
# The venv is cached outside the repository, keyed by version:
#   ${BULWARK_PYVENV_CACHE:-/var/cache/bulwark}/pyvenv-securesystemslib-<version>/bin/python3
# A later call returns at once; concurrent callers wait on a lock and the install runs once.
# Exit 1 with the reason on stderr when PyPI cannot be reached or the install fails.
set -euo pipefail

CACHE_ROOT="${BULWARK_PYVENV_CACHE:-/var/cache/bulwark}"
VERSION="${BULWARK_SECURESYSTEMSLIB_VERSION:-1.6.0}"
VENV="$CACHE_ROOT/pyvenv-securesystemslib-$VERSION"
PY="$VENV/bin/python3"

say() { echo "securesystemslib-venv: $*" >&2; }
die() { say "$*"; exit 1; }

works() { [ -f "$VENV/.bulwark-complete" ] && [ -x "$PY" ] && "$PY" -c "import securesystemslib, cryptography; from securesystemslib.dsse import Envelope; assert securesystemslib.__version__ == '$VERSION'" 2>/dev/null; }

if works; then echo "$PY"; exit 0; fi

command -v python3 >/dev/null 2>&1 || die "no python3 on PATH"
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is missing"
mkdir -p "$CACHE_ROOT" 2>/dev/null || die "cannot create the cache directory $CACHE_ROOT (set BULWARK_PYVENV_CACHE)"

exec 9>"$CACHE_ROOT/pyvenv-securesystemslib.lock"
if ! flock -n 9; then
  say "another install is running; waiting for it"
  flock 9
fi
# Whoever held the lock before us may have finished the install.
if works; then echo "$PY"; exit 0; fi

# Installed in place under the lock; the marker file is written last, so a venv cut off
# half-way is not taken for a whole one and is made again.
rm -rf "$VENV"
say "installing securesystemslib[crypto]==$VERSION into $VENV"
python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
"$PY" -m pip install --quiet --disable-pip-version-check "securesystemslib[crypto]==$VERSION" >&2 \
  || die "pip install securesystemslib[crypto]==$VERSION failed; is PyPI reachable?"
touch "$VENV/.bulwark-complete"
works || die "the venv at $VENV does not import securesystemslib $VERSION"
say "made $VENV"
echo "$PY"
