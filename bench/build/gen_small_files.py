#!/usr/bin/env python3
"""Deterministic 100k-small-files tree for the builder benchmark (not a test).

usage: gen_small_files.py DEST [--files N] [--seed S]

Layout: 40 top dirs x 25 sub dirs (1000 leaf dirs), files spread round-robin, so about 100 per dir.
Sizes 0..16 KiB, skewed small (size = 16384 * r^2, mean ~5.3 KiB); 1% empty files.
Content mix (by file): 60% text-like (slices of a word corpus: compresses ~3-4x), 25% random bytes
(incompressible), 15% an exact copy of an earlier file's content (whole-file duplicates, which
chunk dedup should catch). Same seed -> byte-identical tree, mtimes fixed to 2024-01-01.
"""
import os
import random
import sys


def main() -> None:
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    dest = args[0]
    files = 100_000
    seed = 42
    if "--files" in args:
        files = int(args[args.index("--files") + 1])
    if "--seed" in args:
        seed = int(args[args.index("--seed") + 1])
    rnd = random.Random(seed)
    words = [
        "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10)))
        for _ in range(2000)
    ]
    corpus = " ".join(rnd.choice(words) for _ in range(200_000)).encode()
    top, sub = 40, 25
    dirs = []
    for i in range(top):
        for j in range(sub):
            d = os.path.join(dest, f"d{i:02d}", f"s{j:02d}")
            os.makedirs(d, exist_ok=True)
            dirs.append(d)
    written = []  # contents of earlier non-empty files, for duplicates
    stamp = 1704067200  # 2024-01-01T00:00:00Z
    total = 0
    for k in range(files):
        r = rnd.random()
        kind = rnd.random()
        if r < 0.01:
            data = b""
        elif kind < 0.15 and written:
            data = written[rnd.randrange(len(written))]
        else:
            size = int(16384 * rnd.random() ** 2)
            if kind < 0.40:
                data = rnd.randbytes(size)
            else:
                off = rnd.randrange(len(corpus) - size - 1)
                data = corpus[off : off + size]
            if data and len(written) < 5000:
                written.append(data)
            elif data and rnd.random() < 0.01:
                written[rnd.randrange(len(written))] = data
        p = os.path.join(dirs[k % len(dirs)], f"f{k:06d}.dat")
        with open(p, "wb") as f:
            f.write(data)
        os.utime(p, (stamp, stamp))
        total += len(data)
    for d in dirs:
        os.utime(d, (stamp, stamp))
    print(f"generated {files} files in {len(dirs)} dirs, {total} bytes, seed {seed}")


if __name__ == "__main__":
    main()
