#!/usr/bin/env python3
"""Summarises V8 .cpuprofile files (node --cpu-prof): self time per function and per builder stage.
usage: cpuprofile_summary.py PROFILE.cpuprofile [...] [--top N]"""
import collections
import json
import os
import sys

# Stage of a sample: the first matching frame, walking from the leaf to the root.
STAGES = [
    ("(idle: main thread waits for I/O or workers)", lambda f, u: f == "(idle)"),
    ("(garbage collector)", lambda f, u: f == "(garbage collector)"),
    ("compress (zstd)", lambda f, u: "compress" in f.lower() and ("compress.js" in u or f == "compress")),
    ("crc32c (JS)", lambda f, u: f == "crc32c"),
    ("digest (blake3)", lambda f, u: f == "digest" and "digest.js" in u),
    ("worker hand-off (postMessage/transfer)", lambda f, u: "compress-pool.js" in u or "compress-worker.js" in u or f == "postMessage"),
    ("blob hash (sha256) + write", lambda f, u: "blob-writer.js" in u),
    ("chunk pipeline (open/read/submit/commit)", lambda f, u: "chunker.js" in u or "dedup.js" in u),
    ("directory walk (lstat/readdir/xattrs)", lambda f, u: "source/dir.js" in u or "xattrs.js" in u),
    ("bootstrap encode (v6 writer)", lambda f, u: "writer/v6.js" in u),
    ("bootstrap validate (rafs reader)", lambda f, u: "/rafs/" in u),
    ("node fs/promises internals", lambda f, u: u.startswith("node:internal/fs") or "internal/fs/" in u),
    ("promise/microtask machinery", lambda f, u: f in ("processTicksAndRejections", "runMicrotasks")),
]


def summarise(path, top):
    p = json.load(open(path))
    nodes = {n["id"]: n for n in p["nodes"]}
    parent = {}
    for n in p["nodes"]:
        for c in n.get("children", []):
            parent[c] = n["id"]
    self_us = collections.Counter()
    stage_us = collections.Counter()
    stage_of = {}

    def stage(nid):
        if nid in stage_of:
            return stage_of[nid]
        cur = nid
        while cur is not None:
            cf = nodes[cur]["callFrame"]
            f, u = cf["functionName"], cf["url"]
            for name, pred in STAGES:
                if pred(f, u):
                    stage_of[nid] = name
                    return name
            cur = parent.get(cur)
        stage_of[nid] = "other"
        return "other"

    for nid, dt in zip(p["samples"], p["timeDeltas"]):
        cf = nodes[nid]["callFrame"]
        key = f'{cf["functionName"] or "(anon)"} {os.path.basename(cf["url"])}:{cf["lineNumber"] + 1}'
        self_us[key] += dt
        stage_us[stage(nid)] += dt
    total = sum(self_us.values()) or 1
    print(f"== {os.path.basename(path)}: {total / 1e6:.2f} s sampled")
    for name, us in stage_us.most_common():
        print(f"  {us / 1e6:7.2f} s {100 * us / total:5.1f}%  {name}")
    print("  top self time:")
    for key, us in self_us.most_common(top):
        print(f"  {us / 1e6:7.2f} s {100 * us / total:5.1f}%  {key}")


args = sys.argv[1:]
top = 15
if "--top" in args:
    i = args.index("--top")
    top = int(args[i + 1])
    del args[i : i + 2]
for a in args:
    summarise(a, top)
