#!/usr/bin/env bash
# Secrets never in sight: serve on a NATS server that requires a token, given to serve in a
# file and to the client in a variable; a control catalog URL with a password. Neither
# secret appears on the command line of serve, its manager or nats-server
# (/proc/PID/cmdline), in their logs, or in `teatree config`; the manager gets them all the
# same (the request is applied).
set -euo pipefail
source "$(dirname "$0")/test_lib.sh" secrets "${1:-}"
token=tok-$RANDOM$RANDOM-secret
echo "$token" >"$work/token"
chmod 600 "$work/token"

start_nats_server "authorization { token: \"$token\" }"

"$teatree" serve --nats "nats://127.0.0.1:$nats_port" --nats-token-file "$work/token" \
  --data-dir "$work/data" >"$work/serve.out" 2>&1 &
serve=$!
pids+=("$serve")
for _ in $(seq 300); do [[ -f "$work/data/serve.json" ]] && break; sleep 0.1; done
[[ -f "$work/data/serve.json" ]] || fail "serve did not start: $(cat "$work/serve.out")"
export TEATREE_NATS_TOKEN=$token
"$teatree" submit -d "$work/data" --model shop create_table --table t \
  --schema '[{"name":"id","type":"BIGINT"}]' --wait >/dev/null || fail "create_table"
unset TEATREE_NATS_TOKEN
out=$("$teatree" submit -d "$work/data" --model shop create_table --table u \
  --schema '[{"name":"id","type":"BIGINT"}]' 2>&1) && fail "a client without the token was let in"

manager=$(pgrep -P "$serve" -f "teatree manager" | head -1)
[[ -n "$manager" ]] || fail "no manager process under serve"
for pid in "$serve" "$manager" "$nats_pid"; do
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$token"; then
    fail "the token is on the command line of $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
  fi
done
if grep -rqF "$token" "$work/serve.out" "$work/data/logs"; then
  fail "the token is in a log: $(grep -rlF "$token" "$work/serve.out" "$work/data/logs")"
fi
out=$(TEATREE_NATS_TOKEN=$token "$teatree" config serve --control "postgresql://u:pgsecret@db/x")
! grep -qF -e "$token" -e pgsecret <<<"$out" || fail "teatree config shows a secret: $out"
grep -q "nats-token .*(redacted) *environment" <<<"$out" || fail "config: $out"
# Error messages show URLs without their password.
out=$("$teatree" status --nats "nats://alice:pw-$token@127.0.0.1:1" 2>&1) && fail "status connected"
! grep -qF "pw-$token" <<<"$out" || fail "an error shows the password: $out"
echo "secrets test passed"
