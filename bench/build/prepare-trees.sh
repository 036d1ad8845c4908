#!/usr/bin/env bash
# Prepares the two source trees of the builder benchmark under DEST (default $BENCH_DIR/trees):
#   usr/    cp -a of part of this machine's /usr, about 1 GiB (a debootstrap Debian needs mirrors that
#           are unreachable here): usr/bin, usr/sbin, usr/lib/x86_64-linux-gnu, usr/share/perl,
#           usr/share/man — ELF executables and shared libraries (many symlinks, some hardlinks), Perl
#           modules and gzipped man pages. Whatever is there on this machine; sizes are printed.
#   small/  100,000 generated files 0..16 KiB in 1000 dirs, 15% duplicate content (gen_small_files.py,
#           seed 42: byte-identical on every run).
# Usage: bench/build/prepare-trees.sh DEST
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
DEST=${1:?usage: prepare-trees.sh DEST}
USR_PARTS=${USR_PARTS:-"bin sbin lib/x86_64-linux-gnu share/perl share/man"}
mkdir -p "$DEST"

if [ ! -e "$DEST/usr.done" ]; then
  rm -rf "$DEST/usr"
  mkdir -p "$DEST/usr"
  for p in $USR_PARTS; do
    [ -e "/usr/$p" ] || continue
    mkdir -p "$DEST/usr/$(dirname "$p")"
    cp -a "/usr/$p" "$DEST/usr/$p"
  done
  touch "$DEST/usr.done"
fi
if [ ! -e "$DEST/small.done" ]; then
  rm -rf "$DEST/small"
  python3 "$HERE/gen_small_files.py" "$DEST/small" --files "${SMALL_FILES:-100000}" --seed 42
  touch "$DEST/small.done"
fi
for t in usr small; do
  printf '%s: %s MiB (du), %s bytes apparent, %s files, %s dirs, %s symlinks\n' "$t" \
    "$(du -sm "$DEST/$t" | cut -f1)" "$(du -sb "$DEST/$t" | cut -f1)" \
    "$(find "$DEST/$t" -type f | wc -l)" "$(find "$DEST/$t" -type d | wc -l)" "$(find "$DEST/$t" -type l | wc -l)"
done
