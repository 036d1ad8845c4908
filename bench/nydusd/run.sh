#!/usr/bin/env bash
# nydusd data path (issue 14) side by side, one run: nydusd (blobcache / dummycache) vs squashfuse_ll
# on a zstd-3 squashfs vs kernel EROFS lz4hc, same data.
#   bench/nydusd/run.sh   env: BENCH_DIR=/tmp/nydusd-dp MIXED_MB=768 SMALL_INODES=100000
#                                   ROWS="cold warm rand stat mount" THREADS=4 NODE_PROF="--cpu-prof ..."
#                                   BASE=<another checkout, built>: its nydusd rows too ("…@base"), same run
# Rows: cold mixed-file read (page cache dropped, fresh blob cache) per server; warm O_DIRECT 1 MiB
# sequential; 4 KiB random O_DIRECT; stat walk of 20k files after dropping dentries; 100k-inode mount
# time (start to a stat of a top-level entry); RSS of the daemon's process tree after the cold read.
# For nydusd it also prints the daemon's CPU seconds (user+sys, all threads) per row.
set -euo pipefail
REPO=${REPO:-$(cd "$(dirname "$0")/../.." && pwd)}  # REPO= another checkout to bench its build
NODE=${NODE:-$REPO/node_modules/.bin/node}
B=${BENCH_DIR:-/tmp/nydusd-dp}
MIXED_MB=${MIXED_MB:-768}
SMALL_INODES=${SMALL_INODES:-100000}
ROWS=${ROWS-cold warm rand stat mount}
THREADS=${THREADS:-4}
NI="$NODE $REPO/bin/nydus-image.js"
mkdir -p "$B"; MNT=$B/mnt; mkdir -p "$MNT"
DPID=""

now_ms() { date +%s%3N; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
is_mounted() { awk -v m="$1" '$2==m{f=1} END{exit !f}' /proc/mounts; }
wait_mount() { # $1 mountpoint $2 pid $3 entry to stat
  local end=$(( $(now_ms) + 60000 ))
  until is_mounted "$1" && stat "$1/$3" >/dev/null 2>&1; do
    kill -0 "$2" 2>/dev/null || { echo "daemon $2 died" >&2; return 1; }
    [ "$(now_ms)" -lt "$end" ] || { echo "mount timeout" >&2; return 1; }
    sleep 0.001
  done
}
unmount_all() {
  if [ -n "$DPID" ]; then kill -TERM "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; DPID=""; fi
  if is_mounted "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
}
trap unmount_all EXIT
tree_pids() { local p=$1; echo "$p"; for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree_pids "$c"; done; }
rss_mb() { local t=0 p; for p in $(tree_pids "$1"); do t=$(( t + $(awk '/VmRSS/{print $2}' /proc/$p/status 2>/dev/null || echo 0) )); done; echo $(( t / 1024 )); }
cpu_s() { # user+sys seconds of the daemon tree (all threads)
  local t=0 p; for p in $(tree_pids "$1"); do t=$(( t + $(awk '{print $14+$15}' /proc/$p/stat 2>/dev/null || echo 0) )); done
  python3 -c "import os,sys; print('%.2f' % (int(sys.argv[1]) / os.sysconf('SC_CLK_TCK')))" "$t"
}
secs() { python3 -c "import sys; print('%.3f' % ((int(sys.argv[2]) - int(sys.argv[1])) / 1000))" "$1" "$2"; }

# ---- data ----------------------------------------------------------------------------------------
if [ ! -f "$B/data.done" ]; then
  rm -rf "$B/tree" "$B/small"; mkdir -p "$B/tree"
  # Mixed file: 256 KiB pieces cycling text, ELF, random, zeros (real bytes from /usr).
  python3 - "$B/tree/mixed.bin" "$MIXED_MB" <<'EOF'
import os, sys
out, total = sys.argv[1], int(sys.argv[2]) << 20
def files(pred):
    for d, _, fs in os.walk('/usr'):
        for n in sorted(fs):
            p = os.path.join(d, n)
            try:
                if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) > 65536 and pred(p): yield p
            except OSError: pass
def stream(pred):
    while True:
        for p in files(pred):
            with open(p, 'rb') as f:
                while b := f.read(1 << 20): yield b
def elf(p):
    with open(p, 'rb') as f: return f.read(4) == b'\x7fELF'
def text(p):
    with open(p, 'rb') as f: b = f.read(4096)
    return b and all(c in b'\t\n\r' or 32 <= c < 127 for c in b)
srcs = [stream(text), stream(elf), None, None]
P = 256 << 10
buf = {0: b'', 1: b''}
with open(out, 'wb') as o:
    n, i = 0, 0
    while n < total:
        k = i % 4; i += 1
        if k == 2: piece = os.urandom(P)
        elif k == 3: piece = bytes(P)
        else:
            while len(buf[k]) < P: buf[k] += next(srcs[k])
            piece, buf[k] = buf[k][:P], buf[k][P:]
        o.write(piece); n += P
EOF
  mkdir -p "$B/small"
  python3 -c "
import os,sys
r=sys.argv[1]
for i in range(int(sys.argv[2])):
    d=os.path.join(r,'d%03d'%(i//1000)); os.makedirs(d,exist_ok=True); open(os.path.join(d,'f%05d'%i),'w').close()" "$B/small/src" "$SMALL_INODES"
  touch "$B/data.done"
fi
if [ ! -f "$B/images.done" ]; then
  rm -rf "$B/blobs" "$B/small/blobs"; mkdir -p "$B/blobs" "$B/small/blobs"
  t=$(now_ms); $NI create --fs-version 6 --compressor zstd -B "$B/image.boot" -D "$B/blobs" "$B/tree" >/dev/null; echo "build nydus v6 zstd: $(( $(now_ms) - t )) ms"
  t=$(now_ms); mksquashfs "$B/tree" "$B/sq.img" -comp zstd -Xcompression-level 3 -noappend -quiet -no-progress >/dev/null; echo "build squashfs zstd-3: $(( $(now_ms) - t )) ms"
  t=$(now_ms); mkfs.erofs -zlz4hc "$B/erofs.img" "$B/tree" >/dev/null; echo "build erofs lz4hc: $(( $(now_ms) - t )) ms"
  $NI create --fs-version 6 --compressor zstd -B "$B/small/image.boot" -D "$B/small/blobs" "$B/small/src" >/dev/null
  mksquashfs "$B/small/src" "$B/small/sq.img" -comp zstd -Xcompression-level 3 -noappend -quiet -no-progress >/dev/null
  touch "$B/images.done"
fi

cfg() { # $1 cache type $2 work_dir $3 blob dir
  local cache='{"type":"dummycache"}'
  [ "$1" = blobcache ] && cache="{\"type\":\"blobcache\",\"config\":{\"work_dir\":\"$2\"}}"
  echo "{\"device\":{\"backend\":{\"type\":\"localfs\",\"config\":{\"dir\":\"$3\"}},\"cache\":$cache},\"mode\":\"direct\",\"digest_validate\":false,\"iostats_files\":false,\"enable_xattr\":true}" > "$B/nydusd.json"
}
# Sets DPID and MOUNT_MS. Never call in $(...): the daemon would hold the substitution's pipe.
mount_nydusd() { # $1 cache type $2 work_dir $3 bootstrap $4 blob dir $5 entry
  cfg "$1" "$2" "$4"; local t; t=$(now_ms)
  # shellcheck disable=SC2086
  "$NODE" ${NODE_PROF:-} "$USE_REPO/bin/nydusd.js" --config "$B/nydusd.json" --mountpoint "$MNT" --bootstrap "$3" --log-level warn --thread-num "$THREADS" >>"$B/daemon.log" 2>&1 &
  DPID=$!; wait_mount "$MNT" "$DPID" "$5"; MOUNT_MS=$(( $(now_ms) - t ))
}
mount_squash() { local t; t=$(now_ms); squashfuse_ll -f "$1" "$MNT" >>"$B/daemon.log" 2>&1 & DPID=$!; wait_mount "$MNT" "$DPID" "$2"; MOUNT_MS=$(( $(now_ms) - t )); }
prepare() { # $1 kind [$2 fresh]: fresh mount, dropped caches; kind@base = the BASE checkout's nydusd
  unmount_all; drop
  USE_REPO=$REPO; [ "${1#*@}" = base ] && USE_REPO=$BASE
  case ${1%@base} in
    nydusd-blobcache) [ "${2:-}" = fresh ] && { rm -rf "$B/cache"; mkdir -p "$B/cache"; }; mount_nydusd blobcache "$B/cache" "$B/image.boot" "$B/blobs" mixed.bin ;;
    nydusd-dummy) mount_nydusd dummycache "" "$B/image.boot" "$B/blobs" mixed.bin ;;
    squashfuse_ll) mount_squash "$B/sq.img" mixed.bin ;;
    erofs-lz4hc) mount -t erofs -o loop,ro "$B/erofs.img" "$MNT" ;;
  esac
}
cpu_of() { [ -n "$DPID" ] && [ "${1%%-*}" = nydusd ] && cpu_s "$DPID" || echo -; }
USE_REPO=$REPO
with_base() { for k in "$@"; do echo "$k"; [ -n "${BASE:-}" ] && [ "${k%%-*}" = nydusd ] && echo "$k@base"; done; }

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)   $(date -u +%FT%TZ)   mixed file $MIXED_MB MiB"
has() { case " $ROWS " in *" $1 "*) return 0 ;; esac; return 1; }

if has cold; then
  echo; printf '%-22s %8s %9s %9s %8s\n' "cold read" wall_s MB/s cpu_s rss_MB
  for kind in $(with_base nydusd-blobcache nydusd-dummy squashfuse_ll erofs-lz4hc); do
    prepare $kind fresh; c0=$(cpu_of $kind)
    t=$(now_ms); dd if="$MNT/mixed.bin" of=/dev/null bs=1M status=none; t1=$(now_ms)
    c1=$(cpu_of $kind); rss=$([ -n "$DPID" ] && rss_mb "$DPID" || echo -)
    cpu=$([ "$c0" = - ] && echo - || python3 -c "print('%.2f' % ($c1 - $c0))")
    printf '%-22s %8s %9s %9s %8s\n' $kind "$(secs $t $t1)" "$(python3 -c "print('%.0f' % ($MIXED_MB * 1.048576 / (($t1 - $t) / 1000)))")" "$cpu" "$rss"
  done
fi
if has warm; then
  # Fill the blob cache completely first.
  prepare nydusd-blobcache fresh; cat "$MNT/mixed.bin" > /dev/null
  echo; printf '%-18s %8s %9s %9s\n' "warm O_DIRECT 1M" wall_s MB/s cpu_s
  for kind in $(with_base nydusd-blobcache squashfuse_ll); do
    prepare $kind; c0=$(cpu_of $kind)
    t=$(now_ms); dd if="$MNT/mixed.bin" of=/dev/null bs=1M iflag=direct status=none; t1=$(now_ms); c1=$(cpu_of $kind)
    printf '%-18s %8s %9s %9s\n' $kind "$(secs $t $t1)" "$(python3 -c "print('%.0f' % ($MIXED_MB * 1.048576 / (($t1 - $t) / 1000)))")" "$([ "$c0" = - ] && echo - || python3 -c "print('%.2f' % ($c1 - $c0))")"
  done
fi
if has rand; then
  cat > "$B/rand.py" <<'EOF'
import mmap, os, random, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT); size = os.fstat(fd).st_size
buf = mmap.mmap(-1, 4096)
random.seed(42); n = int(sys.argv[2]); offs = [random.randrange(0, size // 4096) * 4096 for _ in range(n)]
t = time.perf_counter()
for o in offs: os.preadv(fd, [buf], o)
print('%.0f' % (n / (time.perf_counter() - t)))
EOF
  echo; printf '%-18s %9s\n' "4K random O_DIRECT" iops
  for kind in $(with_base nydusd-blobcache squashfuse_ll); do
    prepare $kind; cat "$MNT/mixed.bin" > /dev/null  # warm both sides' data (squashfs image in page cache)
    printf '%-18s %9s\n' $kind "$(python3 "$B/rand.py" "$MNT/mixed.bin" "${RAND_N:-20000}")"
  done
fi
if has stat; then
  echo; printf '%-18s %8s %9s\n' "stat walk 20k" wall_s stat/s
  for kind in $(with_base nydusd squashfuse_ll); do
    unmount_all; drop
    USE_REPO=$REPO; [ "${kind#*@}" = base ] && USE_REPO=$BASE
    if [ "${kind%@base}" = nydusd ]; then rm -rf "$B/small/cache"; mount_nydusd blobcache "$B/small/cache" "$B/small/image.boot" "$B/small/blobs" d000
    else mount_squash "$B/small/sq.img" d000; fi
    # One pass first, so the daemon's workers are loaded; then drop dentries and inodes and measure.
    find "$MNT" > /dev/null; echo 2 > /proc/sys/vm/drop_caches
    r=$(python3 -c "
import os, sys, time
r = sys.argv[1]; names = [os.path.join(r, 'd%03d' % (i // 1000), 'f%05d' % i) for i in range(20000)]
t = time.perf_counter()
for n in names: os.stat(n)
d = time.perf_counter() - t; print('%.3f %.0f' % (d, len(names) / d))" "$MNT")
    printf '%-18s %8s %9s\n' "$kind" $r
  done
fi
if has mount; then
  echo; echo "mount time, $SMALL_INODES-inode image, start to stat of a top-level entry (ms, median of 5):"
  for kind in $(with_base nydusd squashfuse_ll); do
    ts=()
    USE_REPO=$REPO; [ "${kind#*@}" = base ] && USE_REPO=$BASE
    for i in 1 2 3 4 5; do
      unmount_all
      if [ "${kind%@base}" = nydusd ]; then rm -rf "$B/small/cache"; mount_nydusd blobcache "$B/small/cache" "$B/small/image.boot" "$B/small/blobs" d000
      else mount_squash "$B/small/sq.img" d000; fi
      ts+=("$MOUNT_MS")
      [ "${kind%@base}" = nydusd ] && [ $i = 5 ] && echo "  $kind RSS after mount: $(rss_mb $DPID) MB, CPU at mount $(cpu_s $DPID) s"
    done
    echo "  $kind: $(printf '%s\n' "${ts[@]}" | sort -n | sed -n 3p) (all: ${ts[*]})"
  done
fi
unmount_all
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
