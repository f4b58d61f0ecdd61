#!/usr/bin/env bash
# Configuration as an operator uses it: flag > TEATREE_* variable > --config file > default,
# shown by `teatree config` with its source and secrets redacted; the file's values reach the
# command; unknown keys and bad values are refused before anything starts, naming them.
set -euo pipefail
teatree=${1:?usage: config_test.sh path/to/teatree}
work=$(mktemp -d /tmp/teatree-config-test-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
unset TEATREE_CONFIG TEATREE_HTTP_PORT TEATREE_BATCH_SIZE TEATREE_DATA_DIR TEATREE_NATS 2>/dev/null || true

cat >"$work/teatree.toml" <<'TOML'
data-dir = "/srv/teatree"
nats-password = "hunter2"
[serve]
batch-size = 99
http-port = 9000
flight-port = 9001
nats = "nats://alice:sesame@nats.internal:4222"
TOML
# The source of each option of serve as `teatree config` shows it.
show() { "$teatree" config --output json serve "$@"; }
option() { jq -r --arg key "$1" '.options[] | select(.key == $key) | "\(.value) \(.source)"'; }
out=$(TEATREE_HTTP_PORT=8081 TEATREE_FLIGHT_PORT=8082 show --config "$work/teatree.toml" --flight-port 7)
[[ "$(option data-dir <<<"$out")" == "/srv/teatree file" ]] || fail "data-dir: $out"
[[ "$(option batch-size <<<"$out")" == "99 file" ]] || fail "batch-size: $out"
[[ "$(option http-port <<<"$out")" == "8081 environment" ]] || fail "http-port: $out"
[[ "$(option flight-port <<<"$out")" == "7 flag" ]] || fail "flight-port: $out"
[[ "$(option idle-stop-s <<<"$out")" == "300 default" ]] || fail "idle-stop-s: $out"
[[ "$(option nats <<<"$out")" == "nats://alice:(redacted)@nats.internal:4222 file" ]] || fail "nats: $out"
! grep -q -e sesame -e hunter2 <<<"$out" || fail "a secret was printed: $out"
out=$("$teatree" config --output json submit --config "$work/teatree.toml" --model m query --sql 'SELECT 1')
[[ "$(option nats-password <<<"$out")" == "(redacted) file" ]] || fail "nats-password: $out"
TEATREE_CONFIG="$work/teatree.toml" "$teatree" config serve | grep -q "^batch-size  *99  *file" ||
  fail "TEATREE_CONFIG was not read"

# The values reach the command: status looks for the server where the file says.
printf 'data-dir = "%s/elsewhere"\n' "$work" >"$work/dir.toml"
rc=0; out=$("$teatree" status --config "$work/dir.toml" 2>&1) || rc=$?
[[ $rc == 4 ]] && grep -q "no Teatree server found in $work/elsewhere" <<<"$out" || fail "status: $rc $out"
rc=0; out=$(TEATREE_DATA_DIR="$work/env" "$teatree" status --config "$work/dir.toml" 2>&1) || rc=$?
grep -q "found in $work/env" <<<"$out" || fail "the variable should win over the file: $out"

# Refused before anything starts.
refused() {  # EXPECTED-TEXT COMMAND...: exit 2 and the text on stderr
  local text=$1; shift
  rc=0; out=$("$@" 2>&1) || rc=$?
  [[ $rc == 2 ]] || fail "$*: exit $rc, expected 2: $out"
  grep -qF -- "$text" <<<"$out" || fail "$*: expected \"$text\": $out"
}
printf 'bogus-key = 1\n' >"$work/bad.toml"
refused "unknown key bogus-key" "$teatree" serve --config "$work/bad.toml" -d "$work/d"
printf '[serve]\nsql = "x"\n' >"$work/bad.toml"
refused "unknown key sql in [serve]" "$teatree" serve --config "$work/bad.toml" -d "$work/d"
printf '[servr]\nbatch-size = 1\n' >"$work/bad.toml"
refused "unknown section [servr]" "$teatree" serve --config "$work/bad.toml" -d "$work/d"
printf '[serve]\nbatch-size = "many"\n' >"$work/bad.toml"
refused "serve.batch-size = many" "$teatree" serve --config "$work/bad.toml" -d "$work/d"
refused "cannot read the config file $work/missing.toml" "$teatree" status --config "$work/missing.toml"
rc=0; out=$(TEATREE_BATCH_SIZE=zero "$teatree" serve -d "$work/d" 2>&1) || rc=$?
[[ $rc == 2 ]] && grep -q "batch-size" <<<"$out" || fail "a bad variable: $rc $out"
[[ ! -e "$work/d" ]] || fail "a refused serve created its data directory"
echo "config test passed"
