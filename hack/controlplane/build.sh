#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok)
# from the Go modules pinned in this folder's go.mod, version-stamped, into a cache keyed by the pinned versions:
#   ${CROUPIER_CACHE:-~/.cache/croupier}/controlplane/k8s-<ver>_etcd-<ver>_kwok-<ver>/bin
# Prints that bin directory. A second run with the binaries present returns at once.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
ver() { awk -v m="$1" '$1==m && $2 ~ /^v/ {print $2; exit}' go.mod; }
K8S=$(ver k8s.io/kubernetes); ETCD=$(ver go.etcd.io/etcd/server/v3); KWOK=$(ver sigs.k8s.io/kwok)
[ -n "$K8S" ] && [ -n "$ETCD" ] && [ -n "$KWOK" ] || { echo "build.sh: cannot read pinned versions from go.mod" >&2; exit 1; }
key="k8s-${K8S}_etcd-${ETCD}_kwok-${KWOK}_$(sha256sum go.sum | cut -c1-12)"
out="${CROUPIER_CACHE:-$HOME/.cache/croupier}/controlplane/${key}/bin"
tools=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
missing=0
for t in "${tools[@]}"; do [ -x "$out/$t" ] || missing=1; done
if [ "$missing" = 0 ]; then echo "$out"; exit 0; fi

mkdir -p "$out.tmp"
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
go build -p "$P" -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK}" -o "$out.tmp/kwok" sigs.k8s.io/kwok/cmd/kwok >&2
rm -rf "$out"; mv "$out.tmp" "$out"
echo "$out"
