#!/usr/bin/env bash
# A model's manager inside a pod class's memory and CPU, beside the same manager unlimited.
#
#   bench/pod_class_memory.sh path/to/teatree [--class small] [--rows 20000000]
#                             [--parquet FILE] [--idle-s 20] [--modes unlimited,class]
#                             [--manager-arg ARG]...
#
# For each mode, from a fresh data directory and a fresh nats-server: starts `teatree
# manager` in a memory cgroup of its own (and, for the class, a CPU quota), with the class's
# limit written to the cgroup and TEATREE_POD_CPU_LIMIT / TEATREE_POD_MEMORY_LIMIT set as the
# Kubernetes launcher sets them (the unlimited run gets a cgroup without a limit, only to be
# measured the same way, and no TEATREE_POD_* variables); creates a table (id BIGINT primary
# key, ts TIMESTAMP, region VARCHAR, amount DOUBLE, qty INTEGER), loads one Parquet file in
# one append request (`"source":{"format":"parquet","path":…}`), sits idle (the manager
# trims its heap after 10 s), runs a full-table GROUP BY through the queue, sits idle again.
# Memory is sampled every 0.2 s. Prints one table: each figure unlimited, in the class, and
# their ratio (class / unlimited).
#
# Figures: "anon" is the cgroup's anonymous memory (v1 memory.stat rss, v2 anon): what the
# process itself holds, and what cannot be reclaimed; "charged" is everything the cgroup is
# charged for, page cache included (v1 memory.max_usage_in_bytes, v2 memory.peak), which the
# kernel reclaims before it OOM-kills; "working set" is charged minus inactive file pages
# (what the kubelet and `kubectl top` report); VmRSS/VmHWM come from /proc/PID/status.
#
# Needs root (to create cgroups) and a cgroup v1 memory hierarchy at /sys/fs/cgroup/memory
# or a cgroup v2 one with the memory controller; exits 77 (skipped) otherwise. The Parquet
# file is generated with DuckDB's Python module ($PYTHON, else ~/.cache/teatree/venv-*/bin/
# python, else python3) unless --parquet names one with those columns. Keeps nothing unless
# KEEP=1 (then the work directory is left for reading the logs).
set -euo pipefail

teatree=${1:?usage: pod_class_memory.sh path/to/teatree [--class small] [--rows N] [--parquet FILE] [--idle-s S] [--modes unlimited,class]}
shift
class=small rows=20000000 parquet="" idle_s=20 modes=unlimited,class manager_args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --class) class=$2; shift 2 ;;
    --rows) rows=$2; shift 2 ;;
    --parquet) parquet=$2; shift 2 ;;
    --idle-s) idle_s=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --manager-arg) manager_args+=("$2"); shift 2 ;;  # e.g. --manager-arg --archive=none
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
case $class in  # The default pod class table (docs/deploy.md, --pod-class).
  small) cpus=2 mem_gib=2 ;;
  medium) cpus=4 mem_gib=4 ;;
  large) cpus=8 mem_gib=16 ;;
  xlarge) cpus=16 mem_gib=64 ;;
  *) echo "unknown class $class (small, medium, large, xlarge)" >&2; exit 2 ;;
esac
mem_bytes=$((mem_gib << 30))
teatree=$(realpath "$teatree")
nats_server=${TEATREE_NATS_SERVER:-$(dirname "$teatree")/../libexec/teatree/nats-server}
[[ -x "$nats_server" ]] || nats_server=$(command -v nats-server || true)
[[ -x "$nats_server" ]] || { echo "no nats-server beside $teatree nor on PATH" >&2; exit 2; }

# --- can we set a memory limit? ---------------------------------------------------------
if [[ $(id -u) -ne 0 ]]; then
  echo "SKIP: creating a memory cgroup for the pod class needs root"
  exit 77
fi
cg_version="" mem_parent="" cpu_parent=""
own_group() { awk -F: -v c="$1" '$2 == c || $2 ~ "(^|,)" c "(,|$)" { print $3; exit }' /proc/self/cgroup; }
if [[ -f /sys/fs/cgroup/memory/memory.limit_in_bytes && -w /sys/fs/cgroup/memory ]]; then
  cg_version=1
  mem_parent=/sys/fs/cgroup/memory$(own_group memory)
  cpu_parent=/sys/fs/cgroup/cpu$(own_group cpu)
  [[ -d $cpu_parent ]] || cpu_parent=/sys/fs/cgroup/cpu,cpuacct$(own_group cpu)
elif [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw memory /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
  cg_version=2  # A group under the root (exempt from the no-internal-processes rule).
  mem_parent=/sys/fs/cgroup cpu_parent=/sys/fs/cgroup
fi
if [[ -z $cg_version || ! -w $mem_parent ]]; then
  echo "SKIP: no writable cgroup v1 memory hierarchy (/sys/fs/cgroup/memory) nor cgroup v2 with the memory controller enabled in /sys/fs/cgroup/cgroup.subtree_control"
  exit 77
fi

work=$(mktemp -d /tmp/teatree-pod-class-XXXXXX)
pids=() groups=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for group in "${groups[@]}"; do rmdir "$group" 2>/dev/null || true; done
  if [[ ${KEEP:-0} == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
mib() { awk -v b="${1:-0}" 'BEGIN { printf "%.0f", b / 1048576 }'; }

# --- the Parquet file ---------------------------------------------------------------------
if [[ -z $parquet ]]; then
  python=${PYTHON:-$(ls ~/.cache/teatree/venv-*/bin/python 2>/dev/null | head -1)}
  python=${python:-python3}
  "$python" -c 'import duckdb' 2>/dev/null ||
    { echo "SKIP: $python has no duckdb module to generate the Parquet file (set PYTHON, or pass --parquet)"; exit 77; }
  parquet=$work/input/t.parquet
  mkdir -p "$work/input"
  "$python" - "$rows" "$parquet" <<'EOF'
import duckdb, sys
n, out = int(sys.argv[1]), sys.argv[2]
duckdb.connect().execute(f"""COPY (SELECT i::BIGINT AS id,
  TIMESTAMP '2026-01-01' + to_microseconds((hash(i * 7) % 31536000000000)::BIGINT) AS ts,
  'region-' || (hash(i * 3) % 500)::VARCHAR AS region,
  round(random() * 10000, 2)::DOUBLE AS amount,
  (hash(i * 11) % 1000)::INTEGER AS qty
  FROM range({n}) r(i)) TO '{out}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)""")
EOF
fi
parquet=$(realpath "$parquet")
input_dir=$(dirname "$parquet")

# --- cgroup files, v1 or v2 ---------------------------------------------------------------
cg_stat() { awk -v k="$2" '$1 == k { print $2; exit }' "$1/memory.stat"; }
cg_anon() { if [[ $cg_version == 1 ]]; then cg_stat "$1" rss; else cg_stat "$1" anon; fi; }
cg_usage() { if [[ $cg_version == 1 ]]; then cat "$1/memory.usage_in_bytes"; else cat "$1/memory.current"; fi; }
cg_inactive_file() { if [[ $cg_version == 1 ]]; then cg_stat "$1" total_inactive_file; else cg_stat "$1" inactive_file; fi; }
cg_peak() {
  if [[ $cg_version == 1 ]]; then cat "$1/memory.max_usage_in_bytes"; else cat "$1/memory.peak" 2>/dev/null || echo 0; fi
}
cg_oom_kills() {
  if [[ $cg_version == 1 ]]; then awk '$1 == "oom_kill" { print $2 }' "$1/memory.oom_control"
  else awk '$1 == "oom_kill" { print $2 }' "$1/memory.events"; fi
}
cg_failcnt() { if [[ $cg_version == 1 ]]; then cat "$1/memory.failcnt"; else awk '$1 == "max" { print $2 }' "$1/memory.events"; fi; }
proc_kb() { awk -v k="$2:" '$1 == k { print $2 * 1024 }' "/proc/$1/status" 2>/dev/null || true; }

# sampler PID GROUP OUT: every 0.2 s a line "anon charged working_set rss" until PID exits.
sampler() {
  local pid=$1 group=$2 out=$3 usage inactive
  while kill -0 "$pid" 2>/dev/null; do
    usage=$(cg_usage "$group") inactive=$(cg_inactive_file "$group")
    echo "$(cg_anon "$group") $usage $((usage - ${inactive:-0})) $(proc_kb "$pid" VmRSS)" >>"$out"
    sleep 0.2
  done
}
column_max() { awk -v c="$1" 'BEGIN { m = 0 } $c + 0 > m { m = $c + 0 } END { print m }' "$2"; }

declare -A fig  # fig[mode,name] = value
run_mode() {
  local mode=$1 dir=$work/$1 group cpu_group="" model=m env_vars=() nats_port port_line
  mkdir -p "$dir/js" "$dir/data"
  # nats-server on a free port.
  printf 'listen: 127.0.0.1:-1\nmax_payload: 9437184\njetstream { store_dir: "%s/js" }\n' "$dir" >"$dir/nats.conf"
  : >"$dir/nats.log"
  "$nats_server" -c "$dir/nats.conf" >"$dir/nats.log" 2>&1 &
  local nats_pid=$!
  pids+=("$nats_pid")
  for _ in $(seq 100); do grep -q "Server is ready" "$dir/nats.log" && break; sleep 0.1; done
  port_line=$(grep -o 'client connections on [0-9.:]*' "$dir/nats.log" | head -1) ||
    fail "nats-server did not start: $(cat "$dir/nats.log")"
  nats_port=${port_line##*:}
  local nats=nats://127.0.0.1:$nats_port
  # The cgroups.
  group=$mem_parent/teatree-pod-class-$mode-$$
  mkdir "$group"
  groups+=("$group")
  local procs="$group/cgroup.procs"
  if [[ $mode == class ]]; then
    env_vars=("TEATREE_POD_CPU_LIMIT=$((cpus * 1000))" "TEATREE_POD_MEMORY_LIMIT=$mem_bytes")
    if [[ $cg_version == 1 ]]; then
      echo "$mem_bytes" >"$group/memory.limit_in_bytes"
      if [[ -w $cpu_parent ]]; then
        cpu_group=$cpu_parent/teatree-pod-class-$mode-$$
        mkdir "$cpu_group" && groups+=("$cpu_group")
        echo 100000 >"$cpu_group/cpu.cfs_period_us"
        echo $((cpus * 100000)) >"$cpu_group/cpu.cfs_quota_us"
      fi
    else
      echo "$mem_bytes" >"$group/memory.max"
      echo 0 >"$group/memory.swap.max" 2>/dev/null || true
      echo "$((cpus * 100000)) 100000" >"$group/cpu.max" 2>/dev/null || true
    fi
  fi
  local join="echo \$\$ > $procs"
  [[ -n $cpu_group ]] && join+="; echo \$\$ > $cpu_group/cgroup.procs"
  # The manager, inside the groups from its first instruction on (exec keeps the pid).
  env -u TEATREE_POD_CPU_LIMIT -u TEATREE_POD_MEMORY_LIMIT "${env_vars[@]}" \
    bash -c "$join; exec \"\$0\" \"\$@\"" "$teatree" manager --model "$model" --nats "$nats" \
    --data-dir "$dir/data" --input-dir "$input_dir" "${manager_args[@]}" >"$dir/manager.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do grep -q "manager running" "$dir/manager.log" && break; sleep 0.1; done
  grep -q "manager running" "$dir/manager.log" || fail "$mode: the manager did not start: $(cat "$dir/manager.log")"
  fig[$mode,limits]=$(grep -o 'limits from the .*' "$dir/manager.log" | head -1 || true)
  fig[$mode,limits]=${fig[$mode,limits]:-none detected}
  local submit=("$teatree" submit --nats "$nats")
  "${submit[@]}" --model "$model" create_table --table t --primary-key id --wait \
    --schema '[{"name":"id","type":"BIGINT"},{"name":"ts","type":"TIMESTAMP"},{"name":"region","type":"VARCHAR"},{"name":"amount","type":"DOUBLE"},{"name":"qty","type":"INTEGER"}]' \
    >/dev/null
  sampler "$pid" "$group" "$dir/samples" &
  local sampler_pid=$!
  pids+=("$sampler_pid")
  # The load: one append naming the file, then until its version is published (the version
  # file written and the archive's Parquet copy made: `teatree watch` shows version_published).
  # Watch the manager: an OOM kill would leave the client waiting.
  "$teatree" watch --nats "$nats" --model "$model" --output json >"$dir/watch.out" 2>&1 &
  local watch_pid=$!
  pids+=("$watch_pid")
  printf '{"op":"append","model":"%s","table":"t","request_id":"load-1","source":{"format":"parquet","path":"%s"}}\n' \
    "$model" "$parquet" >"$dir/load.jsonl"
  local start end
  start=$(date +%s.%N)
  "${submit[@]}" --timeout-s 600 --output json --file "$dir/load.jsonl" --wait >"$dir/load.out" 2>&1 &
  local submit_pid=$!
  pids+=("$submit_pid")
  while kill -0 "$submit_pid" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then kill "$submit_pid" 2>/dev/null || true; break; fi
    sleep 0.1
  done
  wait "$submit_pid" 2>/dev/null || true
  end=$(date +%s.%N)
  fig[$mode,load_s]=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
  fig[$mode,rss_after_outcome]=$(proc_kb "$pid" VmRSS)
  local version
  version=$(grep -o '"version":[0-9]*' "$dir/load.out" | head -1 | cut -d: -f2 || true)
  if [[ -n $version ]]; then
    for _ in $(seq 6000); do  # At most 10 minutes.
      grep -q "\"type\":\"version_published\",\"version\":$version}" "$dir/watch.out" && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if grep -q "\"type\":\"version_published\",\"version\":$version}" "$dir/watch.out"; then
      fig[$mode,published_s]=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    fi
  fi
  kill "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  fig[$mode,status]=$(grep -o '"status":"[a-z]*"' "$dir/load.out" | head -1 | cut -d'"' -f4 || true)
  fig[$mode,status]=${fig[$mode,status]:-none}
  fig[$mode,manager_ms]=$(grep -o '"duration_ms":[0-9.]*' "$dir/load.out" | head -1 | cut -d: -f2 | cut -d. -f1 || true)
  if [[ ${fig[$mode,status]} != applied ]]; then
    fig[$mode,error]=$(grep -o '"error":"[^"]*"' "$dir/load.out" | head -1 || tail -c 300 "$dir/load.out")
  fi
  # Right after the load and its publication.
  fig[$mode,rss_after_load]=$(proc_kb "$pid" VmRSS)
  fig[$mode,anon_after_load]=$(cg_anon "$group")
  # Idle: the manager trims its heap after 10 s without requests.
  sleep "$idle_s"
  fig[$mode,peak_anon_load]=$(column_max 1 "$dir/samples")
  fig[$mode,peak_charged_load]=$(cg_peak "$group")
  fig[$mode,peak_ws_load]=$(column_max 3 "$dir/samples")
  if kill -0 "$pid" 2>/dev/null; then
    fig[$mode,rss_idle]=$(proc_kb "$pid" VmRSS)
    fig[$mode,anon_idle]=$(cg_anon "$group")
    fig[$mode,hwm_load]=$(proc_kb "$pid" VmHWM)
    # A full-table aggregate through the queue.
    start=$(date +%s.%N)
    "${submit[@]}" --timeout-s 120 --output json --model "$model" query --sql 'SELECT region, sum(amount) FROM t GROUP BY 1' \
      --wait >"$dir/query.out" 2>&1 || true
    end=$(date +%s.%N)
    fig[$mode,query_status]=$(grep -o '"status":"[a-z]*"' "$dir/query.out" | head -1 | cut -d'"' -f4 || true)
    fig[$mode,query_status]=${fig[$mode,query_status]:-failed: $(head -c 200 "$dir/query.out")}
    fig[$mode,query_s]=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    fig[$mode,rss_after_query]=$(proc_kb "$pid" VmRSS)
    sleep "$idle_s"
    fig[$mode,rss_idle_query]=$(proc_kb "$pid" VmRSS)
    fig[$mode,anon_idle_query]=$(cg_anon "$group")
    fig[$mode,hwm]=$(proc_kb "$pid" VmHWM)
  fi
  fig[$mode,peak_anon]=$(column_max 1 "$dir/samples")
  fig[$mode,peak_charged]=$(cg_peak "$group")
  fig[$mode,peak_ws]=$(column_max 3 "$dir/samples")
  fig[$mode,oom_kills]=$(cg_oom_kills "$group")
  fig[$mode,failcnt]=$(cg_failcnt "$group")
  local model_dir=$dir/data/models/$model
  fig[$mode,model_file]=$(stat -c %s "$model_dir/rw/$model.duckdb" 2>/dev/null || echo 0)
  fig[$mode,versions]=$(find "$model_dir/versions" -name '*.duckdb' -printf '%f\n' 2>/dev/null | sort -V | paste -sd' ' || true)
  fig[$mode,archive_bytes]=$(du -sb "$dir/data/archive" 2>/dev/null | cut -f1 || echo 0)
  fig[$mode,newest_version]=$(ls -1v "$model_dir"/versions/v*.duckdb 2>/dev/null | tail -1 | xargs -r stat -c %s || echo 0)
  # Stop: SIGTERM, then what it did.
  if kill -0 "$pid" 2>/dev/null; then
    fig[$mode,survived]=yes
    kill -TERM "$pid"
  else
    fig[$mode,survived]="NO (exited; oom_kill count ${fig[$mode,oom_kills]})"
  fi
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  fig[$mode,exit]=$rc
  kill "$sampler_pid" 2>/dev/null || true
  wait "$sampler_pid" 2>/dev/null || true
  kill -TERM "$nats_pid" 2>/dev/null || true
  wait "$nats_pid" 2>/dev/null || true
  # The oom_kill counter only after the process has gone.
  fig[$mode,oom_kills]=$(cg_oom_kills "$group")
  if [[ -n $cpu_group ]]; then rmdir "$cpu_group" 2>/dev/null || true; fi
  rmdir "$group" 2>/dev/null || true
}

echo "pod class $class ($cpus CPUs, $mem_gib GiB) beside an unlimited manager; cgroup v$cg_version"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $parquet ($(mib "$(stat -c %s "$parquet")") MiB Parquet)"
IFS=, read -r -a mode_list <<<"$modes"
for mode in "${mode_list[@]}"; do
  echo "running: $mode ..." >&2
  run_mode "$mode"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
for mode in "${mode_list[@]}"; do echo "$mode limits: ${fig[$mode,limits]}"; done
for mode in "${mode_list[@]}"; do
  [[ -n ${fig[$mode,error]:-} ]] && echo "$mode load error: ${fig[$mode,error]}"
done
echo
row() {  # row LABEL KEY UNIT: unlimited, class and class/unlimited.
  local label=$1 key=$2 unit=$3 u c ratio
  u=${fig[unlimited,$key]:-} c=${fig[class,$key]:-}
  if [[ $unit == MiB ]]; then
    [[ -n $u ]] && u=$(mib "$u")
    [[ -n $c ]] && c=$(mib "$c")
  fi
  ratio=$(awk -v u="$u" -v c="$c" 'BEGIN { if (u + 0 > 0 && c != "") printf "%.2f", c / u }')
  printf '| %s | %s | %s | %s |\n' "$label${unit:+ ($unit)}" "${u:--}" "${c:--}" "${ratio:--}"
}
text_row() { printf '| %s | %s | %s | |\n' "$1" "${fig[unlimited,$2]:--}" "${fig[class,$2]:--}"; }
echo "| figure | unlimited | $class ($cpus CPU, $mem_gib GiB) | ratio |"
echo "|---|---|---|---|"
text_row "load applied" status
text_row "manager survived (no OOM kill)" survived
text_row "OOM kills in the cgroup" oom_kills
text_row "times the limit was hit (failcnt)" failcnt
row "load: submit → outcome" load_s s
row "load: manager's duration_ms" manager_ms ms
row "load: submit → version published (incl. archive)" published_s s
row "peak anon, load + publication" peak_anon_load MiB
row "peak working set, load + publication" peak_ws_load MiB
row "peak charged, load + publication (page cache incl.)" peak_charged_load MiB
row "VmHWM after load and publication" hwm_load MiB
row "RSS right after the load's outcome" rss_after_outcome MiB
row "RSS right after the load's publication" rss_after_load MiB
row "RSS after ${idle_s} s idle" rss_idle MiB
row "anon after ${idle_s} s idle" anon_idle MiB
text_row "GROUP BY query" query_status
row "GROUP BY query, submit → outcome" query_s s
row "RSS right after the query" rss_after_query MiB
row "RSS ${idle_s} s after the query" rss_idle_query MiB
row "VmHWM, whole run" hwm MiB
row "peak anon, whole run" peak_anon MiB
row "model file rw/m.duckdb" model_file MiB
row "newest version file" newest_version MiB
text_row "version files" versions
row "archive (Parquet copies of the versions)" archive_bytes MiB
