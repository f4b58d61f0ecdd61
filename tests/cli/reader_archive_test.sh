#!/usr/bin/env bash
# A read replica on a disk of its own: `teatree reader --from-archive` fetches each version
# file the managers mirror into the archive (--mirror-versions), checked against its SHA-256,
# serves it over Flight, and moves to newer versions as they arrive.
set -euo pipefail
source "$(dirname "$0")/test_lib.sh" reader-archive "$1"
start_nats_server
nats="nats://127.0.0.1:$nats_port"
"$teatree" serve --nats "$nats" --data-dir "$work/data" --archive "$work/archive" \
  --mirror-versions >"$work/serve.log" 2>&1 &
pids+=("$!")
for _ in $(seq 300); do [[ -f "$work/data/serve.json" ]] && break; sleep 0.1; done
[[ -f "$work/data/serve.json" ]] || fail "serve did not start: $(cat "$work/serve.log")"
submit() { "$teatree" submit -d "$work/data" --model shop "$@" --wait=published --timeout-s 60; }
submit create_table --table orders --schema '[{"name":"id","type":"BIGINT"}]' --primary-key id \
  >/dev/null || fail "create_table"
submit append --table orders --rows '[[1],[2]]' >/dev/null || fail "append"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$teatree" reader --model shop --from-archive "$work/archive" --data-dir "$work/replica" \
  --nats "$nats" --flight-port "$port" --http-port -1 >"$work/reader.log" 2>&1 &
pids+=("$!")
count() { "$teatree" query --url "grpc://127.0.0.1:$port" --model shop --format csv \
  "SELECT count(*) AS n FROM orders" 2>/dev/null | tail -1; }
for _ in $(seq 300); do [[ "$(count)" == 2 ]] && break; sleep 0.1; done
[[ "$(count)" == 2 ]] || fail "the replica does not serve the archived version: $(cat "$work/reader.log")"
submit append --table orders --rows '[[3]]' >/dev/null || fail "second append"
for _ in $(seq 300); do [[ "$(count)" == 3 ]] && break; sleep 0.1; done
[[ "$(count)" == 3 ]] || fail "the replica did not move to the new version: $(cat "$work/reader.log")"
[[ $(ls "$work/replica/models/shop/versions" | grep -c '\.duckdb$') -le 2 ]] ||
  fail "the replica keeps every version: $(ls "$work/replica/models/shop/versions")"
echo "reader archive test passed"
