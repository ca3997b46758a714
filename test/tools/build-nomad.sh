#!/usr/bin/env bash
# Builds a real Nomad from the Go module proxy for the integration tests, once per machine.
#
#   test/tools/build-nomad.sh            # prints the binary's path on stdout, progress on stderr
#
# Nomad 1.6.x is MPL-2.0 (v1.6.5 is the last MPL-2.0 release). `go install` refuses it (its
# go.mod has `replace` directives, one of them `github.com/hashicorp/nomad/api => ./api`) and
# its module zip leaves out that nested module, so: download the module, copy it somewhere
# writable, download the api module into ./api, and `go build` (no `ui` tag).
#
# Versions are tried in order of preference (BULWARK_NOMAD_VERSION names a single one):
#   v1.6.5 with api at its own commit a7cfff372cd52b02232a02bd3ffb5e5d35f88a0f;
#   v1.6.4, v1.6.3 with api at their own commits, else at the api pseudo-version
#   FALLBACK_API below (the oldest api the proxy serves that has every field 1.6.x uses).
# On the machine this was written on, the module proxy answers "403 This module version is
# not available" for nomad v1.6.5, for v1.6.4's go.mod and for every api commit lookup, so
# the binary built there is v1.6.3 with the fallback api (the CLI/jobspec library; the server
# and client are v1.6.3's own code).
#
# The binary is cached outside the repository, keyed by version:
#   ${BULWARK_NOMAD_CACHE:-/var/cache/bulwark}/nomad-<version>/nomad
# A later call returns at once; concurrent callers wait on a lock and the build runs once.
# Go's module and build caches are the machine's own (GOMODCACHE, GOCACHE); nothing is
# written to the repository. Exit 1 with the reasons on stderr when no version can be built.
set -euo pipefail

CACHE_ROOT="${BULWARK_NOMAD_CACHE:-/var/cache/bulwark}"
FALLBACK_API="v0.0.0-20240213164230-c364cb57298d"
# version:commit of the tag (the api module is asked for at that commit first).
CANDIDATES=(
  "1.6.5:a7cfff372cd52b02232a02bd3ffb5e5d35f88a0f"
  "1.6.4:dbd5f36a24a924e2ba4dd6195af6a45c922ac8c6"
  "1.6.3:e0497bff14378d68cad76a801cc0eba93ce05039"
)
if [ -n "${BULWARK_NOMAD_VERSION:-}" ]; then
  wanted=()
  for c in "${CANDIDATES[@]}"; do [ "${c%%:*}" = "$BULWARK_NOMAD_VERSION" ] && wanted+=("$c"); done
  [ "${#wanted[@]}" -gt 0 ] || wanted=("$BULWARK_NOMAD_VERSION:${BULWARK_NOMAD_API_REF:-$FALLBACK_API}")
  CANDIDATES=("${wanted[@]}")
fi

say() { echo "build-nomad: $*" >&2; }
die() { say "$*"; exit 1; }

bin_of() { echo "$CACHE_ROOT/nomad-$1/nomad"; }
works() { [ -x "$1" ] && "$1" version 2>/dev/null | grep -q "^Nomad v$2\b"; }

cached() {
  for c in "${CANDIDATES[@]}"; do
    v="${c%%:*}"
    if works "$(bin_of "$v")" "$v"; then echo "$(bin_of "$v")"; return 0; fi
  done
  return 1
}

# A machine that has built an older candidate keeps using it (remove the cache to retry
# a preferred version the proxy may serve later).
if cached; then exit 0; fi

GO="${GO:-}"
if [ -z "$GO" ]; then
  if [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go
  elif command -v go >/dev/null 2>&1; then GO=$(command -v go)
  else die "no Go toolchain (looked for /usr/local/go/bin/go and go on PATH)"; fi
fi
command -v flock >/dev/null 2>&1 || die "flock (util-linux) is missing"
mkdir -p "$CACHE_ROOT" 2>/dev/null || die "cannot create the cache directory $CACHE_ROOT (set BULWARK_NOMAD_CACHE)"

exec 9>"$CACHE_ROOT/nomad-build.lock"
if ! flock -n 9; then
  say "another build of Nomad is running; waiting for it"
  flock 9
fi
# Whoever held the lock before us may have finished the build.
if cached; then exit 0; fi

WORK=$(mktemp -d "$CACHE_ROOT/nomad-build.XXXXXX")
cleanup() { chmod -R u+w "$WORK" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

# The "Dir" field of `go mod download -json` output ("" when it reports an Error).
module_dir() { sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' | head -n 1; }
module_error() { sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p' | head -n 1 | sed 's/\\n.*//'; }

# download MODULE@VERSION DEST: copies the module's source to DEST (writable).
download() {
  local json dir
  json=$(cd "$WORK" && "$GO" mod download -json "$1" 2>&1) || true
  dir=$(module_dir <<<"$json")
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    local why
    why=$(module_error <<<"$json")
    [ -n "$why" ] || why=$(printf '%s' "$json" | head -c 300)
    say "  $1: ${why:-go mod download failed without output}"
    return 1
  fi
  rm -rf "$2"
  cp -R "$dir" "$2"
  chmod -R u+w "$2"
}

# build DIR OUT: go build, retrying with -checklinkname=0 when the toolchain rejects linkname.
build() {
  if (cd "$1" && "$GO" build -trimpath -o "$2" . >"$WORK/build.log" 2>&1); then return 0; fi
  if grep -q 'linkname' "$WORK/build.log"; then
    say "  the toolchain rejects old go:linkname uses; retrying with -ldflags=-checklinkname=0"
    (cd "$1" && "$GO" build -trimpath -ldflags=-checklinkname=0 -o "$2" . >"$WORK/build.log" 2>&1) && return 0
  fi
  grep -v '^go: downloading' "$WORK/build.log" | tail -n 15 | sed 's/^/    /' >&2
  return 1
}

start=$(date +%s)
for c in "${CANDIDATES[@]}"; do
  version="${c%%:*}"
  commit="${c#*:}"
  say "trying github.com/hashicorp/nomad@v$version"
  download "github.com/hashicorp/nomad@v$version" "$WORK/src" || continue
  api_refs=("$commit")
  [ "$commit" = "$FALLBACK_API" ] || api_refs+=("$FALLBACK_API")
  for ref in "${api_refs[@]}"; do
    download "github.com/hashicorp/nomad/api@$ref" "$WORK/src/api" || continue
    say "  building v$version with api@$ref (minutes on a cold Go cache)"
    # Not `-o nomad`: the source tree has a directory named nomad.
    rm -f "$WORK/nomad-bin"
    if build "$WORK/src" "$WORK/nomad-bin" && works "$WORK/nomad-bin" "$version"; then
      dest="$(bin_of "$version")"
      mkdir -p "$(dirname "$dest")"
      # Atomic: a reader sees either no binary or the whole one.
      cp "$WORK/nomad-bin" "$dest.tmp.$$"
      mv -f "$dest.tmp.$$" "$dest"
      printf 'nomad v%s\napi %s\nbuilt %s in %s s with %s\n' "$version" "$ref" "$(date -u +%FT%TZ)" "$(( $(date +%s) - start ))" "$("$GO" version)" >"$(dirname "$dest")/BUILD-INFO"
      say "built $dest (api@$ref) in $(( $(date +%s) - start )) s"
      echo "$dest"
      exit 0
    fi
    say "  build of v$version with api@$ref failed"
  done
done
die "no Nomad version could be built (tried: ${CANDIDATES[*]%%:*}); is the Go module proxy reachable?"
