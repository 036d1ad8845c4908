#!/usr/bin/env bash
# FUSE server benchmark: our TypeScript server (memfs, in-memory data) vs squashfuse_ll (uncompressed
# squashfs image held in the page cache) serving the same 2 GiB file and 100k-entry directory.
# Not a test. Every measurement uses a fresh mount (cold FUSE caches on both sides).
# Usage: bench/fuse/run.sh            (env: BENCH_DIR=/tmp/nydus-fuse-bench RUNS=3 WORKERS=2)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# Node 24 from setup (node_modules/.bin/node); a plain `node` may be older, and the native addons built for 24 crash in it.
export PATH="$ROOT/node_modules/.bin:$PATH"
WORK=${BENCH_DIR:-/tmp/nydus-fuse-bench}
RUNS=${RUNS:-3}
WORKERS=${WORKERS:-2}
MNT=$WORK/mnt
mkdir -p "$WORK" "$MNT"
SERVER_PID=

unmount_all() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true # our server unmounts itself on SIGTERM
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
  if mountpoint -q "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
}
trap unmount_all EXIT INT TERM

wait_mounted() {
  for _ in $(seq 400); do
    if mountpoint -q "$MNT" && [ -e "$MNT/big" ]; then return 0; fi
    sleep 0.05
  done
  echo "mount did not come up" >&2
  return 1
}

mount_fs() { # ours | ours_dio | squash
  unmount_all
  case $1 in
    ours | ours_dio) node "$ROOT/dist/bench/fuse/serve.js" "$MNT" "$WORKERS" >/dev/null & SERVER_PID=$! ;;
    squash) squashfuse_ll -f -o allow_other "$WORK/img.sqfs" "$MNT" & SERVER_PID=$! ;;
  esac
  wait_mounted
}

bigfile() { [ "$1" = ours_dio ] && echo "$MNT/big_dio" || echo "$MNT/big"; }

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Each measurement leaves its result in OUT. (No pipelines/subshells around mount_fs: SERVER_PID must
# stay visible to the cleanup trap.)

# Sequential read: GB/s reported by dd, median of RUNS fresh mounts.
seq_read() {
  local runs=()
  for _ in $(seq "$RUNS"); do
    mount_fs "$1"
    runs+=("$(dd if="$(bigfile "$1")" of=/dev/null bs=1M 2>&1 | awk '/copied/ {print $(NF-1) * ($NF == "MB/s" ? 0.001 : 1)}')")
  done
  OUT=$(printf '%s\n' "${runs[@]}" | median)
}

# Random 4 KiB O_DIRECT preads, one client: "IOPS µs-per-read".
rand_read() {
  mount_fs "$1"
  OUT=$(python3 -c '
import mmap, os, random, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
blocks = os.fstat(fd).st_size // 4096
buf = mmap.mmap(-1, 4096)
rnd = random.Random(1)
offs = [rnd.randrange(blocks) * 4096 for _ in range(40000)]
for o in offs[:2000]: os.preadv(fd, [buf], o)
t = time.perf_counter()
for o in offs: os.preadv(fd, [buf], o)
dt = time.perf_counter() - t
print(f"{len(offs) / dt:.0f} {dt / len(offs) * 1e6:.1f}")' "$MNT/big")
}

# stat() of all 100k names (no readdir first, so each stat is a LOOKUP on a fresh mount), $2 clients
# splitting the names; stats/s = 100k / wall time, median of RUNS.
stat_rate() {
  local runs=()
  for _ in $(seq "$RUNS"); do
    mount_fs "$1"
    local t0 t1 pids=()
    t0=$(date +%s.%N)
    for c in $(seq 0 $(($2 - 1))); do
      python3 -c '
import os, sys
d, c, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(c, 100000, n): os.stat(f"{d}/f{i:06d}")' "$MNT/d" "$c" "$2" &
      pids+=($!)
    done
    wait "${pids[@]}"
    t1=$(date +%s.%N)
    runs+=("$(echo "100000 / ($t1 - $t0)" | bc -l)")
  done
  OUT=$(printf '%s\n' "${runs[@]}" | median)
}

echo "== build" >&2
(cd "$ROOT" && npx tsc -p . >/dev/null 2>&1) || true # other areas' type errors must not stop us; we need dist/
test -f "$ROOT/dist/bench/fuse/serve.js"
if [ ! -f "$WORK/img.sqfs" ]; then
  echo "== generating source tree and squashfs image" >&2
  rm -rf "$WORK/src"
  node "$ROOT/dist/bench/fuse/gen.js" "$WORK/src"
  # Uncompressed inodes/data/fragments/xattrs: squashfuse_ll then only copies from the page cache.
  mksquashfs "$WORK/src" "$WORK/img.sqfs" -noI -noD -noF -noX -no-xattrs -quiet >/dev/null
  rm -rf "$WORK/src"
fi
cat "$WORK/img.sqfs" >/dev/null # image in the page cache

declare -A R
for fs in squash ours ours_dio; do
  echo "== $fs: sequential read" >&2
  seq_read "$fs"
  R[$fs.seq]=$OUT
done
for fs in squash ours; do
  echo "== $fs: random 4 KiB reads" >&2
  rand_read "$fs"
  R[$fs.iops]=${OUT% *}
  R[$fs.lat]=${OUT#* }
  echo "== $fs: stat" >&2
  stat_rate "$fs" 1
  R[$fs.stat1]=$OUT
  stat_rate "$fs" 2
  R[$fs.stat2]=$OUT
done
unmount_all

ratio() { echo "scale=2; $1 / $2" | bc -l; }
cat <<EOF
| measurement | squashfuse_ll | nydus-ts | ratio (ours/squashfuse_ll) |
|---|---|---|---|
| sequential read, dd bs=1M, GB/s (page-cache mode) | ${R[squash.seq]} | ${R[ours.seq]} | $(ratio "${R[ours.seq]}" "${R[squash.seq]}") |
| sequential read, dd bs=1M, GB/s (ours FOPEN_DIRECT_IO) | ${R[squash.seq]} | ${R[ours_dio.seq]} | $(ratio "${R[ours_dio.seq]}" "${R[squash.seq]}") |
| random 4 KiB O_DIRECT pread, IOPS (1 client) | ${R[squash.iops]} | ${R[ours.iops]} | $(ratio "${R[ours.iops]}" "${R[squash.iops]}") |
| round trip per 4 KiB read, µs (lower is better) | ${R[squash.lat]} | ${R[ours.lat]} | $(ratio "${R[squash.lat]}" "${R[ours.lat]}") (inverse) |
| stat/s, 1 client, cold (LOOKUP each) | $(printf %.0f "${R[squash.stat1]}") | $(printf %.0f "${R[ours.stat1]}") | $(ratio "${R[ours.stat1]}" "${R[squash.stat1]}") |
| stat/s, 2 clients, cold | $(printf %.0f "${R[squash.stat2]}") | $(printf %.0f "${R[ours.stat2]}") | $(ratio "${R[ours.stat2]}" "${R[squash.stat2]}") |
EOF
