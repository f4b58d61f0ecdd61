#!/usr/bin/env bash
# Teatree on Kubernetes as a user tries it, against a real kube-apiserver (scripts/
# kubernetes-testenv) whose test node agent runs each pod's container as a local process:
#   teatree serve --launcher kubernetes, a PostgreSQL catalog, models of two pod classes;
#   each gets a pod with its class's resources and a Longhorn volume claim; requests are
#   applied and read; the manager sizes DuckDB from its pod's limits; an idle pod is deleted
#   and comes back with its data; a killed pod is replaced; a restarted serve takes over the
#   running pods; a second writer of a model is refused by the lease; a pod that cannot start
#   is reported with the reason in `teatree status`.
#   usage: launcher_test.sh path/to/teatree source-dir
set -euo pipefail
source "$(dirname "$0")/../cli/test_lib.sh" kubernetes-launcher "$1"
root=${2:?usage: launcher_test.sh path/to/teatree source-dir}
kube="$work/kube"
stop_env() { "$root/scripts/kubernetes-testenv" --stop "$kube" >/dev/null 2>&1 || true; }
trap 'stop_env; cleanup' EXIT
# On failure, what serve, the node agent and the pods said.
fail() {
  echo "FAIL: $*" >&2
  for log in "$work"/*.log "$kube/logs/node-agent.log" "$kube"/node/pods/*/container.log; do
    [[ -f "$log" ]] && { echo "--- $log" >&2; tail -25 "$log" >&2; }
  done
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Waits up to $1 tenths of a second for the command after it to succeed.
eventually() {
  local tries=$1
  shift
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

# --- The cluster: API server, etcd, NATS and the test node agent; each pod runs `teatree`.
# Its settings (exported) make `teatree serve` launch pods there, as a user's shell would. ---
"$root/scripts/kubernetes-testenv" --dir "$kube" -- --default-entrypoint "$(realpath "$teatree")" \
  --pod-ip-prefix "127.0.$((RANDOM % 200 + 20))" >"$work/testenv.env" 2>"$work/testenv.log" ||
  fail "kubernetes-testenv: $(tail -20 "$work/testenv.log")"
source "$work/testenv.env"
nats="$TEATREE_TESTENV_NATS"
kubectl() { "$TEATREE_TESTENV_KUBECTL" --namespace teatree "$@"; }
pod_dir() { echo "$TEATREE_TESTENV_NODE_STATE/pods/teatree_$1"; }

# --- A PostgreSQL catalog, which serve and every pod share. ---
pg_port=$(free_port)
pgbin=/usr/lib/postgresql/15/bin
as_pg=()
[[ $(id -u) == 0 ]] && as_pg=(setpriv --reuid=postgres --regid=postgres --clear-groups)
mkdir -p "$work/pg" && chmod 755 "$work"
[[ $(id -u) == 0 ]] && chown postgres:postgres "$work/pg"
"${as_pg[@]}" "$pgbin/initdb" -D "$work/pg" -U teatree --auth=trust >"$work/initdb.log" 2>&1 ||
  fail "initdb: $(cat "$work/initdb.log")"
"${as_pg[@]}" "$pgbin/postgres" -D "$work/pg" -p "$pg_port" -k "$work/pg" \
  -c listen_addresses=127.0.0.1 >"$work/postgres.log" 2>&1 &
pids+=("$!")
eventually 100 "$pgbin/pg_isready" -h 127.0.0.1 -p "$pg_port" || fail "PostgreSQL did not start"
catalog="postgresql://teatree@127.0.0.1:$pg_port/postgres"

data="$work/serve"
# start_serve NAME [OPTION...]: a serve with its data in $work/NAME, its log in $work/NAME.log,
# its pid in served[NAME].
declare -A served
start_serve() {
  local name=$1
  shift
  "$teatree" serve --control "$catalog" --data-dir "$work/$name" --idle-stop-s 15 \
    --lease-ttl-ms 3000 "$@" >>"$work/$name.log" 2>&1 &
  served[$name]=$!
  pids+=("$!")
  eventually 300 test -f "$work/$name/serve.json" ||
    fail "serve $name did not start: $(cat "$work/$name.log")"
}
stop_serve() {
  kill -TERM "${served[$1]}"
  wait "${served[$1]}" 2>/dev/null || true
}
start_serve serve
eventually 100 grep -q "this server dispatches" "$work/serve.log" ||
  fail "serve is not dispatching: $(cat "$work/serve.log")"

schema='[{"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"}]'
"$teatree" model create -d "$data" --model big --class medium --control "$catalog" |
  grep -q "model big created, pod class medium" || fail "model create --class"
out=$("$teatree" model set-class -d "$data" --control "$catalog" big huge 2>&1) &&
  fail "an unknown class was taken"
grep -q "pod class 'huge' does not exist: use one of large, medium, small, xlarge" <<<"$out" ||
  fail "unknown class said: $out"
for model in big small_one; do
  "$teatree" submit -d "$data" --model "$model" create_table --table orders --schema "$schema" \
    --primary-key id --wait --timeout-s 60 | grep -q "applied" || fail "create_table of $model"
  "$teatree" submit -d "$data" --model "$model" append --table orders --rows '[[1,2.5],[2,4.0]]' \
    --wait --timeout-s 30 | grep -q "applied .*rows=2" || fail "append to $model"
done

# Each model has a pod sized by its class, and a Longhorn claim of the class's size (or more:
# a claim grows once its filesystem is 80% full, and here that is this machine's disk).
pod_json=$(kubectl get pod teatree-manager-big -o json) || fail "no pod for big: $(kubectl get pods 2>&1)"
jq -e '.spec.containers[0].resources == {"requests":{"cpu":"4","memory":"4Gi"},"limits":{"cpu":"4","memory":"4Gi"}}' \
  <<<"$pod_json" >/dev/null || fail "medium pod resources: $(jq .spec.containers[0].resources <<<"$pod_json")"
jq -e '.metadata.labels["teatree.dev/model"] == "big" and .metadata.labels["app.kubernetes.io/component"] == "manager"
       and (.spec.containers[0].args | index("--model")) != null
       and ([.spec.containers[0].args[] | select(test("password|token"))] | length) == 0
       and .spec.containers[0].readinessProbe.httpGet.path == "/readyz"
       and .spec.containers[0].livenessProbe.httpGet.path == "/healthz"
       and .spec.terminationGracePeriodSeconds == 30 and .status.phase == "Running"' \
  <<<"$pod_json" >/dev/null || fail "medium pod: $pod_json"
kubectl get pod teatree-manager-small-one -o json |
  jq -e '.spec.containers[0].resources.limits == {"cpu":"2","memory":"2Gi"}' >/dev/null ||
  fail "small pod resources"
kubectl get pvc teatree-model-big -o json |
  jq -e '.spec.storageClassName == "longhorn" and .status.phase == "Bound"
         and (.spec.resources.requests.storage | rtrimstr("Gi") | tonumber) >= 50' \
    >/dev/null || fail "medium volume: $(kubectl get pvc teatree-model-big -o json)"
kubectl get pvc teatree-model-small-one -o json |
  jq -e '.spec.resources.requests.storage | rtrimstr("Gi") | tonumber >= 20' >/dev/null ||
  fail "small volume"
# The manager sized DuckDB by its pod's limits, not by this machine.
grep -q "limits from the pod: 4 CPUs, 4096 MiB; DuckDB threads 4, memory limit 2048MiB" \
  "$(pod_dir teatree-manager-big)/container.log" ||
  fail "manager limits: $(grep -i limits "$(pod_dir teatree-manager-big)/container.log")"

# Reads through serve reach the live manager in its pod (the catalog has its address).
pod_ip=$(jq -r .status.podIP <<<"$pod_json")
out=$("$teatree" query -d "$data" --model big "SELECT sum(amount) AS total FROM orders")
grep -q "6.5" <<<"$out" || fail "query through serve: $out"
out=$("$teatree" query --url "grpc://$pod_ip:8815" --model big "SELECT count(*) AS n FROM orders")
grep -q "2" <<<"$out" || fail "query at the pod: $out"
out=$("$teatree" status -d "$data" --control "$catalog" --output json)
jq -e '.models[] | select(.model == "big") | .pod_class == "medium"' <<<"$out" >/dev/null ||
  fail "status: $out"

# A second writer of the model (an old pod on a partitioned node, say) is refused.
out=$("$teatree" manager --model big --nats "$nats" \
  --data-dir "$work/fenced" --control "$catalog" 2>&1) && fail "a second manager of big ran"
grep -qi "lease" <<<"$out" || fail "second manager said: $out"

# Idle pods are deleted; the model comes back in a new pod, with its data.
kubectl wait --for=delete pod/teatree-manager-small-one --timeout=60s >/dev/null ||
  fail "the idle pod stayed"
kubectl get pvc teatree-model-small-one >/dev/null || fail "the volume went with the pod"
"$teatree" submit -d "$data" --model small_one append --table orders --rows '[[3,1.0]]' \
  --wait --timeout-s 60 | grep -q "applied" || fail "append after idle"
out=$("$teatree" submit -d "$data" --model small_one query --sql 'SELECT count(*) AS n FROM orders' \
  --wait --timeout-s 30)
grep -q "3" <<<"$out" || fail "data after the pod came back: $out"

# A killed manager (kill -9 of its process) is replaced by a new pod.
"$teatree" submit -d "$data" --model big append --table orders --rows '[[5,1.0]]' \
  --wait --timeout-s 60 | grep -q "applied" || fail "append to big before the kill"
old_uid=$(kubectl get pod teatree-manager-big -o jsonpath='{.metadata.uid}')
kill -KILL "$(cat "$(pod_dir teatree-manager-big)/pid")"
new_pod() { [[ "$(kubectl get pod teatree-manager-big -o jsonpath='{.metadata.uid} {.status.phase}')" =~ ^[a-f0-9-]+\ Running$ &&
  "$(kubectl get pod teatree-manager-big -o jsonpath='{.metadata.uid}')" != "$old_uid" ]]; }
eventually 600 new_pod || fail "the killed pod was not replaced: $(kubectl get pods -o wide)"
"$teatree" submit -d "$data" --model big append --table orders --rows '[[3,1.0]]' \
  --wait --timeout-s 60 | grep -q "applied" || fail "append after the crash"

# A second serve (the other replica of a Deployment) stands by while the first dispatches;
# when the first stops, it takes over the running pod instead of starting another.
uid=$(kubectl get pod teatree-manager-big -o jsonpath='{.metadata.uid}')
start_serve standby
eventually 100 grep -q "standing by (.*dispatcher" "$work/standby.log" ||
  fail "the second serve did not stand by: $(tail "$work/standby.log")"
stop_serve serve
[[ "$(kubectl get pod teatree-manager-big -o jsonpath='{.metadata.uid}')" == "$uid" ]] ||
  fail "the pod went with serve"
eventually 150 grep -q "took over the running manager of big" "$work/standby.log" ||
  fail "the standby did not take over the pod: $(tail "$work/standby.log")"
"$teatree" submit -d "$work/standby" --model big append --table orders --rows '[[4,1.0]]' \
  --wait --timeout-s 60 | grep -q "applied" || fail "append after the takeover"
[[ "$(kubectl get pod teatree-manager-big -o jsonpath='{.metadata.uid}')" == "$uid" ]] ||
  fail "the standby replaced the running pod"
[[ $(kubectl get pods -o name | grep -c teatree-manager-big) == 1 ]] || fail "duplicate pods"
stop_serve standby

# A pod that cannot start (its Secret is missing) is reported with the reason.
start_serve serve --manager-secret missing-secret
"$teatree" model create -d "$data" --model waiting --control "$catalog" >/dev/null
"$teatree" submit -d "$data" --model waiting create_table --table t --schema "$schema" \
  --primary-key id >/dev/null
reported() {
  "$teatree" status -d "$data" --control "$catalog" |
    grep -q "waiting: its manager (pod class small) is not running yet: .*missing-secret"
}
eventually 300 reported ||
  fail "pending pod not reported: $("$teatree" status -d "$data" --control "$catalog")"
stop_serve serve
echo "kubernetes launcher test passed"
