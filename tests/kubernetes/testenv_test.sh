#!/usr/bin/env bash
# The Kubernetes test environment works as Teatree's launcher tests rely on it:
# scripts/kubernetes-testenv starts a real API server with the test node agent, which binds a
# PVC to a local directory, runs a pod's container as a local process on its own loopback pod IP
# (with $(VAR) expansion, the mount path mapped to the volume, its limits exported, readiness
# from its probe), reports a crash (kill -9) as Failed with exit code 137, restarts a crashed
# restartPolicy=Always container, completes deletions; and the teatree-launcher user gets
# exactly the rights of its Role.
#
#   tests/kubernetes/testenv_test.sh
#
# Exits 77 (skipped) when Go is absent and kube-apiserver was never built. The first run builds
# kube-apiserver (about 10 minutes); later ones take seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${TEATREE_CACHE:-$HOME/.cache/teatree}"
# shellcheck source=scripts/versions.env
source "$ROOT/scripts/versions.env"
if ! command -v go >/dev/null && [[ ! -f "$CACHE/kubernetes-$KUBERNETES_VERSION/.complete" ]]; then
  echo "SKIP: Go is not installed; it is needed once to build kube-apiserver v$KUBERNETES_VERSION"
  exit 77
fi

work=$(mktemp -d /tmp/teatree-kubernetes-test-XXXXXX)
cleanup() {
  [[ -f "$work/env/pids" ]] && "$ROOT/scripts/kubernetes-testenv" --stop "$work/env" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for log in "$work"/env/logs/node-agent.log "$work"/env/node/pods/*/container.log; do
    [[ -f "$log" ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
  done
  exit 1
}
passed=0
pass() {
  passed=$((passed + 1))
  echo "ok: $*"
}

started=$SECONDS
vars=$("$ROOT/scripts/kubernetes-testenv" --dir "$work/env")
eval "$vars"
[[ -f "$work/env/kubeconfig" && -f "$work/env/teatree.kubeconfig" ]] || fail "no kubeconfigs in $work/env"
pass "environment started in $((SECONDS - started)) s"

kubectl() { "$TEATREE_TESTENV_KUBECTL" --kubeconfig "$KUBECONFIG" -n teatree "$@"; }
launcher() { "$TEATREE_TESTENV_KUBECTL" --kubeconfig "$TEATREE_TESTENV_LAUNCHER_KUBECONFIG" "$@"; }
state="$TEATREE_TESTENV_NODE_STATE"

# --- A pod serving files from its PVC, on its own pod IP -----------------------------------
kubectl apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: web-data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
---
apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  restartPolicy: Never
  containers:
  - name: web
    image: python:3.11
    command:
    - sh
    - -c
    - >-
      mkdir -p /data/site &&
      echo "hello from $(POD_NAME)" > /data/site/index.html &&
      echo "$TEATREE_TEST_CPU_LIMIT $TEATREE_TEST_MEMORY_LIMIT" > /data/site/limits.txt &&
      exec python3 -m http.server --bind $(POD_IP) --directory /data/site 8080
    env:
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    resources:
      limits:
        cpu: 500m
        memory: 256Mi
    readinessProbe:
      httpGet:
        path: /index.html
        port: 8080
      periodSeconds: 1
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    persistentVolumeClaim:
      claimName: web-data
EOF
kubectl wait --for=condition=Ready pod/web --timeout=60s >/dev/null || fail "pod web never became Ready"
pass "pod web is Ready"

[[ $(kubectl get pvc web-data -o 'jsonpath={.status.phase}') == Bound ]] || fail "PVC web-data is not Bound"
volume=$(kubectl get pvc web-data -o 'jsonpath={.spec.volumeName}')
[[ $("$TEATREE_TESTENV_KUBECTL" --kubeconfig "$KUBECONFIG" get pv "$volume" -o 'jsonpath={.spec.hostPath.path}') == "$state/volumes/teatree/web-data" ]] ||
  fail "PV $volume does not point at $state/volumes/teatree/web-data"
[[ -f "$state/volumes/teatree/web-data/site/index.html" ]] || fail "the pod did not write into the PVC's directory"
pass "PVC web-data is Bound to $volume, the pod's /data is its directory"

ip=$(kubectl get pod web -o 'jsonpath={.status.podIP}')
[[ $ip =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "pod IP '$ip' is not a loopback address"
body=$(curl --noproxy '*' -fsS --max-time 5 "http://$ip:8080/index.html") || fail "curl cannot reach $ip:8080"
[[ $body == "hello from web" ]] || fail "the pod served '$body'"
limits=$(curl --noproxy '*' -fsS --max-time 5 "http://$ip:8080/limits.txt")
[[ $limits == "500 268435456" ]] || fail "TEATREE_TEST_CPU/MEMORY_LIMIT were '$limits', expected '500 268435456'"
pass "pod IP $ip serves the PVC's files; limits exported as 500 millicores, 268435456 bytes"

# --- A crash (kill -9) fails a restartPolicy=Never pod --------------------------------------
kill -9 "$(cat "$state/pods/teatree_web/pid")"
kubectl wait --for=jsonpath='{.status.phase}'=Failed pod/web --timeout=30s >/dev/null ||
  fail "pod web is not Failed after kill -9"
code=$(kubectl get pod web -o 'jsonpath={.status.containerStatuses[0].state.terminated.exitCode}')
[[ $code == 137 ]] || fail "exit code after kill -9 is '$code', expected 137"
pass "kill -9 made pod web Failed with exit code 137"

kubectl delete pod web --timeout=30s >/dev/null || fail "deleting pod web did not finish"
kubectl get pod web >/dev/null 2>&1 && fail "pod web still exists after deletion"
pass "pod web deleted"

# --- restartPolicy=Always restarts a crash; deletion stops a running process ----------------
kubectl run sleeper --image=busybox --restart=Always --command -- sleep 300 >/dev/null
kubectl wait --for=condition=Ready pod/sleeper --timeout=30s >/dev/null || fail "pod sleeper never became Ready"
first=$(cat "$state/pods/teatree_sleeper/pid")
kill -9 "$first"
kubectl wait --for=jsonpath='{.status.containerStatuses[0].restartCount}'=1 pod/sleeper --timeout=30s >/dev/null ||
  fail "pod sleeper was not restarted after kill -9"
kubectl wait --for=condition=Ready pod/sleeper --timeout=30s >/dev/null || fail "restarted pod sleeper is not Ready"
second=$(cat "$state/pods/teatree_sleeper/pid")
[[ $second != "$first" ]] || fail "pod sleeper's pid did not change on restart"
pass "pod sleeper restarted after kill -9 (restartCount 1)"
kubectl delete pod sleeper --grace-period=5 --timeout=30s >/dev/null || fail "deleting pod sleeper did not finish"
kill -0 "$second" 2>/dev/null && fail "pod sleeper's process $second survived its deletion"
pass "deleting pod sleeper stopped its process"

# --- The launcher's rights: exactly its Role in namespace teatree ---------------------------
can() { launcher auth can-i "$@" 2>/dev/null || true; }
[[ $(can create pods -n teatree) == yes ]] || fail "teatree-launcher cannot create pods in teatree"
[[ $(can patch pods --subresource=status -n teatree) == no ]] || fail "teatree-launcher can patch pods/status"
[[ $(can create pods -n default) == no ]] || fail "teatree-launcher can create pods in namespace default"
[[ $(can list pods --all-namespaces) == no ]] || fail "teatree-launcher can list pods in all namespaces"
launcher -n teatree run probe --image=busybox --dry-run=server -- true >/dev/null ||
  fail "teatree-launcher's server-side dry run of a pod was refused"
pass "teatree-launcher can create pods in teatree only, and cannot patch pods/status"

echo "kubernetes testenv test: $passed passed, 0 failed in $((SECONDS - started)) s"
