#!/usr/bin/env python3
"""delayline.py - user-space network emulator between two network namespaces.

Copied from shared/tools for the nydus-distribute tests and bench (one process per
node<->server link); unchanged apart from this note.

This kernel has no sch_netem (CONFIG_NET_SCH_NETEM unset, no modules), so the
delay is done here: the process creates one TUN device in each namespace and
forwards IP packets between them, applying netem-like semantics per direction:

    serialization at RATE (a packet starts when the link is free and takes
    len*8/RATE s), then a fixed one-way DELAY (+ optional normal jitter, order
    preserved), random LOSS, and a tail-drop queue of QUEUE_MS worth of RATE.

TCP runs end to end through it (handshakes, ACKs, slow start all see the RTT).
The TUN devices are not persistent: they vanish when this process exits.

usage: delayline.py --ns-a NS --dev-a NAME --ns-b NS --dev-b NAME
                    --params FILE [--pidfile FILE]
params FILE is JSON: {"delay_ms": 10, "rate_mbit": 100, "loss": 0.0,
                      "jitter_ms": 0, "queue_ms": 50}; rate_mbit 0 = unlimited.
SIGHUP re-reads the params file; SIGUSR1 prints counters to stderr;
SIGTERM/SIGINT exit.
"""
import argparse
import collections
import ctypes
import fcntl
import json
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000
PR_SET_TIMERSLACK = 29

libc = ctypes.CDLL("libc.so.6", use_errno=True)


def setns(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def open_tun(ns, name):
    setns("/var/run/netns/%s" % ns)
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Dir:
    __slots__ = ("name", "src", "dst", "q", "next_free", "last_due", "pkts", "bytes", "drops_q", "drops_loss", "drops_tx")

    def __init__(self, name, src, dst):
        self.name, self.src, self.dst = name, src, dst
        self.q = collections.deque()
        self.next_free = 0.0
        self.last_due = 0.0
        self.pkts = self.bytes = self.drops_q = self.drops_loss = self.drops_tx = 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ns-a", required=True)
    ap.add_argument("--dev-a", required=True)
    ap.add_argument("--ns-b", required=True)
    ap.add_argument("--dev-b", required=True)
    ap.add_argument("--params", required=True)
    ap.add_argument("--pidfile")
    a = ap.parse_args()

    P = {}
    flags = {"reload": True, "dump": False, "stop": False}

    def load():
        with open(a.params) as f:
            p = json.load(f)
        P["delay"] = float(p.get("delay_ms", 10)) / 1e3
        rate = float(p.get("rate_mbit", 100)) * 1e6
        P["sec_per_byte"] = 8.0 / rate if rate > 0 else 0.0
        P["loss"] = float(p.get("loss", 0.0))
        P["jitter"] = float(p.get("jitter_ms", 0)) / 1e3
        P["qlimit"] = float(p.get("queue_ms", 50)) / 1e3  # seconds of backlog
        print("delayline params: %s" % json.dumps(p), file=sys.stderr, flush=True)

    libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)  # precise select() wakeups
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    fa = open_tun(a.ns_a, a.dev_a)
    fb = open_tun(a.ns_b, a.dev_b)
    libc.setns(home, CLONE_NEWNET)
    os.close(home)

    # self-pipe: a signal wakes select() up, so new params apply to the very next packet
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGHUP, lambda *_: flags.__setitem__("reload", True))
    signal.signal(signal.SIGUSR1, lambda *_: flags.__setitem__("dump", True))
    signal.signal(signal.SIGTERM, lambda *_: flags.__setitem__("stop", True))
    signal.signal(signal.SIGINT, lambda *_: flags.__setitem__("stop", True))
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())

    ab = Dir("a->b", fa, fb)
    ba = Dir("b->a", fb, fa)
    by_src = {fa: ab, fb: ba}
    rnd = random.Random(12345)
    read, write, mono = os.read, os.write, time.monotonic
    fds = [fa, fb, wake_r]

    def dump():
        for d in (ab, ba):
            print("%s: %d pkts %d bytes, drops queue %d loss %d tx %d, queued %d" % (
                d.name, d.pkts, d.bytes, d.drops_q, d.drops_loss, d.drops_tx, len(d.q)), file=sys.stderr, flush=True)

    while not flags["stop"]:
        if flags["reload"]:
            flags["reload"] = False
            load()
        if flags["dump"]:
            flags["dump"] = False
            dump()
        now = mono()
        timeout = None
        for d in (ab, ba):
            q = d.q
            while q and q[0][0] <= now:
                pkt = q.popleft()[1]
                try:
                    write(d.dst, pkt)
                except (BlockingIOError, OSError):
                    d.drops_tx += 1
            if q:
                t = q[0][0] - now
                if timeout is None or t < timeout:
                    timeout = t
        try:
            r, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            continue
        if not r:
            continue
        if wake_r in r:
            try:
                os.read(wake_r, 512)
            except BlockingIOError:
                pass
            continue  # handle flags before touching packets
        now = mono()
        spb, delay, loss, jit, qlim = P["sec_per_byte"], P["delay"], P["loss"], P["jitter"], P["qlimit"]
        for fd in r:
            d = by_src[fd]
            for _ in range(512):
                try:
                    pkt = read(fd, 65536)
                except BlockingIOError:
                    break
                n = len(pkt)
                if loss and rnd.random() < loss:
                    d.drops_loss += 1
                    continue
                start = d.next_free if d.next_free > now else now
                if spb and start - now > qlim:
                    d.drops_q += 1
                    continue
                done = start + n * spb
                d.next_free = done
                due = done + delay
                if jit:
                    due += abs(rnd.gauss(0.0, jit))
                if due < d.last_due:
                    due = d.last_due
                d.last_due = due
                d.q.append((due, pkt))
                d.pkts += 1
                d.bytes += n
    dump()


if __name__ == "__main__":
    main()
