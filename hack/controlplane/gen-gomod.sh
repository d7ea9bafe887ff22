#!/usr/bin/env bash
# Regenerates the Go modules of the control plane for one Kubernetes release and one kwok release.
# Usage: hack/controlplane/gen-gomod.sh v1.35.4 [kwok-version]
#   go.mod       k8s.io/kubernetes (+ etcd server, from its dependency graph); the staging replaces are derived
#                from Kubernetes' own go.mod, never hard-coded.
#   kwok/go.mod  sigs.k8s.io/kwok alone, so kwok builds against the Kubernetes libraries it was released with.
set -euo pipefail
K8S=${1:?kubernetes version, e.g. v1.35.4}
KWOK=${2:-v0.7.0}
cd "$(dirname "$0")"
go mod download -json "k8s.io/kubernetes@${K8S}" >/dev/null
MOD="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/${K8S}.mod"
minor=${K8S#v1.}
GOLINE=$(awk '/^go /{print $2; exit}' "$MOD")
GODEBUG=$(awk '/^godebug /{print $2; exit}' "$MOD")
{
  echo "module croupier.dev/hack/controlplane"
  echo
  echo "go ${GOLINE}"
  [ -n "$GODEBUG" ] && { echo; echo "godebug ${GODEBUG}"; }
  echo
  echo "require k8s.io/kubernetes ${K8S}"
  echo
  echo "replace ("
  awk '/=> .\/staging\/src\//{print $1}' "$MOD" | sort -u | while read -r m; do
    echo "	${m} => ${m} v0.${minor}"
  done
  echo ")"
} > go.mod
# tidy adds go.etcd.io/etcd/server/v3 (imported by tools.go) at the version Kubernetes' graph selects.
GOFLAGS=-mod=mod go mod tidy

go mod download -json "sigs.k8s.io/kwok@${KWOK}" >/dev/null
KWOKMOD="$(go env GOMODCACHE)/cache/download/sigs.k8s.io/kwok/@v/${KWOK}.mod"
{
  echo "module croupier.dev/hack/controlplane/kwok"
  echo
  echo "go $(awk '/^go /{print $2; exit}' "$KWOKMOD")"
  echo
  echo "require sigs.k8s.io/kwok ${KWOK}"
} > kwok/go.mod
(cd kwok && GOFLAGS=-mod=mod go mod tidy)
echo "wrote go.mod for kubernetes ${K8S} and kwok/go.mod for kwok ${KWOK}"
