#!/usr/bin/env python3
"""Builder benchmark report: medians per (tree, tool) from run.sh's results.tsv, and ratios
ours (nydus) / each other tool. usage: report.py results.tsv"""
import csv
import statistics
import sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
trees = list(dict.fromkeys(r["tree"] for r in rows))
tools = list(dict.fromkeys(r["tool"] for r in rows))
LABEL = {
    "nydus": "nydus-image create (v6, zstd level 3, 1 MiB)",
    "mksquashfs_l3_1m": "mksquashfs -comp zstd -Xcompression-level 3 -b 1M (equal settings)",
    "mksquashfs_l3": "mksquashfs -comp zstd -Xcompression-level 3 (128 KiB blocks)",
    "mksquashfs_l15": "mksquashfs -comp zstd, default level 15 (extra: not equal settings)",
    "mksquashfs": "mksquashfs -comp zstd -processors 2 (old runs: default level 15)",
    "erofs": "mkfs.erofs (uncompressed)",
    "erofs_lz4hc": "mkfs.erofs -zlz4hc",
}


def med(tree, tool, key):
    v = [float(r[key]) for r in rows if r["tree"] == tree and r["tool"] == tool]
    return statistics.median(v) if v else None


print("| tree | tool | wall s (median) | CPU s (user+sys) | peak RSS MiB | output MiB | runs (wall s) |")
print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
for t in trees:
    for tool in tools:
        walls = [r["wall_s"] for r in rows if r["tree"] == t and r["tool"] == tool]
        if not walls:
            continue
        print(
            f"| {t} | {LABEL.get(tool, tool)} | {med(t, tool, 'wall_s'):.2f} | {med(t, tool, 'cpu_s'):.2f} | "
            f"{med(t, tool, 'rss_kb') / 1024:.0f} | {med(t, tool, 'out_bytes') / 2**20:.1f} | {', '.join(walls)} |"
        )
print()
print("Ratios ours / other (medians; < 1 means ours is faster / smaller / leaner):")
print()
print("| tree | vs | time | size | peak RSS |")
print("| --- | --- | ---: | ---: | ---: |")
for t in trees:
    for tool in tools:
        if tool == "nydus" or med(t, tool, "wall_s") is None or med(t, "nydus", "wall_s") is None:
            continue
        r = [med(t, "nydus", k) / med(t, tool, k) for k in ("wall_s", "out_bytes", "rss_kb")]
        print(f"| {t} | {LABEL.get(tool, tool)} | {r[0]:.2f} | {r[1]:.2f} | {r[2]:.2f} |")
print()
# The headline is the equal-setting row (same compressor and level, same 1 MiB unit); level 15 is
# shown for reference only.
for t in trees:
    if med(t, "nydus", "wall_s") and med(t, "mksquashfs_l3_1m", "wall_s"):
        print(f"Headline ({t}, equal settings): time {med(t, 'nydus', 'wall_s') / med(t, 'mksquashfs_l3_1m', 'wall_s'):.2f}x, "
              f"size {med(t, 'nydus', 'out_bytes') / med(t, 'mksquashfs_l3_1m', 'out_bytes'):.2f}x of mksquashfs -comp zstd -Xcompression-level 3 -b 1M")
