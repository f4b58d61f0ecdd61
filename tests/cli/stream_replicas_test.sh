#!/usr/bin/env bash
# Teatree on a three-server NATS JetStream cluster, given as a list of URLs, with
# --stream-replicas 3: its streams keep three copies, and requests are taken, applied and read.
set -euo pipefail
source "$(dirname "$0")/test_lib.sh" stream-replicas "$1"
nats_server="$(dirname "$teatree")/../libexec/teatree/nats-server"
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

declare -a client_ports route_ports
for i in 0 1 2; do
  client_ports[i]=$(free_port)
  route_ports[i]=$(free_port)
done
routes=""
for i in 0 1 2; do routes+="nats-route://127.0.0.1:${route_ports[i]},"; done
for i in 0 1 2; do
  cat >"$work/nats$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:${client_ports[i]}
max_payload: 9437184
jetstream { store_dir: "$work/js$i" }
cluster { name: teatree, listen: 127.0.0.1:${route_ports[i]}, routes: [${routes%,}] }
EOF
  "$nats_server" -c "$work/nats$i.conf" >"$work/nats$i.log" 2>&1 &
  pids+=("$!")
done
urls="nats://127.0.0.1:${client_ports[0]},nats://127.0.0.1:${client_ports[1]},nats://127.0.0.1:${client_ports[2]}"
# JetStream is usable once the cluster elected its meta leader.
for _ in $(seq 300); do
  grep -qh "JetStream cluster new metadata leader\|Self is new JetStream cluster metadata leader" \
    "$work"/nats*.log && break
  sleep 0.1
done

"$teatree" serve --nats "$urls" --stream-replicas 3 --data-dir "$work/data" >"$work/serve.log" 2>&1 &
pids+=("$!")
for _ in $(seq 300); do [[ -f "$work/data/serve.json" ]] && break; sleep 0.1; done
[[ -f "$work/data/serve.json" ]] ||
  fail "serve did not start: $(cat "$work/serve.log") $(tail -n 5 "$work"/nats*.log)"

submit() { "$teatree" submit -d "$work/data" --nats "$urls" --model shop "$@" --wait --timeout-s 60; }
submit create_table --table orders --schema '[{"name":"id","type":"BIGINT"}]' --primary-key id |
  grep -q "applied" || fail "create_table: $(tail "$work/serve.log")"
submit append --table orders --rows '[[1]]' | grep -q "applied" || fail "append"

# The request stream keeps three copies (JetStream's own account of it).
info=$(python3 - "${client_ports[0]}" <<'EOF'
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\nSUB _r 1\r\nPUB $JS.API.STREAM.INFO.TEATREE_REQ _r 0\r\n\r\n')
while True:
    line = f.readline()
    if line.startswith(b"MSG"):
        body = f.read(int(line.split()[-1]) + 2)
        print(json.loads(body)["config"]["num_replicas"])
        break
EOF
)
[[ "$info" == 3 ]] || fail "the request stream has $info replicas, expected 3"

out=$(submit query --sql 'SELECT count(*) AS n FROM orders')
grep -qx " *1" <<<"$out" || fail "rows: $out"
echo "stream replicas test passed"
