{{/* Names */}}
{{- define "paywave.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "paywave.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "paywave.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "paywave.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "paywave.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "paywave.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: paywave
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "api") */}}
{{- define "paywave.selectorLabels" -}}
app.kubernetes.io/name: {{ include "paywave.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "paywave.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "paywave.secretName" -}}
{{- default (printf "%s-secrets" (include "paywave.fullname" .)) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* Non-secret settings: the ConfigMap's data, and the migration job's env. */}}
{{- define "paywave.config" -}}
DJANGO_SETTINGS_MODULE: config.settings.production
PAYWAVE_VAR_DIR: /var/lib/paywave
PAYWAVE_METRICS_ALLOW: {{ .Values.metrics.allow | quote }}
{{- if .Values.simulators.enabled }}
PAYWAVE_SIMULATOR_URL: {{ printf "http://%s-simulators:8900" (include "paywave.fullname" .) | quote }}
{{- end }}
{{- with .Values.externalServices.logstash }}
{{- if .host }}
LOGSTASH_HOST: {{ .host | quote }}
LOGSTASH_PORT: {{ .port | quote }}
LOGSTASH_TRANSPORT: {{ .transport | quote }}
{{- end }}
{{- end }}
{{- range $name, $value := .Values.config }}
{{ $name }}: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Host names Django answers to: probes and scrapes come to the pod IP. */}}
{{- define "paywave.allowedHosts" -}}
{{- $fullname := include "paywave.fullname" . -}}
{{- $hosts := list "$(POD_IP)" "localhost" "127.0.0.1" $fullname (printf "%s.%s.svc" $fullname .Release.Namespace) (printf "%s.%s.svc.cluster.local" $fullname .Release.Namespace) -}}
{{- if .Values.ingress.enabled -}}
{{- range .Values.ingress.hosts -}}
{{- $hosts = append $hosts .host -}}
{{- end -}}
{{- end -}}
{{- join "," (concat $hosts .Values.extraAllowedHosts) -}}
{{- end -}}

{{/* Env every PayWave container has besides envFrom. */}}
{{- define "paywave.env" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: DJANGO_ALLOWED_HOSTS
  value: {{ include "paywave.allowedHosts" . | quote }}
{{- end -}}

{{- define "paywave.envFrom" -}}
- configMapRef:
    name: {{ include "paywave.fullname" . }}-config
- secretRef:
    name: {{ include "paywave.secretName" . }}
{{- end -}}

{{/* Pod-level settings shared by every workload. */}}
{{- define "paywave.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .Values.serviceAccountName }}
serviceAccountName: {{ .Values.serviceAccountName }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "paywave.podAnnotations" -}}
checksum/config: {{ include "paywave.config" . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Generated once, then read back from the release's Secret on every upgrade. */}}
{{- define "paywave.keep" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "paywave.secretName" .root) -}}
{{- if .value -}}
{{- .value -}}
{{- else if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- .generated -}}
{{- end -}}
{{- end -}}

{{/* The most database connections the release may hold at once: each Deployment at
its largest (the HPA's max, else its replicas) plus its surge pod while it rolls out,
times what one pod holds (gunicorn workers x threads; a Celery worker's pool, times its
processes for the payments worker, and one more where it consumes the notifications
queue: its delivery poller's; beat and Flower at most one); the migration job one.
docs/operating.md "Database connections". */}}
{{- define "paywave.databaseConnections" -}}
{{- $api := .Values.api -}}
{{- $pods := add1 (ternary $api.autoscaling.maxReplicas $api.replicas $api.autoscaling.enabled) -}}
{{- $total := mul $pods $api.gunicorn.workers $api.gunicorn.threads -}}
{{- range $name, $worker := .Values.workers -}}
{{- $pods = add1 (ternary $worker.autoscaling.maxReplicas $worker.replicas $worker.autoscaling.enabled) -}}
{{- $processes := 1 -}}
{{- if eq $name "payments" -}}{{- $processes = int (include "paywave.paymentsProcesses" $worker) -}}{{- end -}}
{{- $poller := ternary 1 0 (has "notifications" $worker.queues) -}}
{{- $total = add $total (mul $pods (add (mul $processes $worker.concurrency) $poller)) -}}
{{- end -}}
{{- $total = add1 $total -}}{{/* beat: one replica, replaced (Recreate) */}}
{{- if .Values.flower.enabled -}}{{- $total = add $total 2 -}}{{- end -}}
{{- if .Values.migrations.enabled -}}{{- $total = add1 $total -}}{{- end -}}
{{- $total -}}
{{- end -}}

{{/* The payments worker processes of one pod at most: `processes`, else one per CPU of
its limit (rounded up, as config/payments_workers.py reads the cgroup quota). */}}
{{- define "paywave.paymentsProcesses" -}}
{{- $cpu := toString (dig "limits" "cpu" "" .resources) -}}
{{- if .processes -}}
{{- int .processes -}}
{{- else if hasSuffix "m" $cpu -}}
{{- div (add (atoi (trimSuffix "m" $cpu)) 999) 1000 | max 1 -}}
{{- else if $cpu -}}
{{- ceil (float64 $cpu) | int | max 1 -}}
{{- else -}}
{{- fail "workers.payments: set processes, or resources.limits.cpu (one worker process per CPU): without either the pod runs one per CPU of its node, and its database connections cannot be counted" -}}
{{- end -}}
{{- end -}}

{{- define "paywave.checkDatabaseConnections" -}}
{{- $most := int (include "paywave.databaseConnections" .) -}}
{{- $allowed := int .Values.externalServices.postgresql.maxConnections -}}
{{- if gt $most $allowed -}}
{{- fail (printf "this sizing may hold %d database connections, more than externalServices.postgresql.maxConnections (%d): lower replicas, HPA maxima, gunicorn workers/threads, worker concurrency or payments worker processes, or raise PostgreSQL's max_connections and the value (docs/operating.md, \"Database connections\")" $most $allowed) -}}
{{- end -}}
{{- end -}}

{{/* A NetworkPolicy peer from values: a namespaceSelector, with a podSelector if set. */}}
{{- define "paywave.peer" -}}
namespaceSelector:
  {{- toYaml .namespaceSelector | nindent 2 }}
{{- with .podSelector }}
podSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* An egress rule: `ports`, and `to` unless empty (then: any address on those ports). */}}
{{- define "paywave.egressRule" -}}
{{- with .to }}
to:
  {{- toYaml . | nindent 2 }}
{{- end }}
ports:
  {{- toYaml .ports | nindent 2 }}
{{- end -}}
