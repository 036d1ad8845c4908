#!/usr/bin/env bash
# Builder benchmark (not a test): `nydus-image create` (v6, zstd level 3, 1 MiB chunks) vs `mksquashfs
# -comp zstd` at the same level (-Xcompression-level 3; with 128 KiB blocks and with -b 1M, the
# equal-setting rows), mksquashfs at its default level 15 (an extra row, not a like-for-like
# comparison), and `mkfs.erofs` (uncompressed, and -zlz4hc) on a ~1 GiB copy of /usr and on a generated
# 100k-small-files tree. Each tool runs RUNS times per tree, interleaved; the page cache is dropped
# (sync; echo 3 > /proc/sys/vm/drop_caches, needs root) before every run, so every build reads its
# source cold. Wall time, user+sys CPU and peak RSS come from /usr/bin/time -v; output size is the sum
# of the output files (ours: bootstrap + blob). Prints a markdown table of medians and ratios.
# Usage: bench/build/run.sh            (env: BENCH_DIR=/tmp/nydus-build-bench RUNS=3 KEEP=0 TOOLS=...)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# Node 24 from setup (node_modules/.bin/node); a plain `node` may be older, and the native addons built for 24 crash in it.
export PATH="$ROOT/node_modules/.bin:$PATH"
WORK=${BENCH_DIR:-/tmp/nydus-build-bench}
RUNS=${RUNS:-3}
KEEP=${KEEP:-0}
TREES=${TREES:-"usr small"}
OUT=$WORK/out
RES=$WORK/results.tsv
mkdir -p "$WORK"

cleanup() {
  rm -rf "$OUT" "$WORK/app"
  if [ "$KEEP" != 1 ]; then rm -rf "$WORK/trees"; fi
}
trap cleanup EXIT INT TERM

# 1. Build, then run from a private snapshot of dist/ (others may rebuild the shared dist/ meanwhile).
(cd "$ROOT" && npx tsc -p . >"$WORK/tsc.log" 2>&1) || echo "warning: tsc reported errors (see $WORK/tsc.log); using what it emitted" >&2
rm -rf "$WORK/app"
mkdir -p "$WORK/app"
cp -a "$ROOT/dist" "$WORK/app/dist"
cp "$ROOT/package.json" "$WORK/app/"
ln -s "$ROOT/node_modules" "$WORK/app/node_modules"
NYDUS=("node" "$WORK/app/dist/src/cli/nydus-image.js")

# 2. Source trees.
"$HERE/prepare-trees.sh" "$WORK/trees" | tee "$WORK/trees.txt"

# 3. Tools.
TOOLS=${TOOLS:-"nydus mksquashfs_l3_1m mksquashfs_l3 erofs erofs_lz4hc mksquashfs_l15"}
if ! mkfs.erofs --help 2>&1 | grep -q lz4hc; then TOOLS=${TOOLS/erofs_lz4hc/}; fi

tool_cmd() { # tool tree -> CMD array
  local tree=$WORK/trees/$2
  case $1 in
    nydus) CMD=("${NYDUS[@]}" create --fs-version 6 --compressor zstd --chunk-size 0x100000 --bootstrap "$OUT/bootstrap" --blob-dir "$OUT" "$tree") ;;
    # Our builder compresses with zstd level 3 (upstream's default); mksquashfs defaults to level 15.
    mksquashfs_l3) CMD=(mksquashfs "$tree" "$OUT/out.sqfs" -comp zstd -Xcompression-level 3 -noappend -processors 2 -no-progress) ;;
    mksquashfs_l3_1m) CMD=(mksquashfs "$tree" "$OUT/out.sqfs" -comp zstd -Xcompression-level 3 -b 1M -noappend -processors 2 -no-progress) ;;
    mksquashfs_l15) CMD=(mksquashfs "$tree" "$OUT/out.sqfs" -comp zstd -noappend -processors 2 -no-progress) ;;
    erofs) CMD=(mkfs.erofs "$OUT/out.erofs" "$tree") ;;
    erofs_lz4hc) CMD=(mkfs.erofs -zlz4hc "$OUT/out.erofs" "$tree") ;;
  esac
}

secs() { # "h:mm:ss.ss" or "m:ss.ss" -> seconds
  awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }' <<<"$1"
}

: >"$WORK/commands.txt"
printf 'tree\ttool\trun\twall_s\tcpu_s\trss_kb\tout_bytes\n' >"$RES"
for run in $(seq "$RUNS"); do
  for tree in $TREES; do
    for tool in $TOOLS; do
      rm -rf "$OUT"
      mkdir -p "$OUT"
      sync
      echo 3 >/proc/sys/vm/drop_caches
      tool_cmd "$tool" "$tree"
      if [ "$run" = 1 ]; then echo "\$ ${CMD[*]}" >>"$WORK/commands.txt"; fi
      if ! /usr/bin/time -v -o "$WORK/time.txt" "${CMD[@]}" >"$WORK/$tool-$tree.log" 2>&1; then
        echo "$tool on $tree failed, see $WORK/$tool-$tree.log" >&2
        tail -5 "$WORK/$tool-$tree.log" >&2
        exit 1
      fi
      wall=$(secs "$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$WORK/time.txt")")
      user=$(sed -n 's/.*User time (seconds): //p' "$WORK/time.txt")
      sys=$(sed -n 's/.*System time (seconds): //p' "$WORK/time.txt")
      rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/time.txt")
      bytes=$(find "$OUT" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tree" "$tool" "$run" "$wall" "$(awk "BEGIN { print $user + $sys }")" "$rss" "$bytes" | tee -a "$RES"
    done
  done
done
rm -rf "$OUT"

# 4. Report.
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ); $(nproc) vCPU $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM; kernel $(uname -r)"
  echo "node $(node --version); $(mksquashfs -version 2>&1 | head -1); mkfs.erofs $(dpkg-query -W -f '${Version}' erofs-utils 2>/dev/null || echo '?')"
  echo "commands (per tree; \$WORK=$WORK):"
  sed 's/^/  /' "$WORK/commands.txt"
  echo "trees:"
  sed 's/^/  /' "$WORK/trees.txt"
  echo
  python3 "$HERE/report.py" "$RES"
} | tee "$WORK/report.md"
