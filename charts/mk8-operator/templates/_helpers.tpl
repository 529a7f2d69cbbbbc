{{/* Chart name, overridable. */}}
{{- define "mk8-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource name prefix: the release name, with the chart name unless the release already contains it. */}}
{{- define "mk8-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mk8-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "mk8-operator.labels" -}}
helm.sh/chart: {{ include "mk8-operator.chart" . }}
{{ include "mk8-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mk8
{{- end }}

{{/* Labels that select the operator pods; never change them in an upgrade. */}}
{{- define "mk8-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mk8-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount as an RBAC subject. */}}
{{- define "mk8-operator.subject" -}}
- kind: ServiceAccount
  name: {{ include "mk8-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{- define "mk8-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mk8-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mk8-operator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Flags of mk8-operator (src/operator/config.rs). tests/e2e/chart.rs parses the rendered list with
the binary's own parser, so a renamed flag fails a test instead of a rollout.
*/}}
{{- define "mk8-operator.args" -}}
- --admin-addr=0.0.0.0:{{ .Values.adminPort }}
- --leader-election={{ .Values.leaderElection.enabled }}
{{- if .Values.leaderElection.enabled }}
- --leader-election-namespace={{ .Release.Namespace }}
- --leader-election-lease={{ .Values.leaderElection.leaseName }}
{{- end }}
{{- with .Values.watchNamespace }}
- --watch-namespace={{ . }}
{{- end }}
- --argocd-namespace={{ .Values.argocdNamespace }}
{{- with .Values.chartMirror }}
- --chart-mirror={{ . }}
{{- end }}
- --concurrency={{ .Values.concurrency }}
- --log-level={{ .Values.logging.level }}
- --log-format={{ .Values.logging.format }}
{{- with .Values.aws.region }}
- --aws-region={{ . }}
{{- end }}
{{- with .Values.aws.endpointUrl }}
- --aws-endpoint-url={{ . }}
{{- end }}
- --ssh-known-hosts-policy={{ .Values.ssh.knownHostsPolicy }}
{{- end }}

{{/*
Rules on objects in the watched namespaces: a ClusterRole when all namespaces are watched, a Role
in watchNamespace otherwise. Each rule names the code that needs it.
*/}}
{{- define "mk8-operator.rules.watched" -}}
# The four controllers watch their kinds; the finalizer is added and removed with a JSON patch
# (kube-runtime finalizer). The operator never replaces a whole object, so no update.
- apiGroups: ["mk8.io"]
  resources: ["clusters", "nodepools", "stacks", "clusterprofileviews"]
  verbs: ["get", "list", "watch", "patch"]
# Status is written with server-side apply (src/controller/status.rs).
- apiGroups: ["mk8.io"]
  resources: ["clusters/status", "nodepools/status", "stacks/status", "clusterprofileviews/status"]
  verbs: ["patch"]
# get/list/watch: AWS and SSH credentials Secrets (Cluster, NodePool). patch: the Cluster
# controller owns `<cluster>-kubeconfig` and RKE2 join-token Secrets, written with server-side
# apply and removed through owner references. create/update/delete: ArgoCD cluster Secrets of
# Stack delivery when ArgoCD runs in a watched namespace (src/controller/stack/mod.rs).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# Events from the kube-runtime Recorder (events.k8s.io), and the core group for older clients.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
# Publishing a ClusterProfile per managed Cluster, spec and status by server-side apply
# (src/controller/cluster/profile.rs); removed with the Cluster through its owner reference.
- apiGroups: ["multicluster.x-k8s.io"]
  resources: ["clusterprofiles"]
  verbs: ["create", "update", "patch", "delete"]
- apiGroups: ["multicluster.x-k8s.io"]
  resources: ["clusterprofiles/status"]
  verbs: ["patch"]
{{- end }}

{{/* Stack delivery through ArgoCD Applications, in ArgoCD's namespace. */}}
{{- define "mk8-operator.rules.argocd" -}}
# Stack delivery through ArgoCD Applications.
- apiGroups: ["argoproj.io"]
  resources: ["applications"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
{{- end }}

{{/*
The Stack and ClusterProfileView controllers read ClusterProfiles in all namespaces whoever
manages them (src/controller/mod.rs watches them cluster-wide even with --watch-namespace).
*/}}
{{- define "mk8-operator.rules.fleet" -}}
# Stacks select clusters and views fan out over ClusterProfiles in every namespace.
- apiGroups: ["multicluster.x-k8s.io"]
  resources: ["clusterprofiles"]
  verbs: ["get", "list", "watch"]
{{- end }}
