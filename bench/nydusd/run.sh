#!/usr/bin/env bash
# nydusd vs squashfuse_ll vs kernel EROFS vs the native directory, same tree, one run, side by side.
#   bench/nydusd/run.sh        env: BENCH_DIR=/tmp/nydusd-bench USR_CAP_MB=1024 BIG_MB=1024 SMALL_INODES=100000
# Tree: a copy of /usr (first USR_CAP_MB of file data in path order) + big.bin (BIG_MB of distinct
# real /usr bytes, so zstd has realistic work). Images: nydus v6 zstd (localfs + blobcache),
# mksquashfs -comp zstd, and `nydus-image export --block` of the same v6 image (flat EROFS disk).
# Every measurement starts from dropped page caches (echo 3 > /proc/sys/vm/drop_caches) and a fresh
# mount; "cold" nydusd also starts from an empty blobcache, "warm" from a fully populated one.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
B=${BENCH_DIR:-/tmp/nydusd-bench}
USR_CAP_MB=${USR_CAP_MB:-1024}
BIG_MB=${BIG_MB:-1024}
SMALL_INODES=${SMALL_INODES:-100000}
NI="node $REPO/bin/nydus-image.js"
mkdir -p "$B"
MNT=$B/mnt
mkdir -p "$MNT"
DPID=""

now_ms() { date +%s%3N; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
is_mounted() { awk -v m="$1" '$2==m{f=1} END{exit !f}' /proc/mounts; }
wait_mount() { # $1 mountpoint $2 pid: poll until mounted and answering (deadline 60 s)
  local end=$(( $(now_ms) + 60000 ))
  until is_mounted "$1" && stat "$1/." >/dev/null 2>&1; do
    kill -0 "$2" 2>/dev/null || { echo "daemon $2 died" >&2; return 1; }
    [ "$(now_ms)" -lt "$end" ] || { echo "mount timeout" >&2; return 1; }
    sleep 0.002
  done
}
unmount_all() {
  if [ -n "$DPID" ]; then kill -TERM "$DPID" 2>/dev/null || true; wait "$DPID" 2>/dev/null || true; DPID=""; fi
  if is_mounted "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT"; fi
}
trap unmount_all EXIT
rss_mb() { awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$1/status"; }

# ---- data ------------------------------------------------------------------------------------
if [ ! -f "$B/tree.done" ]; then
  rm -rf "$B/tree"; mkdir -p "$B/tree"
  python3 - "$B/list" "$USR_CAP_MB" <<'EOF'
import os, sys
out, cap = sys.argv[1], int(sys.argv[2]) << 20
total = 0
with open(out, 'w') as f:
    for d, dirs, files in os.walk('/usr'):
        dirs.sort(); files.sort()
        f.write(d + '\n')
        for n in files:
            p = os.path.join(d, n)
            try: st = os.lstat(p)
            except OSError: continue
            if total + st.st_size > cap: continue
            total += st.st_size if not os.path.islink(p) else 0
            f.write(p + '\n')
EOF
  tar -C / --no-recursion -cf - -T "$B/list" 2>/dev/null | tar -C "$B/tree" -xf -
  find /usr -type f -size +256k -print0 2>/dev/null | sort -z | xargs -0 cat 2>/dev/null | head -c $((BIG_MB << 20)) > "$B/tree/big.bin" || true
  touch "$B/tree.done"
fi
TREE_FILES=$(find "$B/tree" -type f | wc -l); TREE_INODES=$(find "$B/tree" | wc -l); TREE_MB=$(du -sm "$B/tree" | cut -f1)
echo "tree: $TREE_INODES inodes, $TREE_FILES files, $TREE_MB MB (big.bin $BIG_MB MiB)"

if [ ! -f "$B/images.done" ]; then
  rm -rf "$B/blobs" "$B/image.boot" "$B/sq.img" "$B/erofs.disk"; mkdir -p "$B/blobs"
  t=$(now_ms); $NI create --fs-version 6 --compressor zstd -B "$B/image.boot" -D "$B/blobs" "$B/tree" >/dev/null; echo "build nydus v6 zstd: $(( $(now_ms) - t )) ms"
  t=$(now_ms); mksquashfs "$B/tree" "$B/sq.img" -comp zstd -noappend -quiet -no-progress >/dev/null; echo "build squashfs zstd: $(( $(now_ms) - t )) ms"
  t=$(now_ms); $NI export --block "$B/image.boot" -D "$B/blobs" -O "$B/erofs.disk" >/dev/null; echo "export erofs disk: $(( $(now_ms) - t )) ms"
  # 100k-inode image for mount time.
  rm -rf "$B/small"; mkdir -p "$B/small/src"
  python3 -c "
import os,sys
r=sys.argv[1]
for i in range(int(sys.argv[2])):
    d=os.path.join(r,'d%03d'%(i//1000)); os.makedirs(d,exist_ok=True); open(os.path.join(d,'f%05d'%i),'w').close()" "$B/small/src" "$SMALL_INODES"
  mkdir -p "$B/small/blobs"
  $NI create --fs-version 6 --compressor zstd -B "$B/small/image.boot" -D "$B/small/blobs" "$B/small/src" >/dev/null
  mksquashfs "$B/small/src" "$B/small/sq.img" -comp zstd -noappend -quiet -no-progress >/dev/null
  touch "$B/images.done"
fi
ls -l "$B/blobs" "$B/sq.img" "$B/erofs.disk" | awk '{print $5, $9}'

cfg() { # $1 work_dir $2 blobdir
  cat > "$B/nydusd.json" <<EOF
{"device":{"backend":{"type":"localfs","config":{"dir":"$2"}},"cache":{"type":"blobcache","config":{"work_dir":"$1"}}},"mode":"direct","digest_validate":false,"iostats_files":false,"enable_xattr":true}
EOF
}
# mount_<kind>: sets DPID and MOUNT_MS. Never call these in $(...): a daemon would inherit the
# substitution's pipe and the substitution would wait for it to exit.
mount_nydusd() { # $1 work_dir $2 bootstrap $3 blobdir
  cfg "$1" "$3"; local t; t=$(now_ms)
  node ${NODE_PROF:-} "$REPO/bin/nydusd.js" --config "$B/nydusd.json" --mountpoint "$MNT" --bootstrap "$2" --log-level warn --thread-num ${THREADS:-4} >>"$B/daemon.log" 2>&1 &
  DPID=$!; wait_mount "$MNT" "$DPID"; MOUNT_MS=$(( $(now_ms) - t ))
}
mount_squash() { local t; t=$(now_ms); squashfuse_ll -f "$1" "$MNT" >>"$B/daemon.log" 2>&1 & DPID=$!; wait_mount "$MNT" "$DPID"; MOUNT_MS=$(( $(now_ms) - t )); }
mount_erofs() { local t; t=$(now_ms); mount -t erofs -o loop,ro "$B/erofs.disk" "$MNT"; MOUNT_MS=$(( $(now_ms) - t )); }

prepare() { # $1 kind: fresh mount, dropped caches; sets MOUNT_MS
  unmount_all; drop
  case $1 in
    native) MOUNT_MS=0 ;;
    nydusd-cold) rm -rf "$B/cache"; mkdir -p "$B/cache"; mount_nydusd "$B/cache" "$B/image.boot" "$B/blobs" ;;
    nydusd-warm) mount_nydusd "$B/cache" "$B/image.boot" "$B/blobs" ;;
    squashfuse_ll) mount_squash "$B/sq.img" ;;
    erofs) mount_erofs ;;
  esac
}
root_of() { [ "$1" = native ] && echo "$B/tree" || echo "$MNT"; }
secs() { python3 -c "import sys; print('%.3f' % ((int(sys.argv[2]) - int(sys.argv[1])) / 1000))" "$1" "$2"; }

RAND=$B/rand.py
cat > "$RAND" <<'EOF'
import os, random, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY); size = os.fstat(fd).st_size
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
random.seed(42); n = int(sys.argv[2]); offs = [random.randrange(0, size // 4096) * 4096 for _ in range(n)]
t = time.perf_counter()
for o in offs: os.pread(fd, 4096, o)
print('%.0f' % (n / (time.perf_counter() - t)))
EOF

# Warm the nydusd cache once (also validates the content path end to end).
rm -rf "$B/cache"; mkdir -p "$B/cache"
prepare nydusd-warm; tar -C "$MNT" -cf - . | cat > /dev/null; unmount_all

printf '\n%-14s %9s %9s %10s %10s %10s %8s\n' kind mount_ms walk_s tree_MB/s big_MB/s rand_iops rss_MB
for kind in native erofs squashfuse_ll nydusd-warm nydusd-cold; do
  prepare $kind; m=$MOUNT_MS; R=$(root_of $kind)
  t=$(now_ms); find "$R" -printf '%s %m\n' > /dev/null; walk=$(secs "$t" "$(now_ms)")
  prepare $kind
  t=$(now_ms); bytes=$(tar -C "$R" -cf - . | wc -c); tree=$(python3 -c "print('%.0f' % ($bytes / 1e6 / (($(now_ms) - $t) / 1000)))")
  rss=$([ -n "$DPID" ] && rss_mb "$DPID" || echo -)
  prepare $kind
  t=$(now_ms); dd if="$R/big.bin" of=/dev/null bs=1M status=none; big=$(python3 -c "print('%.0f' % ($BIG_MB * 1.048576 / (($(now_ms) - $t) / 1000)))")
  prepare $kind
  iops=$(python3 "$RAND" "$R/big.bin" ${RAND_N:-20000})
  printf '%-14s %9s %9s %10s %10s %10s %8s\n' $kind "$m" "$walk" "$tree" "$big" "$iops" "$rss"
done
unmount_all

echo; echo "mount time, $SMALL_INODES-inode image (ms, median of 5):"
for kind in nydusd squashfuse_ll; do
  ts=()
  for i in 1 2 3 4 5; do
    unmount_all
    if [ $kind = nydusd ]; then rm -rf "$B/small/cache"; mkdir -p "$B/small/cache"; mount_nydusd "$B/small/cache" "$B/small/image.boot" "$B/small/blobs"
    else mount_squash "$B/small/sq.img"; fi
    ts+=("$MOUNT_MS")
    [ $kind = nydusd ] && [ $i = 5 ] && echo "  nydusd RSS after mount: $(rss_mb $DPID) MB"
  done
  echo "  $kind: $(printf '%s\n' "${ts[@]}" | sort -n | sed -n 3p) (all: ${ts[*]})"
done
unmount_all
