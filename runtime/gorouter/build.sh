#!/usr/bin/env bash
# Builds the compiled model router (croupier-modelrouter) into a cache keyed by its sources:
#   ${CROUPIER_CACHE:-~/.cache/croupier}/gorouter/<sha12 of go.mod, go.sum and *.go>/croupier-modelrouter
# Prints the binary path on stdout (progress goes to stderr). With the binary present it returns at once; a cold build
# takes about a minute on 2 cores (modules from the Go module proxy, cached under ~/.cache/croupier/go/mod).
# Concurrent runs (parallel CI jobs, a test session and `make`) wait for each other instead of building twice.
# Env: CROUPIER_CACHE (cache root), CROUPIER_BUILD_JOBS (go build -p; default: number of CPUs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
cache="${CROUPIER_CACHE:-$HOME/.cache/croupier}"
sum=$(cat go.mod go.sum $(ls *.go | grep -v '_test\.go$' | sort) | sha256sum | cut -c1-12)
dir="$cache/gorouter/$sum"
out="$dir/croupier-modelrouter"
if [ -x "$out" ]; then echo "$out"; exit 0; fi

mkdir -p "$dir"
if command -v flock >/dev/null; then
  exec 9>"$cache/gorouter/build.lock"
  flock 9
  if [ -x "$out" ]; then echo "$out"; exit 0; fi  # another run finished the build while we waited
fi

export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local GOMODCACHE="$cache/go/mod"
P=${CROUPIER_BUILD_JOBS:-$(nproc)}
echo "build.sh: building croupier-modelrouter ($sum)" >&2
go build -p "$P" -trimpath -ldflags "-s -w" -o "$out.tmp" . >&2
mv "$out.tmp" "$out"
echo "build.sh: built ${out}" >&2
echo "$out"
