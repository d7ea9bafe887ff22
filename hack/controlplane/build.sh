#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok)
# from the Go modules pinned in this folder (go.mod: Kubernetes and etcd; kwok/go.mod: kwok), version-stamped,
# into a cache keyed by the pinned versions and the go.sum files:
#   ${CROUPIER_CACHE:-~/.cache/croupier}/controlplane/k8s-<ver>_etcd-<ver>_kwok-<ver>_<sha12>/bin
# Prints that bin directory on stdout (progress goes to stderr). With the binaries present it returns at once.
# Concurrent runs (parallel CI jobs, a test session and `make`) wait for each other instead of building twice.
# Env: CROUPIER_CACHE (cache root), CROUPIER_BUILD_JOBS (go build -p; default: number of CPUs).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
ver() { awk -v m="$1" '{ sub(/^require[ \t]+/, "") } $1==m && $2 ~ /^v/ {print $2; exit}' "$2"; }
K8S=$(ver k8s.io/kubernetes go.mod); ETCD=$(ver go.etcd.io/etcd/server/v3 go.mod)
KWOK=$(ver sigs.k8s.io/kwok kwok/go.mod)
[ -n "$K8S" ] && [ -n "$ETCD" ] && [ -n "$KWOK" ] || { echo "build.sh: cannot read pinned versions from go.mod, kwok/go.mod" >&2; exit 1; }
key="k8s-${K8S}_etcd-${ETCD}_kwok-${KWOK}_$(cat go.sum kwok/go.sum | sha256sum | cut -c1-12)"
out="${CROUPIER_CACHE:-$HOME/.cache/croupier}/controlplane/${key}/bin"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
complete() { local t; for t in "${tools[@]}"; do [ -x "$out/$t" ] || return 1; done; }
if complete; then echo "$out"; exit 0; fi

mkdir -p "$(dirname "$out")"
if command -v flock >/dev/null; then
  exec 9>"$(dirname "$out")/build.lock"
  flock 9
  if complete; then echo "$out"; exit 0; fi  # another run finished the build while we waited
fi

rm -rf "$out.tmp"; mkdir -p "$out.tmp"
minor=${K8S#v1.}; minor=${minor%%.*}
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X ${pkg}.gitVersion=${K8S} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
done
export CGO_ENABLED=0 GOFLAGS="-mod=mod -buildvcs=false"
# -p bounds parallel compile jobs: the Kubernetes build peaks at several GB per job.
P=${CROUPIER_BUILD_JOBS:-$(nproc)}
echo "build.sh: building control plane ${key} (this takes a while once; later runs use the cache)" >&2
go build -p "$P" -trimpath -ldflags "-s -w ${stamp}" -o "$out.tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl >&2
go build -p "$P" -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" go.etcd.io/etcd/server/v3 >&2
(cd kwok && go build -p "$P" -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK}" \
  -o "$out.tmp/kwok" sigs.k8s.io/kwok/cmd/kwok) >&2
rm -rf "$out"; mv "$out.tmp" "$out"
echo "build.sh: built ${out}" >&2
echo "$out"
