{{/* SPDX-License-Identifier: Apache-2.0 */}}
{{- define "sockmesh.labels" -}}
app.kubernetes.io/part-of: sockmesh
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "sockmesh.image" -}}
{{- printf "%s:%s" .image.repository (default .chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* The control plane's gRPC address as agents dial it. */}}
{{- define "sockmesh.controlPlaneAddress" -}}
{{- printf "sockmesh-control.%s.svc:%d" .Release.Namespace (int .Values.controlPlane.grpcPort) -}}
{{- end -}}
