#!/usr/bin/env bash
# make install as an operator uses it: install into one directory, move the tree elsewhere,
# and run it with an empty HOME and a bare PATH: `teatree doctor` passes; serve, configured
# by a config file and TEATREE_* variables alone, runs with submit and query, hands out the
# advertised host, answers /healthz and /readyz, logs JSON, and exits 0 on SIGTERM. No
# installed file names the build machine's source, build or cache directories.
set -euo pipefail
build=${1:?usage: relocatable_test.sh BUILD_DIR SOURCE_DIR CACHE_DIR}
source=${2:?}
cache=${3:?}
work=$(mktemp -d /tmp/teatree-install-test-XXXXXX)
serve=""
cleanup() {
  [[ -n "$serve" ]] && kill -KILL "$serve" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/installed" --strip >/dev/null
mv "$work/installed" "$work/moved"
prefix=$work/moved
for file in bin/teatree libexec/teatree/nats-server lib/libduckdb.so lib/libarrow.so.*; do
  compgen -G "$prefix/$file" >/dev/null || fail "the install has no $file"
done
for path in "$source" "$(realpath "$build")" "$cache"; do
  found=$(grep -rlaF "$path" "$prefix" || true)
  [[ -z "$found" ]] || fail "installed files name $path: $found"
done

mkdir "$work/home" "$work/data"
# As a fresh account would run it: nothing from this environment but a bare PATH.
run() { env -i HOME="$work/home" PATH=/usr/bin:/bin "$prefix/bin/teatree" "$@"; }
out=$(run doctor 2>&1) || fail "doctor from the moved tree: $out"
! grep -q FAIL <<<"$out" || fail "doctor from the moved tree: $out"
ldd "$prefix/bin/teatree" | grep -F "$cache" && fail "teatree loads libraries from $cache"

# serve configured as an operator would: a config file and TEATREE_* variables, no flags.
cat >"$work/teatree.toml" <<TOML
[serve]
advertise-host = "localhost"
log-format = "json"
TOML
# env execs teatree: $! is serve's own pid.
env -i HOME="$work/home" PATH=/usr/bin:/bin TEATREE_CONFIG="$work/teatree.toml" \
  TEATREE_DATA_DIR="$work/data" "$prefix/bin/teatree" serve >"$work/serve.out" 2>&1 &
serve=$!
for _ in $(seq 300); do [[ -f "$work/data/serve.json" ]] && break; sleep 0.1; done
[[ -f "$work/data/serve.json" ]] || fail "serve did not start: $(cat "$work/serve.out")"
out=$(run submit -d "$work/data" --model shop create_table --table orders \
  --schema '[{"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"}]' --wait) ||
  fail "create_table: $out"
out=$(run submit -d "$work/data" --model shop append --table orders --rows '[[1,2.5],[2,4.0]]' \
  --wait) || fail "append: $out"
out=$(run query -d "$work/data" --model shop "SELECT sum(amount) AS total FROM orders") ||
  fail "query: $out"
grep -q "6.5" <<<"$out" || fail "query: $out"
# The URLs handed out name the advertised host, and clients reach serve through them.
out=$(run status -d "$work/data") || fail "status: $out"
grep -q "grpc://localhost:" <<<"$out" && grep -q "http://localhost:" <<<"$out" ||
  fail "status does not hand out the advertised host: $out"
# Health: serve and the model's manager answer /healthz and /readyz, without a token.
out=$(run status -d "$work/data" --output json) || fail "status: $out"
for url in $(jq -r '.serve.http_url, (.models[] | select(.model == "shop") | .manager.http_url)' <<<"$out"); do
  for probe in healthz readyz; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url/$probe")
    [[ "$code" == 200 ]] || fail "$url/$probe answered $code"
  done
done
# --log-format json reaches the manager, which writes its own log file: a JSON object a line.
log=$work/data/logs/manager-shop.log
[[ -s "$log" ]] || fail "no manager log at $log: $(ls "$work/data/logs")"
jq -e -s 'length > 0 and all(.level and .time and .message) and any(.model == "shop")' "$log" \
  >/dev/null || fail "the manager's log is not JSON lines naming the model: $(head -3 "$log")"
kill -TERM "$serve"
wait "$serve" || fail "serve exited $? on SIGTERM: $(tail -5 "$work/serve.out")"
serve=""
echo "install test passed"
