#!/usr/bin/env bash
# Makes a fresh Debian checkout ready to test or demo: installs the Debian packages the
# agent, controller and tests use, the npm dependencies, and builds the TypeScript.
# Idempotent: does only what is missing. Runs as root (or with sudo available).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(swtpm swtpm-tools tpm2-tools libtss2-tcti-swtpm0 nats-server ima-evm-utils protobuf-compiler openssl python3 python3-venv nftables iproute2 softhsm2 opensc lintian debootstrap)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "bulwark: installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bulwark: installing npm dependencies" >&2
  npm ci --no-audit --no-fund >&2
fi

echo "bulwark: building" >&2
rm -rf dist
npm run --silent build >&2

# The independent DSSE implementation the interop test checks lib/dsse against
# (securesystemslib from PyPI), in a venv cached per machine outside the repository, as
# test/tools/build-nomad.sh caches Nomad. Without PyPI the interop test skips, saying why.
if ! ./test/tools/securesystemslib-venv.sh >/dev/null; then
  echo "bulwark: the securesystemslib venv could not be made (test/lib/dsse/dsse-interop.test.ts will skip)" >&2
fi
