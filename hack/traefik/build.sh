#!/usr/bin/env bash
# Builds Traefik (the Gateway API data plane the gateway integration tests drive) from the Go module proxy,
# through the wrapper module in this folder (go.mod: github.com/traefik/traefik/v3 plus the replace and exclude
# directives copied from Traefik's own go.mod, which only apply in a main module), version-stamped, into a cache
# keyed by the pinned version and go.sum:
#   ${CROUPIER_CACHE:-~/.cache/croupier}/traefik/<ver>/<sha12>/traefik
# Prints the binary path on stdout (progress goes to stderr). With the binary present it returns at once.
# A cold build is long (12 minutes on 2 idle cores, over 30 on a busy 2-core machine): the test fixture and CI pay it
# once per cache.
# Concurrent runs (parallel CI jobs, a test session and `make`) wait for each other instead of building twice.
# Env: CROUPIER_CACHE (cache root), CROUPIER_BUILD_JOBS (go build -p; default: number of CPUs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
VER=$(awk '{ sub(/^require[ \t]+/, "") } $1=="github.com/traefik/traefik/v3" && $2 ~ /^v/ {print $2; exit}' go.mod)
[ -n "$VER" ] || { echo "build.sh: cannot read the pinned Traefik version from go.mod" >&2; exit 1; }
dir="${CROUPIER_CACHE:-$HOME/.cache/croupier}/traefik/${VER}/$(sha256sum go.sum | cut -c1-12)"
out="$dir/traefik"
if [ -x "$out" ]; then echo "$out"; exit 0; fi

mkdir -p "$dir"
if command -v flock >/dev/null; then
  exec 9>"$(dirname "$dir")/build.lock"
  flock 9
  if [ -x "$out" ]; then echo "$out"; exit 0; fi  # another run finished the build while we waited
fi

export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
P=${CROUPIER_BUILD_JOBS:-$(nproc)}
echo "build.sh: building Traefik ${VER} (12 to 30+ minutes on 2 cores, once; later runs use the cache)" >&2
go build -p "$P" -trimpath \
  -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${VER#v} -X github.com/traefik/traefik/v3/pkg/version.BuildDate=unknown" \
  -o "$out.tmp" github.com/traefik/traefik/v3/cmd/traefik >&2
mv "$out.tmp" "$out"
echo "build.sh: built ${out}" >&2
echo "$out"
