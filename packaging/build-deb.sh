#!/usr/bin/env bash
# Builds the Debian packages, reproducibly (same tree and inputs give the same bytes):
#
#   packaging/build-deb.sh          # or: npm run package; prints the .deb paths on stdout
#
#   bulwark-runtime     amd64  the private Node runtime (/usr/lib/bulwark/node/bin/node), the
#                              compiled JS (/usr/lib/bulwark/dist) and the production
#                              node_modules with pkcs11js's addon built for it
#   bulwark-controller  all    wrapper /usr/bin/bulwark-controller, unit, /etc/bulwark/controller.json
#   bulwark-agent       all    wrapper /usr/bin/bulwark-agent, unit, /etc/bulwark/agent.json
#   bulwarkctl          all    wrapper /usr/bin/bulwarkctl
#
# Why a private runtime: README.md, "Debian packages".
#
# Environment:
#   BULWARK_DEB_VERSION   the Debian version (default: package.json's version + "-1"); tests build
#                         an older one to test upgrades
#   BULWARK_DEB_OUT       where the .debs go (default dist/deb)
#   BULWARK_NODE_BINARY   the Node runtime to ship (default: the node on PATH; must be >= 20)
#   BULWARK_NODE_DIR      where that Node's headers are (include/node; default: its prefix)
#   SOURCE_DATE_EPOCH     every mtime and the changelog date (default: the last commit's time)
#
# Reproducible: SOURCE_DATE_EPOCH for every mtime (and dpkg-deb's ar/tar headers), owners
# root:root (--root-owner-group), modes normalised (0755 directories and executables, 0644
# the rest), dpkg-deb sorts its file lists, xz -2 (fixed; -6 costs three times the CPU for 12% less) on one thread, gzip -n, the
# native addon compiled with -ffile-prefix-map so the build directory leaves no trace.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

say() { echo "build-deb: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in dpkg-deb npm git xz gzip strip md5sum; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done

UPSTREAM=$(node -p "require('./package.json').version")
VERSION="${BULWARK_DEB_VERSION:-$UPSTREAM-1}"
[[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~]*-[A-Za-z0-9.+~]+$ ]] || die "BULWARK_DEB_VERSION '$VERSION' is not a Debian version (UPSTREAM-REVISION)"
OUT="${BULWARK_DEB_OUT:-$REPO/dist/deb}"
NODE_BIN="${BULWARK_NODE_BINARY:-$(command -v node)}"
NODE_BIN=$(readlink -f "$NODE_BIN")
NODE_DIR="${BULWARK_NODE_DIR:-$(dirname "$(dirname "$NODE_BIN")")}"
[ -f "$NODE_DIR/include/node/common.gypi" ] || die "no Node headers in $NODE_DIR/include/node (set BULWARK_NODE_DIR)"
node_major=$("$NODE_BIN" -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "$NODE_BIN is Node $node_major; the packages need Node >= 20"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
fi
export SOURCE_DATE_EPOCH
export TZ=UTC LC_ALL=C.UTF-8
umask 022

MAINTAINER="Bulwark maintainers <maintainers@bulwark.dev>"
ARCH=amd64
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bulwark-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
started=$(date +%s)

# 1. The product's JS: tsc on the product folders only (no tests, no source maps).
say "compiling TypeScript (product folders)"
"$REPO/node_modules/.bin/tsc" -p packaging/tsconfig.deb.json --outDir "$WORK/app/dist"

# 2. Production dependencies from the lockfile (the local npm cache first), then
#    pkcs11js's addon compiled against the headers of the Node that ships.
say "installing production dependencies"
cp package.json package-lock.json "$WORK/app/"
(cd "$WORK/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >&2)
say "building pkcs11js for Node $("$NODE_BIN" --version)"
(
  cd "$WORK/app"
  export CFLAGS="-ffile-prefix-map=$WORK=/build" CXXFLAGS="-ffile-prefix-map=$WORK=/build"
  npm rebuild pkcs11js --ignore-scripts=false --nodedir="$NODE_DIR" --loglevel=error >&2
)
addon="$WORK/app/node_modules/pkcs11js/build/Release/pkcs11.node"
[ -f "$addon" ] || die "pkcs11js did not build ($addon missing)"
# Only the addon stays: the intermediates name the build directory.
mv "$addon" "$WORK/pkcs11.node"
rm -rf "$WORK/app/node_modules/pkcs11js/build"
mkdir -p "$WORK/app/node_modules/pkcs11js/build/Release"
strip --strip-unneeded -o "$addon" "$WORK/pkcs11.node"
rm -f "$WORK/app/package-lock.json"
# Files npm packages carry for their own development, never loaded: npm's and git's
# control files and the .bin links to npm packages' CLIs (Bulwark runs none of them).
find "$WORK/app/node_modules" \( -name .npmignore -o -name .gitattributes -o -name .gitignore -o -name .travis.yml -o -name .github -o -name .bin \) -prune -exec rm -rf {} +

# The build info --version prints and the controller reports (dist/build-info.json): the
# version from package.json and the commit, which an installed package cannot ask git for.
(cd "$WORK/app" && BULWARK_COMMIT=$(cd "$REPO" && git rev-parse HEAD 2>/dev/null || echo unknown) "$NODE_BIN" dist/daemon/write-build-info.js >&2)

# 3. The package trees.
P="$WORK/pkg"
RT="$P/bulwark-runtime"
mkdir -p "$RT/usr/lib/bulwark/node/bin"
# Stripped as Debian strips its own nodejs (symbols only; the build id stays).
strip --strip-unneeded -o "$RT/usr/lib/bulwark/node/bin/node" "$NODE_BIN"
cp -R "$WORK/app/dist" "$WORK/app/node_modules" "$WORK/app/package.json" "$RT/usr/lib/bulwark/"

# wrapper NAME MAIN: /usr/bin/NAME running dist/MAIN on the private runtime.
wrapper() {
  mkdir -p "$P/$1/usr/bin"
  printf '#!/bin/sh\n# %s on Bulwark'"'"'s private Node runtime (bulwark-runtime).\nexec /usr/lib/bulwark/node/bin/node /usr/lib/bulwark/dist/%s "$@"\n' "$1" "$2" >"$P/$1/usr/bin/$1"
  chmod 0755 "$P/$1/usr/bin/$1"
}
wrapper bulwark-controller controller/main.js
wrapper bulwark-agent agent/main.js
wrapper bulwarkctl cli/bulwarkctl.js

for d in bulwark-controller bulwark-agent; do
  mkdir -p "$P/$d/lib/systemd/system" "$P/$d/etc/bulwark"
  cp "systemd/$d.service" "$P/$d/lib/systemd/system/"
done
cp packaging/deb/controller.json "$P/bulwark-controller/etc/bulwark/"
cp packaging/deb/agent.json "$P/bulwark-agent/etc/bulwark/"
mkdir -p "$P/bulwark-controller/etc/bulwark/ek-ca" "$P/bulwark-controller/usr/share/bulwark/apps"
cp policies/apps/* "$P/bulwark-controller/usr/share/bulwark/apps/"
mkdir -p "$P/bulwark-agent/usr/share/doc/bulwark-agent/examples/nomad.service.d"
cp systemd/nomad.service.d/*.conf "$P/bulwark-agent/usr/share/doc/bulwark-agent/examples/nomad.service.d/"

PACKAGES=(bulwark-runtime bulwark-controller bulwark-agent bulwarkctl)
date_rfc2822=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
for p in "${PACKAGES[@]}"; do
  doc="$P/$p/usr/share/doc/$p"
  mkdir -p "$doc"
  cp packaging/deb/copyright "$doc/copyright"
  printf '%s (%s) unstable; urgency=medium\n\n  * Built from the Bulwark tree at commit %s.\n\n -- %s  %s\n' \
    "$p" "$VERSION" "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" "$MAINTAINER" "$date_rfc2822" >"$doc/changelog.Debian"
  gzip -9 -n "$doc/changelog.Debian"
  case "$p" in
    bulwark-controller|bulwark-agent) cp README.md "$doc/README.md" ;;
  esac
  if [ -f "packaging/deb/$p/lintian-overrides" ]; then
    mkdir -p "$P/$p/usr/share/lintian/overrides"
    cp "packaging/deb/$p/lintian-overrides" "$P/$p/usr/share/lintian/overrides/$p"
  fi
  mkdir -p "$P/$p/DEBIAN"
  for script in preinst postinst prerm postrm; do
    if [ -f "packaging/deb/$p/$script" ]; then
      cp "packaging/deb/$p/$script" "$P/$p/DEBIAN/$script"
      chmod 0755 "$P/$p/DEBIAN/$script"
    fi
  done
done
cp "$NODE_DIR/share/doc/nodejs/LICENSE" "$RT/usr/share/doc/bulwark-runtime/node-LICENSE" 2>/dev/null ||
  "$NODE_BIN" -e 'process.stdout.write("Node.js " + process.version + " (MIT); https://github.com/nodejs/node/blob/" + process.version + "/LICENSE\n")' >"$RT/usr/share/doc/bulwark-runtime/node-LICENSE"
printf '/etc/bulwark/controller.json\n' >"$P/bulwark-controller/DEBIAN/conffiles"
printf '/etc/bulwark/agent.json\n' >"$P/bulwark-agent/DEBIAN/conffiles"

# control NAME ARCH DEPENDS RECOMMENDS SUGGESTS SUMMARY DESCRIPTION
control() {
  local root="$P/$1" size
  # Installed-Size as dpkg-gencontrol counts it: KiB per file rounded up, 1 per directory or link.
  size=$(cd "$root" && find . -path ./DEBIAN -prune -o \( -type f -printf '%s\n' \) -o \( ! -type f -printf '1024\n' \) |
    awk '{ total += int(($1 + 1023) / 1024) } END { print total }')
  {
    printf 'Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: %s\nInstalled-Size: %s\n' "$1" "$VERSION" "$2" "$MAINTAINER" "$size"
    [ -z "$3" ] || printf 'Depends: %s\n' "$3"
    [ -z "$4" ] || printf 'Recommends: %s\n' "$4"
    [ -z "$5" ] || printf 'Suggests: %s\n' "$5"
    printf 'Section: admin\nPriority: optional\nHomepage: https://bulwark.dev/\nDescription: %s\n' "$6"
    printf '%s\n' "$7" | fold -s -w 78 | sed 's/ *$//; s/^/ /'
  } >"$root/DEBIAN/control"
}
RUNTIME_DEP="bulwark-runtime (= $VERSION)"
control bulwark-runtime "$ARCH" "libc6 (>= 2.28), libgcc-s1 (>= 3.0), libstdc++6 (>= 5.2), ca-certificates" "" "" \
  "Bulwark TPM attestation - private Node.js runtime and shared code" \
  "The Node.js $("$NODE_BIN" --version) runtime Bulwark runs on (Debian 12 ships Node 18, older than Bulwark needs), the compiled Bulwark code and its production npm dependencies, under /usr/lib/bulwark. Used by bulwark-controller, bulwark-agent and bulwarkctl; nothing else uses this runtime."
control bulwark-controller all "$RUNTIME_DEP, adduser, nats-server" "" "" \
  "Bulwark TPM attestation - controller" \
  "The registrar, verifier and trust store of a fleet of TPM-attested Debian hosts, with its gRPC API. With no natsUrl configured (the default) it starts its own nats-server with JetStream, TLS and nkeys in /var/lib/bulwark-controller."
control bulwark-agent all "$RUNTIME_DEP, tpm2-tools, nftables" "" "" \
  "Bulwark TPM attestation - host agent" \
  "Enrolls this host's TPM with a Bulwark controller and answers its challenges with quotes, the measured-boot and IMA logs and the host baseline (nftables, SELinux), which it can enforce."
control bulwarkctl all "$RUNTIME_DEP" "" "attr, softhsm2 | opensc-pkcs11" \
  "Bulwark TPM attestation - command-line client" \
  "bulwarkctl lists and inspects attested nodes, manages policies, credentials and enrollments through the controller's API, and verifies quotes, event logs, IMA lists and DSSE envelopes offline."

# 4. Normalise and build.
rm -rf "$OUT"
mkdir -p "$OUT"
for p in "${PACKAGES[@]}"; do
  root="$P/$p"
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -path "$root/DEBIAN" -prune -o -type f -perm /u+x -exec chmod 0755 {} + -o -type f -exec chmod 0644 {} +
  if [ "$p" = bulwark-runtime ]; then
    # Only the runtime is an executable: the JS is run by the /usr/bin wrappers through
    # it, npm tarballs carry exec bits on plain modules, and the addon is loaded, not run.
    find "$root/usr/lib/bulwark/dist" "$root/usr/lib/bulwark/node_modules" -type f -exec chmod 0644 {} +
  fi
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | tr '\n' '\0' | xargs -0 -r md5sum) >"$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums" "$root/DEBIAN/conffiles" 2>/dev/null || true
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  arch=$(sed -n 's/^Architecture: //p' "$root/DEBIAN/control")
  deb="$OUT/${p}_${VERSION}_${arch}.deb"
  dpkg-deb --root-owner-group --build -Zxz -z2 --threads-max=1 "$root" "$deb" >/dev/null
  echo "$deb"
done
say "built ${#PACKAGES[@]} packages $VERSION in $(( $(date +%s) - started )) s into $OUT"
