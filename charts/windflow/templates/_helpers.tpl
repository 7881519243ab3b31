{{- define "windflow.name" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "windflow.labels" -}}
app.kubernetes.io/name: windflow
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "windflow.selector" -}}
app.kubernetes.io/name: windflow
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "windflow.databaseSecret" -}}
{{- if .Values.database.existingSecret -}}
{{- .Values.database.existingSecret -}}
{{- else -}}
{{- include "windflow.name" . }}-database
{{- end -}}
{{- end -}}

{{/* volumeType=StorageClass pairs, as WINDFLOW_STORAGE_CLASSES takes them. */}}
{{- define "windflow.storageClasses" -}}
{{- $pairs := list -}}
{{- range $type, $class := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $type $class) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
