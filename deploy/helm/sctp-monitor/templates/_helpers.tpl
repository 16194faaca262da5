{{/* Names and labels shared by the templates. */}}
{{- define "sctp-monitor.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sctp-monitor.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sctp-monitor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sctp-monitor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sctp-monitor.labels" -}}
{{ include "sctp-monitor.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "sctp-monitor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sctp-monitor.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the listener's certificate (tls.crt, tls.key, ca.crt). */}}
{{- define "sctp-monitor.tlsSecret" -}}
{{- .Values.webConfig.tls.secretName | default (printf "%s-tls" (include "sctp-monitor.fullname" .)) -}}
{{- end -}}

{{/* The Secret with the web configuration and the scrape credential. */}}
{{- define "sctp-monitor.authSecret" -}}
{{- .Values.webConfig.auth.existingSecret | default (printf "%s-web" (include "sctp-monitor.fullname" .)) -}}
{{- end -}}

{{/* The name in the listener's certificate that scrapers check. */}}
{{- define "sctp-monitor.serverName" -}}
{{- .Values.webConfig.tls.serverName | default (printf "%s.%s.svc" (include "sctp-monitor.fullname" .) .Release.Namespace) -}}
{{- end -}}

{{/* How Prometheus Operator scrapes the listener (an endpoint's fields). */}}
{{- define "sctp-monitor.scrapeSecurity" -}}
{{- if .Values.webConfig.enabled -}}
scheme: https
tlsConfig:
  serverName: {{ include "sctp-monitor.serverName" . }}
  ca:
    secret:
      name: {{ include "sctp-monitor.tlsSecret" . }}
      key: ca.crt
basicAuth:
  username:
    name: {{ include "sctp-monitor.authSecret" . }}
    key: username
  password:
    name: {{ include "sctp-monitor.authSecret" . }}
    key: password
{{- end }}
{{- end -}}

{{/* The agent's web configuration file (exporter-toolkit format). */}}
{{- define "sctp-monitor.webConfigFile" -}}
tls_server_config:
  cert_file: /etc/sctp-monitor/tls/tls.crt
  key_file: /etc/sctp-monitor/tls/tls.key
basic_auth_users:
  {{ .user }}: {{ .hash | quote }}
{{ end -}}
