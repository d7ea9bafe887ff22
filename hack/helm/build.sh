#!/usr/bin/env bash
# Builds Helm from the Go module proxy (there is no Debian package) into
#   ${CROUPIER_CACHE:-~/.cache/croupier}/helm/<version>/bin/helm
# and prints that bin directory on stdout (progress goes to stderr). With the binary present it returns at once.
# Concurrent runs (a test session and `make helm`) wait for each other instead of building twice.
# Env: CROUPIER_CACHE (cache root), HELM_VERSION (default below), CROUPIER_BUILD_JOBS (go build -p).
set -euo pipefail
HELM_VERSION=${HELM_VERSION:-v3.22.0}
root="${CROUPIER_CACHE:-$HOME/.cache/croupier}/helm/${HELM_VERSION}"
out="$root/bin"
if [ -x "$out/helm" ]; then echo "$out"; exit 0; fi

mkdir -p "$root"
if command -v flock >/dev/null; then
  exec 9>"$root/build.lock"
  flock 9
  if [ -x "$out/helm" ]; then echo "$out"; exit 0; fi  # another run finished the build while we waited
fi
command -v go >/dev/null || { echo "hack/helm/build.sh: Go is needed to build Helm (go install from the module proxy)" >&2; exit 1; }

rm -rf "$out.tmp"; mkdir -p "$out.tmp"
echo "hack/helm/build.sh: building Helm ${HELM_VERSION} (about a minute or two once; later runs use the cache)" >&2
# Helm stamps its version through ldflags in its own Makefile; `helm version` reports it the same way here.
CGO_ENABLED=0 GOBIN="$out.tmp" GOFLAGS="-mod=mod -buildvcs=false" go install -p "${CROUPIER_BUILD_JOBS:-$(nproc)}" \
  -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
  "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" >&2
rm -rf "$out"; mv "$out.tmp" "$out"
echo "hack/helm/build.sh: built ${out}/helm" >&2
echo "$out"
