#!/usr/bin/env bash
# A manager's shutdown is bounded: on SIGTERM it exits 0 once its work is done, and when it
# cannot finish (its NATS server frozen mid-shutdown) it exits 1 after --shutdown-timeout-s
# instead of hanging, saying why.
set -euo pipefail
teatree=${1:?usage: shutdown_test.sh path/to/teatree}
nats_server=$(dirname "$teatree")/../libexec/teatree/nats-server
work=$(mktemp -d /tmp/teatree-shutdown-test-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listen: 127.0.0.1:%s\nmax_payload: 9437184\njetstream { store_dir: "%s/js" }\n' \
  "$port" "$work" >"$work/nats.conf"
"$nats_server" -c "$work/nats.conf" >"$work/nats.log" 2>&1 &
nats=$!
pids+=("$nats")
for _ in $(seq 100); do grep -q "Server is ready" "$work/nats.log" && break; sleep 0.1; done

start_manager() {  # LOG: a manager of model m, running once it says so
  "$teatree" manager --model m --nats "nats://127.0.0.1:$port" --data-dir "$work/data" \
    --lease-ttl-ms 2000 --shutdown-timeout-s 1 >"$1" 2>&1 &
  manager=$!
  pids+=("$manager")
  for _ in $(seq 200); do grep -q "manager running" "$1" && return 0; sleep 0.1; done
  fail "the manager did not start: $(cat "$1")"
}

start_manager "$work/first.log"
kill -TERM "$manager"
rc=0; wait "$manager" || rc=$?
[[ $rc == 0 ]] || fail "a manager with nothing to finish exited $rc: $(tail -3 "$work/first.log")"

start_manager "$work/second.log"
kill -STOP "$nats"
started=$(date +%s)
kill -TERM "$manager"
rc=0; wait "$manager" || rc=$?
took=$(($(date +%s) - started))
kill -CONT "$nats"
[[ $rc == 1 ]] || fail "a manager that could not finish exited $rc: $(tail -3 "$work/second.log")"
(( took <= 10 )) || fail "it took $took s to give up, with --shutdown-timeout-s 1"
grep -q "did not stop within 1 s of the signal" "$work/second.log" ||
  fail "it did not say why: $(tail -3 "$work/second.log")"
echo "shutdown test passed"
