#!/usr/bin/env bash
# teatree serve as a user runs it: start, a second serve refused, submit and wait, status,
# query and pull, SIGTERM stops everything, and clients then say there is no server.
set -euo pipefail
teatree=${1:?usage: serve_test.sh path/to/teatree}
data=$(mktemp -d /tmp/teatree-serve-test-XXXXXX)
serve=""
cleanup() {
  [[ -n "$serve" ]] && kill -KILL "$serve" 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$teatree" serve --data-dir "$data" --lease-ttl-ms 2000 --hot-mb 64 >"$data/serve.out" 2>&1 &
serve=$!
for _ in $(seq 300); do [[ -f "$data/serve.json" ]] && break; sleep 0.1; done
[[ -f "$data/serve.json" ]] || fail "serve.json not written: $(cat "$data/serve.out")"

second=$("$teatree" serve --data-dir "$data" 2>&1) && fail "a second serve started"
grep -q "another teatree serve is running" <<<"$second" || fail "second serve said: $second"

out=$("$teatree" submit -d "$data" --model shop create_table --table orders \
  --schema '[{"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"}]' \
  --primary-key id --wait)
grep -q "create_table applied" <<<"$out" || fail "create_table: $out"
out=$("$teatree" submit -d "$data" --model shop append --table orders \
  --rows '[[1,2.5],[2,4.0]]' --wait)
grep -q "append .*applied .*rows=2" <<<"$out" || fail "append: $out"
out=$("$teatree" submit -d "$data" --model shop append --table orders --rows '[[3,"x"]]' --wait)
grep -q "rejected .*expected DOUBLE" <<<"$out" || fail "bad append: $out"
out=$("$teatree" submit -d "$data" --model shop query --sql 'SELECT sum(amount) AS total FROM orders' --wait)
grep -q "6.5" <<<"$out" || fail "query: $out"
out=$("$teatree" status -d "$data")
grep -q "^shop .*manager .*pid" <<<"$out" || fail "status: $out"
grep -q "every model (teatree serve): grpc://127.0.0.1:" <<<"$out" || fail "status endpoints: $out"
grep -q "every model (teatree serve): http://127.0.0.1:" <<<"$out" || fail "status endpoints: $out"

# Reads over Flight: the live model through serve, in every format; writes refused; a pull.
out=$("$teatree" query -d "$data" --model shop "SELECT sum(amount) AS total FROM orders")
grep -q "6.5" <<<"$out" && grep -q "(model shop at version 2)" <<<"$out" || fail "query: $out"
out=$("$teatree" query -d "$data" --model shop --format csv "SELECT id, amount FROM orders ORDER BY id")
[[ "$out" == $'"id","amount"\n1,2.5\n2,4' ]] || fail "query csv: $out"
out=$("$teatree" query -d "$data" --model shop --format json "SELECT id FROM orders ORDER BY id")
[[ "$(tr -d '\n' <<<"$out")" == '[{"id":1},{"id":2}]' ]] || fail "query json: $out"
out=$("$teatree" query -d "$data" --model shop "DELETE FROM orders" 2>&1) && fail "a write was read"
grep -q "only SELECT is allowed, not DELETE" <<<"$out" || fail "write: $out"
out=$("$teatree" query -d "$data" --model shop --format parquet "SELECT 1" 2>&1) && fail "bad format"
grep -q "use table, csv, json or arrow" <<<"$out" || fail "format: $out"
for _ in $(seq 100); do ls "$data"/models/shop/versions/v2.duckdb >/dev/null 2>&1 && break; sleep 0.1; done
"$teatree" pull -d "$data" --model shop -o "$data/laptop/shop.duckdb" 2>/dev/null | grep -q "version 2" ||
  fail "pull"
out=$("$teatree" inspect "$data/laptop/shop.duckdb" "SELECT count(*) AS n FROM orders")
grep -qx " *2" <<<"$out" || fail "pulled file: $out"

# A model on the Arrow engine, chosen by its first create_table: the same requests and reads.
out=$("$teatree" submit -d "$data" --model ledger create_table --table entries --engine arrow \
  --schema '[{"name":"id","type":"BIGINT"},{"name":"amount","type":"DECIMAL(10,2)"}]' \
  --primary-key id --wait)
grep -q "create_table applied" <<<"$out" || fail "arrow create_table: $out"
"$teatree" submit -d "$data" --model ledger append --table entries \
  --rows '[[1,"2.50"],[2,"4.00"],[3,"1.25"]]' --wait | grep -q "applied .*rows=3" || fail "arrow append"
out=$("$teatree" submit -d "$data" --model ledger append --table entries --rows '[[3,"9"]]' --wait)
grep -q 'rejected .*duplicate key "3"' <<<"$out" || fail "arrow duplicate: $out"
"$teatree" submit -d "$data" --model ledger delete --table entries \
  --where '{"call":"equal","args":[{"field":"id"},{"literal":2}]}' --wait | grep -q "applied .*rows=1" || fail "arrow delete"
out=$("$teatree" submit -d "$data" --model ledger create_table --table more --engine duckdb \
  --schema '[{"name":"id","type":"BIGINT"}]' --wait)
grep -q "rejected .*uses the arrow engine" <<<"$out" || fail "engine switch: $out"
out=$("$teatree" query -d "$data" --model ledger "SELECT sum(amount) AS total FROM entries")
grep -q "3.75" <<<"$out" && grep -q "(model ledger at version 3)" <<<"$out" || fail "arrow query: $out"
out=$("$teatree" submit -d "$data" --model ledger invoke --function rollup \
  --args '{"table":"entries","keys":"id","value":"amount"}' --wait)
grep -q "invoke .*applied .*rows=3" <<<"$out" && grep -q "3.75" <<<"$out" || fail "arrow invoke: $out"
out=$("$teatree" query -d "$data" --model ledger --format csv --function rollup \
  --args '{"table":"entries","keys":"id","value":"amount"}')
grep -q '^3,1,1.25,' <<<"$out" || fail "arrow function read: $out"
grep -q "^ledger  *arrow " <<<"$("$teatree" status -d "$data")" || fail "status: no arrow engine"
# The manager got serve's --hot-mb and keeps hot copies (Arrow IPC) beside the Parquet files.
pid=$(sed -n 's/^ledger .*pid \([0-9]*\).*/\1/p' <<<"$("$teatree" status -d "$data")")
tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--hot-mb 64" || fail "manager args: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
for _ in $(seq 100); do ls "$data"/models/ledger/datasets/entries/*.arrow >/dev/null 2>&1 && break; sleep 0.1; done
ls "$data"/models/ledger/datasets/entries/*.arrow >/dev/null 2>&1 || fail "no hot copies: $(ls -R "$data/models/ledger")"
for _ in $(seq 100); do ls "$data"/models/ledger/versions/v3.duckdb >/dev/null 2>&1 && break; sleep 0.1; done
"$teatree" pull -d "$data" --model ledger -o "$data/laptop/ledger.duckdb" 2>/dev/null |
  grep -q "version 3" || fail "arrow pull"
out=$("$teatree" inspect "$data/laptop/ledger.duckdb" "SELECT count(*) AS n FROM entries")
grep -qx " *2" <<<"$out" || fail "pulled arrow file: $out"
# The version file on the server links the Parquet files; the pulled one stands alone.
out=$("$teatree" inspect "$data/laptop/ledger.duckdb" \
  "SELECT count(*) AS n FROM duckdb_views() WHERE NOT internal")
grep -qx " *0" <<<"$out" || fail "pulled arrow file has views: $out"

# Schema changes through the queue: alter_table with --changes, drop_table, and their refusals.
out=$("$teatree" submit -d "$data" --model ledger alter_table --table entries \
  --changes '[{"add_column":"note","type":"VARCHAR"},{"rename_column":"amount","to":"total"}]' --wait)
grep -q "alter_table .*applied" <<<"$out" || fail "alter_table: $out"
out=$("$teatree" submit -d "$data" --model ledger alter_table --table entries \
  --changes '[{"drop_column":"id"}]' --wait)
grep -q "rejected .*part of the primary key" <<<"$out" || fail "alter_table of a key: $out"
out=$("$teatree" query -d "$data" --model ledger --format json \
  "SELECT id, total::VARCHAR AS total, note FROM entries ORDER BY id")
[[ "$(tr -d '\n' <<<"$out")" == '[{"id":1,"note":null,"total":"2.50"},{"id":3,"note":null,"total":"1.25"}]' ]] ||
  fail "altered table: $out"
out=$("$teatree" submit -d "$data" --model ledger drop_table --table entrie --wait)
grep -q "rejected .*table entrie does not exist in model ledger (its tables: entries" <<<"$out" ||
  fail "drop_table of a missing table: $out"
out=$("$teatree" submit -d "$data" --model ledger drop_table --table entries --wait)
grep -q "drop_table .*applied" <<<"$out" || fail "drop_table: $out"
out=$("$teatree" query -d "$data" --model ledger "SELECT * FROM entries" 2>&1) && fail "dropped table read"
grep -q "there is no table 'entries'" <<<"$out" || fail "read of a dropped table: $out"

kill -TERM "$serve"
wait "$serve" || fail "serve exited with $? after SIGTERM: $(cat "$data/serve.out")"
serve=""
grep -q "teatree serve: stopped" "$data/serve.out" || fail "no clean stop: $(cat "$data/serve.out")"
[[ ! -f "$data/serve.json" ]] || fail "serve.json left behind"
grep -q "manager stopped at version 2, lease released" "$data/logs/manager-shop.log" ||
  fail "manager did not stop cleanly: $(cat "$data/logs/manager-shop.log")"
out=$("$teatree" submit -d "$data" --model shop query --sql 'SELECT 1' 2>&1) && fail "submit without server"
grep -q "no Teatree server found" <<<"$out" || fail "without server: $out"
echo "serve test passed"
