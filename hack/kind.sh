#!/usr/bin/env bash
# Deploy Croupier into the current kube context (a kind cluster in the Makefile's flow) with kustomize.
#
#   hack/kind.sh deploy [OPERATOR_IMAGE] [RUNTIME_IMAGE]   # CRDs, RBAC, operator with these images; waits for it
#   hack/kind.sh undeploy                                  # removes operator, RBAC, CRDs (and every Croupier object)
#   hack/kind.sh render [OPERATOR_IMAGE] [RUNTIME_IMAGE]   # print the manifests deploy would apply
#
# Needs kubectl (with its built-in kustomize). Images are substituted through a throwaway overlay in .demo/, so
# config/ stays untouched.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KUBECTL="${KUBECTL:-kubectl}"
NAMESPACE="croupier-system"

overlay() {
  local operator_image="${1:-croupier-operator:dev}" runtime_image="${2:-croupier-runtime:dev}"
  local dir
  # kustomize wants a relative path to the base: keep the overlay inside the (git-ignored) .demo folder.
  mkdir -p "$ROOT/.demo"
  dir="$(mktemp -d "$ROOT/.demo/overlay.XXXXXX")"
  cat >"$dir/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../config/default
images:
  - name: ghcr.io/croupier-dev/croupier-operator
    newName: ${operator_image%:*}
    newTag: ${operator_image##*:}
patches:
  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: croupier-operator, namespace: $NAMESPACE}
      spec:
        template:
          spec:
            containers:
              - name: operator
                env:
                  - name: CROUPIER_OPERATOR_RUNTIME_IMAGE
                    value: "$runtime_image"
YAML
  echo "$dir"
}

render() {
  local dir
  dir="$(overlay "$@")"
  "$KUBECTL" kustomize "$dir"
  rm -rf "$dir"
}

deploy() {
  local dir
  dir="$(overlay "$@")"
  # CRDs first and established before anything refers to them.
  "$KUBECTL" apply --server-side -k "$ROOT/crds"
  "$KUBECTL" wait --for=condition=Established --timeout=60s crd --all
  "$KUBECTL" apply --server-side -k "$dir"
  rm -rf "$dir"
  "$KUBECTL" -n "$NAMESPACE" rollout status deployment/croupier-operator --timeout=180s
}

undeploy() {
  # Custom resources first, while the operator still runs to release its finalizers; then everything else.
  "$KUBECTL" delete decisionpolicies,experiments,modeldeployments --all --all-namespaces --wait=true \
    --ignore-not-found --timeout=120s || true
  "$KUBECTL" delete -k "$ROOT/config/default" --ignore-not-found --wait=true
}

command="${1:-}"
shift || true
case "$command" in
  deploy) deploy "$@" ;;
  undeploy) undeploy ;;
  render) render "$@" ;;
  *) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 2 ;;
esac
