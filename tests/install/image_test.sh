#!/usr/bin/env bash
# make image as an operator uses it: the OCI archive unpacks (umoci) into a root filesystem
# with no shell, whose config runs teatree as uid 65532; inside it (chroot, as that user,
# with its own /proc) `teatree doctor` passes and serve, submit and query work. Builds the
# image first when it is missing or older than the teatree binary. Needs root for chroot:
# skipped (exit 77) otherwise.
set -euo pipefail
build=${1:?usage: image_test.sh BUILD_DIR SOURCE_DIR}
source=${2:?}
if [[ $(id -u) -ne 0 ]]; then
  echo "skipped: chroot and mounting /proc need root"
  exit 77
fi
image=$build/teatree-image.tar
if [[ ! -f "$image" || "$build/bin/teatree" -nt "$image" ]]; then
  "$source/scripts/image" "$build" "$image"
fi
work=$(mktemp -d /tmp/teatree-image-test-XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir "$work/layout"
tar -C "$work/layout" -xf "$image"
umoci unpack --image "$work/layout:teatree" "$work/bundle" >/dev/null
rootfs=$work/bundle/rootfs
config=$work/bundle/config.json
[[ "$(jq -c .process.user "$config")" == '{"uid":65532,"gid":65532}' ]] ||
  fail "the image does not run as 65532: $(jq -c .process.user "$config")"
[[ "$(jq -r '.process.args[0]' "$config")" == /opt/teatree/bin/teatree ]] ||
  fail "entrypoint: $(jq -c .process.args "$config")"
for shell in bin/sh bin/bash usr/bin/sh; do
  [[ ! -e "$rootfs/$shell" ]] || fail "the image has a shell: /$shell"
done
for needed in etc/ssl/certs/ca-certificates.crt usr/share/zoneinfo/UTC etc/passwd; do
  [[ -e "$rootfs/$needed" ]] || fail "the image has no /$needed"
done
found=$(find "$rootfs" \( -name '*.a' -o -name '*.h' \) | head -3)
[[ -z "$found" ]] || fail "the image holds static archives or headers: $found"
echo "image: $(du -m "$image" | cut -f1) MiB, $(du -sm "$rootfs" | cut -f1) MiB unpacked"

# Everything below runs in a mount and pid namespace of its own: its /proc and /dev mounts
# and every process started inside go away with it.
unshare --mount --pid --fork --mount-proc="$rootfs/proc" \
  bash -s "$rootfs" <<'INSIDE' || fail "inside the image (see above)"
set -euo pipefail
rootfs=$1
mount --rbind /dev "$rootfs/dev"
tt() { chroot --userspec=65532:65532 "$rootfs" /opt/teatree/bin/teatree "$@"; }
out=$(tt doctor 2>&1) || { echo "doctor: $out"; exit 1; }
! grep -q FAIL <<<"$out" || { echo "doctor: $out"; exit 1; }
data=/var/lib/teatree/data
# chroot execs teatree: $! is serve's own pid.
chroot --userspec=65532:65532 "$rootfs" /opt/teatree/bin/teatree serve --data-dir "$data" \
  >"$rootfs/tmp/serve.out" 2>&1 &
serve=$!
for _ in $(seq 300); do [[ -f "$rootfs$data/serve.json" ]] && break; sleep 0.1; done
[[ -f "$rootfs$data/serve.json" ]] || { echo "serve: $(cat "$rootfs/tmp/serve.out")"; exit 1; }
tt submit -d "$data" --model shop create_table --table orders \
  --schema '[{"name":"id","type":"BIGINT"},{"name":"amount","type":"DOUBLE"}]' --wait >/dev/null
tt submit -d "$data" --model shop append --table orders --rows '[[1,2.5],[2,4.0]]' --wait >/dev/null
out=$(tt query -d "$data" --model shop "SELECT sum(amount) AS total FROM orders")
grep -q "6.5" <<<"$out" || { echo "query: $out"; exit 1; }
kill -TERM "$serve"
wait "$serve" || { echo "serve exited $? on SIGTERM: $(tail -5 "$rootfs/tmp/serve.out")"; exit 1; }
INSIDE
echo "image test passed"
