{{/* The release's full name: the release name, with the chart's name unless it has it. */}}
{{- define "session-exporter.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The labels that select the exporter's pods; app.kubernetes.io/name is the job label. */}}
{{- define "session-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "session-exporter.labels" -}}
{{ include "session-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "session-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "session-exporter.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The web config file's content: webConfig.config, with tlsSecret's files as defaults. */}}
{{- define "session-exporter.webConfig" -}}
{{- $config := deepCopy .Values.webConfig.config -}}
{{- if .Values.webConfig.tlsSecret -}}
{{- $tls := dict "cert_file" "/etc/session-exporter/tls/tls.crt" "key_file" "/etc/session-exporter/tls/tls.key" -}}
{{- $_ := set $config "tls_server_config" (merge (default (dict) (get $config "tls_server_config")) $tls) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{- define "session-exporter.tls" -}}
{{- if and .Values.webConfig.enabled (or .Values.webConfig.tlsSecret (get .Values.webConfig.config "tls_server_config")) -}}
true
{{- end -}}
{{- end -}}

{{/* The pod template: the same for the Deployment and the sharded StatefulSet. */}}
{{- define "session-exporter.podTemplate" -}}
metadata:
  labels:
    {{- include "session-exporter.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "session-exporter.serviceAccountName" . }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 15
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    fsGroup: 10001
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: session-exporter
      image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - serve
        - --config
        - /etc/session-exporter/config/config.yaml
        - --log-format
        - json
        - --config.auto-reload-interval
        - {{ .Values.autoReloadInterval | quote }}
        {{- if .Values.webConfig.enabled }}
        - --web.config.file
        - /etc/session-exporter/web/web.yml
        {{- end }}
        {{- if .Values.sharding.enabled }}
        - --shard-from-pod-name
        {{- end }}
        {{- with .Values.extraArgs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      env:
        - name: PYTHONDONTWRITEBYTECODE
          value: "1"
        {{- if .Values.sharding.enabled }}
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: SESSION_EXPORTER_TOTAL_SHARDS
          value: {{ .Values.sharding.shards | quote }}
        {{- end }}
      ports:
        - name: metrics
          containerPort: 9864
          protocol: TCP
      {{- $scheme := ternary "HTTPS" "HTTP" (eq (include "session-exporter.tls" .) "true") }}
      startupProbe:
        httpGet:
          path: /healthz
          port: metrics
          scheme: {{ $scheme }}
        periodSeconds: 2
        failureThreshold: 15
      livenessProbe:
        httpGet:
          path: /healthz
          port: metrics
          scheme: {{ $scheme }}
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 3
      readinessProbe:
        httpGet:
          {{- /* /readyz is behind basic auth, /healthz never is */}}
          path: {{ if and .Values.webConfig.enabled (get .Values.webConfig.config "basic_auth_users") }}/healthz{{ else }}/readyz{{ end }}
          port: metrics
          scheme: {{ $scheme }}
        periodSeconds: 5
        timeoutSeconds: 3
        failureThreshold: 2
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        runAsNonRoot: true
        privileged: false
        capabilities:
          drop: ["ALL"]
      volumeMounts:
        - name: config
          mountPath: /etc/session-exporter/config
          readOnly: true
        - name: keys
          mountPath: {{ .Values.keys.mountPath }}
          readOnly: true
        {{- if .Values.webConfig.enabled }}
        - name: web-config
          mountPath: /etc/session-exporter/web
          readOnly: true
        {{- if .Values.webConfig.tlsSecret }}
        - name: tls
          mountPath: /etc/session-exporter/tls
          readOnly: true
        {{- end }}
        {{- end }}
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: config
      configMap:
        name: {{ include "session-exporter.fullname" . }}
    - name: keys
      secret:
        secretName: {{ required "keys.existingSecret names the Secret of the API keys" .Values.keys.existingSecret }}
        defaultMode: 288
    {{- if .Values.webConfig.enabled }}
    - name: web-config
      secret:
        secretName: {{ include "session-exporter.fullname" . }}-web-config
        defaultMode: 288
    {{- if .Values.webConfig.tlsSecret }}
    - name: tls
      secret:
        secretName: {{ .Values.webConfig.tlsSecret }}
        defaultMode: 288
    {{- end }}
    {{- end }}
    - name: tmp
      emptyDir:
        medium: Memory
        sizeLimit: 16Mi
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
