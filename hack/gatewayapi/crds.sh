#!/usr/bin/env bash
# Gateway API's standard-channel CRDs (HTTPRoute, GRPCRoute, Gateway, ...) from the Go module sigs.k8s.io/gateway-api,
# the version pinned below (v1.6.3 builds with Go 1.26; v1.7 needs Go >= 1.27), fetched once through the Go module
# proxy into a cache and copied from the module's config/crd/standard/:
#   ${CROUPIER_CACHE:-~/.cache/croupier}/gateway-api/<version>/crds
# Prints that folder on stdout (progress on stderr). With --apply, applies them server-side to the cluster kubectl
# talks to (KUBECONFIG; HTTPRoute's CRD is too large for a client-side apply's annotation) and waits until the route
# CRDs are Established: the API server then validates routes against Gateway API's own schema and CEL rules.
# Env: CROUPIER_CACHE (cache root), KUBECTL (kubectl binary; default: kubectl on PATH).
set -euo pipefail
VERSION=v1.6.3
MODULE=sigs.k8s.io/gateway-api
root="${CROUPIER_CACHE:-$HOME/.cache/croupier}/gateway-api/${VERSION}"
out="$root/crds"

if [ ! -f "$out/.complete" ]; then
  mkdir -p "$root"
  if command -v flock >/dev/null; then
    exec 9>"$root/fetch.lock"
    flock 9
  fi
  if [ ! -f "$out/.complete" ]; then
    echo "gatewayapi/crds.sh: fetching ${MODULE}@${VERSION} through the Go module proxy" >&2
    dir=$(GOMODCACHE="$root/gomod" GOFLAGS=-modcacherw go mod download -json "${MODULE}@${VERSION}" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] && [ -d "$dir/config/crd/standard" ] || { echo "gatewayapi/crds.sh: no config/crd/standard in ${MODULE}@${VERSION}" >&2; exit 1; }
    rm -rf "$out.tmp"; mkdir -p "$out.tmp"
    cp "$dir"/config/crd/standard/*.yaml "$out.tmp/"
    chmod -R u+w "$out.tmp"
    touch "$out.tmp/.complete"
    rm -rf "$out"; mv "$out.tmp" "$out"
  fi
fi

if [ "${1:-}" = "--apply" ]; then
  kubectl=${KUBECTL:-kubectl}
  "$kubectl" apply --server-side --force-conflicts -f "$out" >&2
  # Not `kubectl wait --for=condition=Established`: on a CRD created a moment ago whose status the API server has not
  # written yet, it fails at once (".status.conditions accessor error: <nil>") instead of waiting. Poll the condition
  # ourselves, then the list (a just-established resource may still answer 503 while its storage initialises).
  deadline=$((SECONDS + 60))
  for crd in httproutes grpcroutes gateways; do
    crd="$crd.gateway.networking.k8s.io"
    until [ "$("$kubectl" get crd "$crd" -o 'jsonpath={.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" = True ] \
      && "$kubectl" get "$crd" -A --request-timeout=10s >/dev/null 2>&1; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "gatewayapi/crds.sh: $crd not Established and served within 60 s" >&2
        "$kubectl" get crd "$crd" -o 'jsonpath={.status.conditions}' >&2 || true
        exit 1
      fi
      sleep 0.5
    done
    echo "gatewayapi/crds.sh: $crd established" >&2
  done
fi
echo "$out"
