#!/usr/bin/env bash
# Runs COMMAND against a fresh Kubernetes API server (scripts/kubernetes-testenv, without the
# node agent), with KUBECONFIG (an admin) and KUBECTL set, and stops the server afterwards.
#   usage: with_testenv.sh COMMAND [ARG...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir=$(mktemp -d /tmp/teatree-kube-env-XXXXXX)
trap '"$root/scripts/kubernetes-testenv" --stop "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"' EXIT
"$root/scripts/kubernetes-testenv" --dir "$dir" --no-node-agent --no-nats >"$dir/env" 2>"$dir/testenv.log" || {
  echo "with_testenv: the test environment did not start: $(tail -20 "$dir/testenv.log")" >&2
  exit 1
}
source "$dir/env"
export KUBECONFIG
export KUBECTL="$TEATREE_TESTENV_KUBECTL"
"$@"
