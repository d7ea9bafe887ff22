#!/usr/bin/env bash
# Regenerates go.mod/go.sum of the control-plane wrapper module for one Kubernetes release.
# Usage: hack/controlplane/gen-gomod.sh v1.35.4 [kwok-version]
# The staging replaces are derived from Kubernetes' own go.mod, never hard-coded.
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
  echo "require ("
  echo "	k8s.io/kubernetes ${K8S}"
  echo "	sigs.k8s.io/kwok ${KWOK}"
  echo ")"
  echo
  echo "replace ("
  awk '/=> .\/staging\/src\//{print $1}' "$MOD" | sort -u | while read -r m; do
    echo "	${m} => ${m} v0.${minor}"
  done
  echo ")"
} > go.mod
GOFLAGS=-mod=mod go mod tidy
echo "wrote go.mod for kubernetes ${K8S}, kwok ${KWOK}"
