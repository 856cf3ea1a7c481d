{{- /*
  Names and labels of nanorepo's own objects. The names are fixed (one release per
  namespace), as the jupyterhub chart's are: the jupyterhub and dask-gateway values name
  these objects and subchart values cannot be templated.
*/}}

{{- define "nanorepo.labels" -}}
app.kubernetes.io/name: nanorepo
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end }}

{{- define "nanorepo.selector" -}}
app.kubernetes.io/name: nanorepo
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- /* The storage claim: an existing one or the chart's own. */}}
{{- define "nanorepo.storageClaim" -}}
{{- .Values.storage.existingClaim | default "nanorepo-storage" }}
{{- end }}

{{- /* Where the repository storage lies inside the volume (the home's storage/). */}}
{{- define "nanorepo.storageSubPath" -}}
{{- if .Values.storage.subPath }}{{ trimSuffix "/" .Values.storage.subPath }}/{{ end }}storage
{{- end }}

{{- /* The Gateway's traefik as the hub's proxy reaches it ("" without the Gateway). */}}
{{- define "nanorepo.gatewayAddress" -}}
{{- $gw := index .Values "dask-gateway" }}
{{- if $gw.enabled }}http://traefik-{{ $gw.fullnameOverride }}:{{ dig "traefik" "service" "ports" "web" "port" 80 $gw }}{{ end }}
{{- end }}

{{- /* The image reference of {name, tag}. */}}
{{- define "nanorepo.image" -}}
{{ .name }}:{{ .tag }}
{{- end }}

{{- /*
  The pod settings every nanorepo pod shares: no Kubernetes API token, not root, no
  privilege escalation, the default seccomp profile.
*/}}
{{- define "nanorepo.podSecurity" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 1000
  runAsGroup: 1000
  fsGroup: 1000
  seccompProfile: {type: RuntimeDefault}
{{- end }}

{{- define "nanorepo.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end }}

{{- /* The environment of processes that open the repository (service, audit). */}}
{{- define "nanorepo.repositoryEnv" -}}
- name: NANOREPO_HOME
  value: /srv/nanorepo
- name: NANOREPO_STORAGE
  value: /srv/nanorepo/storage
- name: NANOREPO_DATABASE_URL
  valueFrom: {secretKeyRef: {name: nanorepo-database, key: url}}
- name: HOME
  value: /tmp
{{- end }}

{{- /* The repository volume, mounted at /srv/nanorepo (read-write: service only). */}}
{{- define "nanorepo.repositoryVolume" -}}
- name: repository
  persistentVolumeClaim:
    claimName: {{ include "nanorepo.storageClaim" . }}
{{- end }}

{{- define "nanorepo.repositoryMount" -}}
- name: repository
  mountPath: /srv/nanorepo
  {{- with .Values.storage.subPath }}
  subPath: {{ trimSuffix "/" . | quote }}
  {{- end }}
{{- end }}

{{- /* NetworkPolicy egress: DNS, and the database (the trial pod or database.cidr). */}}
{{- define "nanorepo.egressDnsAndDatabase" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- if .Values.database.trial.enabled }}
- to:
    - podSelector:
        matchLabels:
          {{- include "nanorepo.selector" (dict "component" "database") | nindent 10 }}
  ports:
    - {port: 5432, protocol: TCP}
{{- else if .Values.database.cidr }}
- to:
    - ipBlock:
        cidr: {{ .Values.database.cidr | quote }}
  ports:
    - {port: {{ .Values.database.port }}, protocol: TCP}
{{- end }}
{{- end }}
