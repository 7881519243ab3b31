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

{{/* key=value pairs of a map, as WINDFLOW_STORAGE_CLASSES and WINDFLOW_IDENTITY_MAP take them. */}}
{{- define "windflow.storageClasses" -}}
{{- $pairs := list -}}
{{- range $type, $class := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $type $class) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* The names the API server reaches the webhook at, as a JSON list: the URL's host, or the Service's names. */}}
{{- define "windflow.webhookHosts" -}}
{{- if .Values.admission.url -}}
{{- list (urlParse .Values.admission.url).hostname | toJson -}}
{{- else -}}
{{- $service := printf "%s-webhook" (include "windflow.name" .) -}}
{{- list (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s.svc.cluster.local" $service .Release.Namespace) | toJson -}}
{{- end -}}
{{- end -}}

{{/* A webhook's clientConfig: the URL when set (an operator outside the cluster), else the Service. */}}
{{- define "windflow.webhookClient" -}}
{{- if .root.Values.admission.url -}}
url: {{ printf "%s%s" (trimSuffix "/" .root.Values.admission.url) .path | quote }}
{{- else -}}
service:
  name: {{ .service }}
  namespace: {{ .root.Release.Namespace }}
  path: {{ .path }}
  port: 443
{{- end }}
{{- end }}
{{/* What a webhook matches: every WindFlow kind (no subresource: status writes are never sent), requests of anyone but the operator. */}}
{{- define "windflow.webhookMatch" -}}
rules:
  - apiGroups: ["windflow.io"]
    apiVersions: ["*"]
    resources: ["*"]
    operations: {{ .operations }}
    scope: "*"
matchPolicy: Equivalent
matchConditions:
  - name: not-the-operator
    expression: {{ printf "request.userInfo.username != '%s'" .operator | quote }}
admissionReviewVersions: [v1]
timeoutSeconds: {{ .root.Values.admission.timeoutSeconds }}
{{- end }}

{{/*
The one namespace of Users' password Secrets: never the release namespace, which holds the
database URL and the webhook's key.
*/}}
{{- define "windflow.userSecretNamespace" -}}
{{- $namespace := required "security.userSecretNamespace is required" .Values.security.userSecretNamespace -}}
{{- if eq $namespace .Release.Namespace -}}
{{- fail (printf "security.userSecretNamespace %q is the release namespace, which holds the database URL and the webhook's key: a User's author could name either as a password Secret. Give Users' Secrets a namespace of their own." $namespace) -}}
{{- end -}}
{{- $namespace -}}
{{- end }}

{{/*
The Secret holding the migration role's URL; empty without one (the operator migrates itself).
*/}}
{{- define "windflow.migrationSecret" -}}
{{- if .Values.database.migration.existingSecret -}}
{{- .Values.database.migration.existingSecret -}}
{{- else if .Values.database.migration.url -}}
{{- include "windflow.name" . }}-migration
{{- end -}}
{{- end }}
