#!/usr/bin/env bash
# bench/eval/mount-time.sh - time to a usable `nydusd erofs` mount (spawn → EROFS in the mount table)
# and the daemon's CPU time (user+sys over its life: start, 1 s idle, stop), for one or two checkouts
# run interleaved (e.g. before/after a change: `git worktree add /tmp/before <rev> && npm run build`
# there). Root. Image: Python's json + email packages, RAFS v6, localfs backend.
#   bash bench/eval/mount-time.sh [ROOT_A [ROOT_B]] [RUNS=5]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
A=${1:-$here}; B=${2:-}; RUNS=${RUNS:-5}
NODE=$here/node_modules/.bin/node
W=$(mktemp -d /tmp/erofs-mount-time.XXXXXX)
cleanup() { grep -q " $W/mnt " /proc/self/mountinfo && umount "$W/mnt"; rm -rf "$W"; }
trap cleanup EXIT
mkdir -p "$W/src" "$W/blobs" "$W/mnt"
cp -r /usr/lib/python3*/json /usr/lib/python3*/email "$W/src/"
"$NODE" "$A/bin/nydus-image.js" create --fs-version 6 -B "$W/bootstrap" -D "$W/blobs" "$W/src" >/dev/null 2>&1
one() {
  local root=$1 t0 t1 pid
  t0=$(date +%s%N)
  /usr/bin/time -f '%U %S' -o "$W/time" "$NODE" "$root/bin/nydusd.js" erofs --localfs-dir "$W/blobs" --bootstrap "$W/bootstrap" --mountpoint "$W/mnt" --log-level warn 2>"$W/err" &
  pid=$!
  until grep -q " $W/mnt .* erofs " /proc/self/mountinfo; do
    kill -0 $pid 2>/dev/null || { cat "$W/err" >&2; exit 1; }
    sleep 0.002
  done
  t1=$(date +%s%N)
  sleep 1
  pkill -TERM -P $pid; wait $pid
  read -r u s <"$W/time"
  echo "$(( (t1 - t0) / 1000000 )) $(echo "$u + $s" | bc)"
}
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# checkout mount_ms cpu_s"
for _ in $(seq 1 "$RUNS"); do
  echo "A $(one "$A")"
  [ -z "$B" ] || echo "B $(one "$B")"
done | tee "$W/out"
for k in A B; do
  grep "^$k " "$W/out" >/dev/null || continue
  echo "$k median: mount $(grep "^$k " "$W/out" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') ms, cpu $(grep "^$k " "$W/out" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') s"
done
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
