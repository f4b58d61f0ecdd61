# What the shell tests of servers share; source it after `set -euo pipefail`:
#   source "$(dirname "$0")/test_lib.sh" NAME TEATREE
# gives $teatree, $work (a fresh directory, removed at exit with every pid in $pids, which
# are stopped even when suspended), fail, and start_nats_server.
teatree=${2:?usage: $1_test.sh path/to/teatree}
work=$(mktemp -d "/tmp/teatree-$1-test-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -CONT "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# start_nats_server [CONFIG LINE...]: the nats-server installed beside teatree, with
# JetStream, on a free loopback port, ready; sets $nats_port and $nats_pid. Its config
# (0600, as it may hold a secret) takes the extra lines given.
start_nats_server() {
  nats_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  {
    printf 'listen: 127.0.0.1:%s\nmax_payload: 9437184\njetstream { store_dir: "%s/js" }\n' \
      "$nats_port" "$work"
    for line in "$@"; do echo "$line"; done
  } >"$work/nats.conf"
  chmod 600 "$work/nats.conf"
  "$(dirname "$teatree")/../libexec/teatree/nats-server" -c "$work/nats.conf" \
    >"$work/nats.log" 2>&1 &
  nats_pid=$!
  pids+=("$nats_pid")
  for _ in $(seq 100); do grep -q "Server is ready" "$work/nats.log" && return 0; sleep 0.1; done
  fail "nats-server did not start: $(cat "$work/nats.log")"
}
