#!/usr/bin/env bash
# teatree serve as a user runs it: start, a second serve refused, submit and wait, status,
# query and pull, exit codes and --output json for scripts, SIGTERM stops everything, and
# clients then say there is no server.
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
# Runs teatree with stdout in $out, stderr in $err and the exit code in $rc.
tt() { rc=0; out=$("$teatree" "$@" 2>"$data/stderr") || rc=$?; err=$(cat "$data/stderr"); }
expect_rc() { [[ "$rc" == "$1" ]] || fail "$2: exit $rc, expected $1; stdout: $out; stderr: $err"; }
# The JSON a command printed ($out: one document, or one a line) has what the filter asks of at
# least one document; `select` picks one out.
expect_json() { jq -s -e "map($1) | any" >/dev/null <<<"$out" || fail "$2: $out"; }

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
tt submit -d "$data" --model shop append --table orders --rows '[[3,"x"]]' --wait
expect_rc 3 "a rejected request"
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
# pull makes no directories, and leaves nothing at -o when it fails.
tt pull -d "$data" --model shop -o "$data/laptop/shop.duckdb"
expect_rc 2 "pull into a missing directory"
grep -q -- "-o/--output-file .*laptop/shop.duckdb: directory .*laptop does not exist" <<<"$err" ||
  fail "pull into a missing directory said: $err"
[[ ! -e "$data/laptop" ]] || fail "pull made a directory"
mkdir "$data/laptop"
tt pull -d "$data" --model shop --version 99 -o "$data/laptop/shop.duckdb"
expect_rc 5 "pull of a version that is not retained"
[[ -z "$(ls -A "$data/laptop")" ]] || fail "a failed pull left files: $(ls -A "$data/laptop")"
"$teatree" pull -d "$data" --model shop -o "$data/laptop/shop.duckdb" 2>/dev/null | grep -q "version 2" ||
  fail "pull"
tt pull -d "$data" --model shop -o "$data/laptop/again.duckdb" --output json
expect_rc 0 "pull --output json"
expect_json '.model == "shop" and .version == 2 and .bytes > 0 and (.sha256 | length) == 64 and (.path | endswith("laptop/again.duckdb"))' "pull json"
[[ "$(sha256sum <"$data/laptop/again.duckdb" | cut -d' ' -f1)" == "$(jq -r .sha256 <<<"$out")" ]] ||
  fail "pulled file does not match the sha256 printed"
out=$("$teatree" inspect "$data/laptop/shop.duckdb" "SELECT count(*) AS n FROM orders")
grep -qx " *2" <<<"$out" || fail "pulled file: $out"

# For scripts: exit codes and --output json (docs/cli.md).
tt submit -d "$data" --model shop
expect_rc 2 "submit without an op"
tt submit -d "$data" --model shop --no-such-flag
expect_rc 2 "an unknown flag"
tt query -d "$data" --model shop --format csv --output json "SELECT 1"
expect_rc 2 "--format csv with --output json"
tt submit -d "$data" --model shop append --table orders --rows '[[1,' --output json
expect_rc 2 "--rows that is not JSON"
expect_json '.exit_code == 2 and (.error | test("--rows"))' "usage error as JSON"
tt query -d "$data" --model nosuch "SELECT 1"
expect_rc 5 "query of a model that does not exist"
tt submit -d "$data" --model shop append --table orders --rows '[[10,1.0]]' --output json
expect_rc 0 "submit --output json"
expect_json '.model == "shop" and (.request_id | startswith("cli-")) and .sequence > 0 and .duplicate == false' "submit json"
tt submit -d "$data" --model shop append --table orders --rows '[[11,1.0]]' --wait --output json
expect_rc 0 "submit --wait --output json"
expect_json '.type == "outcome" and .status == "applied" and .rows == 1 and .version >= 3 and .sequence > 0' "outcome json"
tt submit -d "$data" --model shop query --sql 'SELECT count(*) AS n FROM orders' --wait --output json
expect_json '.op == "query" and .result == [{"n": 4}]' "query outcome json"
# JSON lines from stdin: one applied, one rejected; a line the codec refuses is never sent.
out=$(printf '%s\n' '{"model":"shop","request_id":"stdin-1","op":"append","table":"orders","rows":[[20,1.5]]}' \
  '{"model":"shop","request_id":"stdin-2","op":"append","table":"orders","rows":[[21,"x"]]}' \
  '{"model":"shop","op":"append"}' |
  "$teatree" submit -d "$data" --file - --wait --output json) && fail "stdin with a rejection exited 0"
[[ "$(jq -s length <<<"$out")" == 3 ]] || fail "stdin submit: $out"
expect_json 'select(.request_id == "stdin-1") | .status == "applied"' "stdin applied"
expect_json 'select(.request_id == "stdin-2") | .status == "rejected"' "stdin rejected"
expect_json 'select(.line == 3) | .status == "rejected" and (.error | length) > 0' "stdin invalid line"
written=$(jq 'select(.request_id == "stdin-1") | .version' <<<"$out")
printf '%s\n' 'not json' '{"op":"append"}' >"$data/bad.jsonl"
tt submit -d "$data" --file "$data/bad.jsonl"
expect_rc 3 "a file of invalid lines only"
grep -q "bad.jsonl:1: not submitted" <<<"$out" || fail "invalid lines: $out"
tt status -d "$data" --output json
expect_json '.models[] | select(.model == "shop") | .committed_version >= '"$written"' and .lag >= 0 and .manager.holder != null' "status json"
expect_json '.serve.flight_url | startswith("grpc://")' "status json endpoints"
tt model list -d "$data" --output json
expect_json '.models | index("shop") != null' "model list json"
tt model create -d "$data" --model shop --output json
expect_json '.model == "shop" and .created == false' "model create json"
tt query -d "$data" --model shop --output json "SELECT id FROM orders WHERE id < 3 ORDER BY id"
expect_json '.model == "shop" and .version >= '"$written"' and .rows == [{"id": 1}, {"id": 2}]' "query json"
tt versions -d "$data" --model shop --output json
expect_json '.model == "shop" and (.versions | length) >= 1 and (.versions[0].sha256 | length) == 64' "versions json"
tt catalog -d "$data" --output json
expect_json '.models[] | select(.model == "shop") | .tables[0].table == "orders"' "catalog json"

# Read your writes: a read given the version of a write sees it, published yet or not.
for i in 1 2 3; do
  id=$((100 + i))
  tt submit -d "$data" --model shop append --table orders --rows "[[$id,1.0]]" --wait --output json
  v=$(jq .version <<<"$out")
  tt query -d "$data" --model shop --min-version "$v" --output json "SELECT count(*) AS n FROM orders WHERE id = $id"
  expect_rc 0 "query --min-version"
  expect_json ".version >= $v and .rows == [{\"n\": 1}]" "query --min-version $v"
  tt pull -d "$data" --model shop --min-version "$v" -o "$data/laptop/ryw.duckdb" --output json
  expect_rc 0 "pull --min-version"
  expect_json ".version >= $v" "pull --min-version $v"
  [[ "$("$teatree" inspect "$data/laptop/ryw.duckdb" "SELECT count(*) FROM orders WHERE id = $id" | sed -n 3p | tr -d ' ')" == 1 ]] ||
    fail "pulled version $(jq .version <<<"$out") lacks write $id"
done
tt submit -d "$data" --model shop append --table orders --rows '[[200,1.0]]' --wait=published --output json
expect_rc 0 "submit --wait=published"
expect_json '.status == "applied" and .published_version >= .version' "--wait=published"
written=$(jq .version <<<"$out")
tt submit -d "$data" --model shop append --table orders --rows '[[200,1.0]]' --wait=publish
expect_rc 2 "--wait=publish"
tt query -d "$data" --model shop --min-version 1000 --wait-ms 300 "SELECT 1"
expect_rc 4 "a version that does not come"
grep -q "has no version 1000 or newer after 300 ms: it reads at version $written" <<<"$err" ||
  fail "min-version timeout said: $err"
tt pull -d "$data" --model shop --min-version 1000 --wait-ms 300 -o "$data/laptop/late.duckdb"
expect_rc 4 "a pull of a version that does not come"
grep -q "newest published $written" <<<"$err" || fail "pull timeout said: $err"
[[ ! -e "$data/laptop/late.duckdb" ]] || fail "a pull that timed out left a file"
tt status -d "$data" --output json
expect_json ".models[] | select(.model == \"shop\") | .published_version >= $written and .lag == .committed_version - .published_version" "status lag"

# A model on the Arrow engine, chosen by its first create_table: the same requests and reads.
out=$("$teatree" submit -d "$data" --model ledger create_table --table entries --engine arrow \
  --schema '[{"name":"id","type":"BIGINT"},{"name":"amount","type":"DECIMAL(10,2)"}]' \
  --primary-key id --wait)
grep -q "create_table applied" <<<"$out" || fail "arrow create_table: $out"
"$teatree" submit -d "$data" --model ledger append --table entries \
  --rows '[[1,"2.50"],[2,"4.00"],[3,"1.25"]]' --wait | grep -q "applied .*rows=3" || fail "arrow append"
tt submit -d "$data" --model ledger append --table entries --rows '[[3,"9"]]' --wait
expect_rc 3 "arrow duplicate"
grep -q 'rejected .*duplicate key "3"' <<<"$out" || fail "arrow duplicate: $out"
"$teatree" submit -d "$data" --model ledger delete --table entries \
  --where '{"call":"equal","args":[{"field":"id"},{"literal":2}]}' --wait | grep -q "applied .*rows=1" || fail "arrow delete"
tt submit -d "$data" --model ledger create_table --table more --engine duckdb \
  --schema '[{"name":"id","type":"BIGINT"}]' --wait
expect_rc 3 "engine switch"
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
code=0
out=$("$teatree" submit -d "$data" --model ledger alter_table --table entries \
  --changes '[{"drop_column":"id"}]' --wait) || code=$?
[[ $code -eq 3 ]] || fail "a rejected alter_table exits 3, not $code"
grep -q "rejected .*part of the primary key" <<<"$out" || fail "alter_table of a key: $out"
out=$("$teatree" query -d "$data" --model ledger --format json \
  "SELECT id, total::VARCHAR AS total, note FROM entries ORDER BY id")
[[ "$(tr -d '\n' <<<"$out")" == '[{"id":1,"note":null,"total":"2.50"},{"id":3,"note":null,"total":"1.25"}]' ]] ||
  fail "altered table: $out"
code=0
out=$("$teatree" submit -d "$data" --model ledger drop_table --table entrie --wait) || code=$?
[[ $code -eq 3 ]] || fail "a rejected drop_table exits 3, not $code"
grep -q "rejected .*table entrie does not exist in model ledger (its tables: entries" <<<"$out" ||
  fail "drop_table of a missing table: $out"
out=$("$teatree" submit -d "$data" --model ledger drop_table --table entries --wait)
grep -q "drop_table .*applied" <<<"$out" || fail "drop_table: $out"
out=$("$teatree" query -d "$data" --model ledger "SELECT * FROM entries" 2>&1) && fail "dropped table read"
grep -q "there is no table 'entries'" <<<"$out" || fail "read of a dropped table: $out"

# Files from this machine, of any size: uploaded to serve, then named by a small request.
printf 'id,amount\n500,1.5\n501,2.5\n' >"$data/more.csv"
tt submit -d "$data" --model shop append --table orders --upload "$data/more.csv" --wait --output json
expect_rc 0 "append --upload"
expect_json '.status == "applied" and .rows == 2' "append --upload"
written=$(jq .version <<<"$out")
"$teatree" query -d "$data" --model shop --format csv "SELECT count(*) AS n FROM orders WHERE id >= 500" |
  grep -qx 2 ||
  fail "uploaded rows are not in the model"
printf 'id,amount\n502,abc\n' >"$data/bad.csv"
tt submit -d "$data" --model shop append --table orders --upload "$data/bad.csv" --wait
expect_rc 3 "a rejected upload"
tt submit -d "$data" --model shop append --table orders --upload "$data/more.txt"
expect_rc 2 "an upload of unknown format"
grep -q "give --format parquet, csv, arrow or json" <<<"$err" || fail "unknown format: $err"
tt submit -d "$data" --model nosuch append --table orders --upload "$data/more.csv"
expect_rc 5 "an upload for a model that does not exist"
for _ in $(seq 100); do [[ -z "$(ls -A "$data/staging/shop")" ]] && break; sleep 0.1; done
[[ -z "$(ls -A "$data/staging/shop")" ]] || fail "uploads left behind: $(ls -A "$data/staging/shop")"

# Notifications are kept: a watch replays them from a version (or a time) on, then goes on
# live; it gives up with exit 4 once the server is gone for --reconnect-timeout.
rc=0
out=$(timeout 3 "$teatree" watch -d "$data" --model shop --since 1 --output json) || rc=$?
[[ $rc -eq 124 ]] || fail "watch --since stopped by itself ($rc): $out"
expect_json 'select(.type == "outcome" and .op == "create_table")' "watch --since 1 replays"
tt watch -d "$data" --model shop --since yesterday
expect_rc 2 "watch --since of a bad value"
"$teatree" watch -d "$data" --model shop --reconnect-timeout 1 >/dev/null 2>"$data/watch.err" &
watcher=$!

kill -TERM "$serve"
wait "$serve" || fail "serve exited with $? after SIGTERM: $(cat "$data/serve.out")"
serve=""
grep -q "teatree serve: stopped" "$data/serve.out" || fail "no clean stop: $(cat "$data/serve.out")"
[[ ! -f "$data/serve.json" ]] || fail "serve.json left behind"
for _ in $(seq 150); do kill -0 "$watcher" 2>/dev/null || break; sleep 0.1; done
kill -0 "$watcher" 2>/dev/null && { kill -KILL "$watcher"; fail "watch ran on without a server"; }
rc=0
wait "$watcher" || rc=$?
[[ $rc -eq 4 ]] || fail "watch without a server exits 4, not $rc: $(cat "$data/watch.err")"
grep -q "manager stopped at version $written, lease released" "$data/logs/manager-shop.log" ||
  fail "manager did not stop cleanly: $(cat "$data/logs/manager-shop.log")"
tt submit -d "$data" --model shop query --sql 'SELECT 1'
expect_rc 4 "submit without server"
grep -q "no Teatree server found" <<<"$err" || fail "without server: $err"
tt status -d "$data" --output json
expect_rc 4 "status without server"
expect_json '.exit_code == 4 and (.error | test("no Teatree server found"))' "error as JSON"
echo "serve test passed"
