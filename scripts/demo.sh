#!/usr/bin/env bash
# The main job, end to end on this machine: build an image from a sample tree, check it, unpack it,
# mount the v6 image with the kernel's EROFS, then serve its blob over HTTP and mount it lazily with
# nydusd, reading only what is touched. Everything is cleaned up on exit.
set -euo pipefail
# Comparisons must hold: a failed diff ends the demo with an error.
cd "$(dirname "$0")/.."
ROOT=$PWD
W=$(mktemp -d /tmp/nydus-demo.XXXXXX)
PIDS=()
MOUNTS=()
cleanup() {
  set +e
  for m in "${MOUNTS[@]}"; do timeout 10 umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for l in $(losetup -j "$W/image.disk" -O NAME -n 2>/dev/null); do losetup -d "$l"; done
  rm -rf "$W"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
img() { node "$ROOT/bin/nydus-image.js" "$@"; }

step "1. a sample tree: text, a 24 MiB binary, a duplicate, symlink, hardlink, xattr, fifo"
SRC=$W/src
mkdir -p "$SRC/etc" "$SRC/usr/bin" "$SRC/data/nested/deeper"
printf 'PRETTY_NAME="nydus-ts demo"\n' > "$SRC/etc/os-release"
head -c $((24 * 1024 * 1024)) /dev/urandom > "$SRC/data/big.bin"
cp "$SRC/data/big.bin" "$SRC/data/big-copy.bin"
seq 1 200000 > "$SRC/data/nested/deeper/numbers.txt"
ln -s ../etc/os-release "$SRC/usr/os-release"
ln "$SRC/etc/os-release" "$SRC/etc/os-release.hardlink"
mkfifo "$SRC/data/pipe"
setfattr -n user.demo -v hello "$SRC/etc/os-release" 2>/dev/null || true
du -sh --apparent-size "$SRC"

step "2. nydus-image create (RAFS v6, zstd, 1 MiB chunks, blob-toc)"
mkdir -p "$W/blobs"
img create --bootstrap "$W/image.boot" --blob-dir "$W/blobs" --features blob-toc --output-json "$W/out.json" "$SRC"
BLOB=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).blobs[0])' "$W/out.json")
ls -l "$W/image.boot" "$W/blobs/$BLOB"
echo "(the duplicate 24 MiB file is stored once: the blob is smaller than one copy plus the rest)"

step "3. nydus-image check (every structure, every chunk digest)"
img check "$W/image.boot" --blob-dir "$W/blobs"

step "4. nydus-image unpack to an OCI tar and compare with the source"
img unpack "$W/image.boot" --blob-dir "$W/blobs" --output "$W/unpacked.tar"
mkdir "$W/unpacked" && tar --xattrs -xf "$W/unpacked.tar" -C "$W/unpacked"
diff -r --no-dereference -x pipe "$SRC" "$W/unpacked"; [ -p "$W/unpacked/data/pipe" ]; echo "unpacked tree == source"

step "5. the kernel mounts the v6 image (EROFS, flat block image)"
img export --block "$W/image.boot" --localfs-dir "$W/blobs" --output "$W/image.disk"
mkdir "$W/kmnt"
mount -t erofs -o loop,ro "$W/image.disk" "$W/kmnt" && MOUNTS+=("$W/kmnt")
diff -r --no-dereference -x pipe "$SRC" "$W/kmnt"; [ -p "$W/kmnt/data/pipe" ]; echo "kernel EROFS mount == source"
umount "$W/kmnt"; MOUNTS=()

step "6. serve the blob over HTTP (nydus-backend-proxy) and mount lazily with nydusd"
PORT=$(node -e 's=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
node "$ROOT/bin/nydus-backend-proxy.js" --blobsdir "$W/blobs" --address 127.0.0.1 --port "$PORT" > "$W/proxy.log" 2>&1 &
PIDS+=($!)
cat > "$W/nydusd.json" <<JSON
{
  "device": {
    "backend": { "type": "registry", "config": { "scheme": "http", "host": "127.0.0.1:$PORT", "repo": "demo", "timeout": 5, "retry_limit": 2 } },
    "cache": { "type": "blobcache", "config": { "work_dir": "$W/cache" } }
  },
  "mode": "direct",
  "digest_validate": true,
  "enable_xattr": true
}
JSON
mkdir -p "$W/mnt" "$W/cache"
node "$ROOT/bin/nydusd.js" --config "$W/nydusd.json" --mountpoint "$W/mnt" --bootstrap "$W/image.boot" --apisock "$W/api.sock" --log-level warn &
PIDS+=($!)
for _ in $(seq 1 100); do [ -S "$W/api.sock" ] && grep -q " $W/mnt " /proc/mounts && break; sleep 0.1; done
MOUNTS+=("$W/mnt")
echo "mounted: $(grep " $W/mnt " /proc/mounts | cut -d' ' -f1-3)"
cat "$W/mnt/etc/os-release"
echo "read one small file; backend bytes so far:"
curl -s --unix-socket "$W/api.sock" http://localhost/api/v1/metrics/backend; echo
diff -r --no-dereference -x pipe "$SRC" "$W/mnt"; [ -p "$W/mnt/data/pipe" ]; echo "nydusd mount == source (every byte fetched on demand and verified)"
node "$ROOT/bin/nydusctl.js" --sock "$W/api.sock" metrics backend
echo "blob size: $(stat -c %s "$W/blobs/$BLOB") bytes; cache dir:"; ls -l "$W/cache"

step "done: cleaning up"
