{{/* Name of every object: fullnameOverride (default croupier-operator). */}}
{{- define "croupier.fullname" -}}
{{- required "fullnameOverride must name the operator's objects" .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The labels config/ sets (selector: the name only, as in config/manager/deployment.yaml). */}}
{{- define "croupier.selectorLabels" -}}
app.kubernetes.io/name: {{ include "croupier.fullname" . }}
{{- end -}}

{{/* Labels Helm adds on top of config/'s; tests/integration/ops/test_chart.py removes exactly these to compare. */}}
{{- define "croupier.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{- define "croupier.labels" -}}
{{ include "croupier.selectorLabels" . }}
app.kubernetes.io/part-of: croupier
{{ include "croupier.helmLabels" . }}
{{- end -}}

{{- define "croupier.operatorLabels" -}}
{{ include "croupier.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: croupier
{{ include "croupier.helmLabels" . }}
{{- end -}}

{{- define "croupier.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .chart.AppVersion) -}}
{{- end -}}

{{/*
The operator's permissions, split by scope. Cluster-wide installs bind both in one ClusterRole (what
config/rbac/cluster_role.yaml grants); namespaced installs bind "namespaced" per watched namespace.
Keep in step with config/rbac/cluster_role.yaml (the chart test compares the default render with it).
*/}}
{{- define "croupier.rules.namespaced" -}}
# The custom resources: watched by Kopf, which patches its finalizer and annotations (never spec).
- apiGroups: ["croupier.dev"]
  resources: ["decisionpolicies", "modeldeployments", "experiments"]
  verbs: ["list", "watch", "patch"]
# Read by name as targets: an Experiment's DecisionPolicies and ModelDeployments, a scored policy's ModelDeployment.
- apiGroups: ["croupier.dev"]
  resources: ["decisionpolicies", "modeldeployments"]
  verbs: ["get"]
# status is the operator's to write (merge patches; it is read from the object itself, never the subresource).
- apiGroups: ["croupier.dev"]
  resources: ["decisionpolicies/status", "modeldeployments/status", "experiments/status"]
  verbs: ["patch"]
# Children carry ownerReferences with blockOwnerDeletion: true, which needs update on the owner's finalizers.
- apiGroups: ["croupier.dev"]
  resources: ["decisionpolicies/finalizers", "modeldeployments/finalizers", "experiments/finalizers"]
  verbs: ["update"]
# Children: watched (label-selected) into indexes; created and changed by server-side apply (patch; create for new).
- apiGroups: [""]
  resources: ["configmaps", "services", "persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The auth Secret a DecisionPolicy names, read by name for the stats probe's admin token (never listed or watched).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# A ModelDeployment in GatewayAPI mode owns its HTTPRoute or GRPCRoute (watched only where the CRDs exist).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes"]
  verbs: ["get", "list", "watch", "create", "patch"]
# A ModelDeployment deletes the children its routing mode no longer uses (by name, with a uid precondition).
- apiGroups: [""]
  resources: ["configmaps", "services"]
  verbs: ["delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes"]
  verbs: ["delete"]
# The model router's pods (VersionLabels), listed by label and annotated after a routing table change so the kubelet
# refreshes their routing volume at once.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
# Events on condition transitions (Kopf posts core/v1 Events).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end -}}

{{- define "croupier.rules.cluster" -}}
# Kopf discovers the resources it serves and the namespaces it may watch.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end -}}
