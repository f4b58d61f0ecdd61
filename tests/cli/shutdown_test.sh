#!/usr/bin/env bash
# A manager's shutdown is bounded: on SIGTERM it exits 0 once its work is done, and when it
# cannot finish (its NATS server frozen mid-shutdown) it exits 1 after --shutdown-timeout-s
# instead of hanging, saying why.
set -euo pipefail
source "$(dirname "$0")/test_lib.sh" shutdown "${1:-}"
start_nats_server

start_manager() {  # LOG: a manager of model m, running once it says so
  "$teatree" manager --model m --nats "nats://127.0.0.1:$nats_port" --data-dir "$work/data" \
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
kill -STOP "$nats_pid"
started=$(date +%s)
kill -TERM "$manager"
rc=0; wait "$manager" || rc=$?
took=$(($(date +%s) - started))
kill -CONT "$nats_pid"
[[ $rc == 1 ]] || fail "a manager that could not finish exited $rc: $(tail -3 "$work/second.log")"
(( took <= 10 )) || fail "it took $took s to give up, with --shutdown-timeout-s 1"
grep -q "did not stop within 1 s of the signal" "$work/second.log" ||
  fail "it did not say why: $(tail -3 "$work/second.log")"
echo "shutdown test passed"
