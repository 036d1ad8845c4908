#!/usr/bin/env bash
# bench/eval/ceph.sh - a throw-away one-node Ceph (mon + one bluestore OSD on a file + radosgw) in DIR,
# for the S3 rows of the evaluation. Every daemon runs in the current network namespace (run it with
# `nsenter --net=...` for the server side of the delay line); PIDs are kept in DIR/*.pid.
#   ceph.sh start DIR IP PORT BUCKET   one node, a user (access key EVALKEY, secret EVALSECRET) and
#                                      BUCKET; returns once radosgw answers on IP:PORT
#   ceph.sh put IP PORT BUCKET/KEY FILE   upload (SigV4 by curl)
#   ceph.sh stop DIR                   kills the daemons by PID
set -euo pipefail
cmd=$1 D=$2
C=$D/ceph.conf
stop() {
  for f in "$D"/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
}
s3() { curl -sS --fail --aws-sigv4 aws:amz:us-east-1:s3 --user EVALKEY:EVALSECRET -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$@"; }
if [ "$cmd" = stop ]; then stop; exit 0; fi
if [ "$cmd" = put ]; then s3 -o /dev/null -T "$5" "http://$2:$3/$4"; exit 0; fi
IP=$3 PORT=$4 BUCKET=$5
mkdir -p "$D"/{mon,osd0,run,log}
fsid=$(uuidgen)
cat >"$C" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:6789
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
pid file = $D/\$name.pid
keyring = $D/keyring
osd objectstore = bluestore
osd data = $D/osd0
bluestore block path = $D/osd0/block.file
bluestore block create = true
bluestore block size = 8589934592
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mkfs = false
osd memory target = 939524096
bluestore cache autotune = false
bluestore cache size = 268435456
osd max object name len = 460
osd max object namespace len = 64
osd crush chooseleaf type = 0
osd class update on start = false
osd crush update on start = false
[mon.a]
mon data = $D/mon
[client.rgw]
rgw frontends = beast endpoint=$IP:$PORT
rgw data = $D/rgw
rgw dns name = $IP
CONF
ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool "$D/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
monmaptool --create --add a 127.0.0.1:6789 --fsid "$fsid" "$D/monmap" >/dev/null
ceph-mon -c "$C" --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring"
ceph-mon -c "$C" -i a
uuid=$(uuidgen)
ceph -c "$C" --connect-timeout 30 osd create "$uuid" >/dev/null
ceph-osd -c "$C" -i 0 --mkfs --osd-uuid "$uuid" >"$D/log/osd-mkfs.out" 2>&1
ceph -c "$C" osd crush add osd.0 1.0 host=localhost root=default >/dev/null 2>&1 || true
ceph-osd -c "$C" -i 0
for _ in $(seq 1 240); do ceph -c "$C" osd stat 2>/dev/null | grep -q ' 1 up' && break; sleep 0.5; done
ceph -c "$C" osd stat | grep -q ' 1 up' || { echo "ceph.sh: osd.0 did not come up (see $D/log)" >&2; exit 1; }
mkdir -p "$D/rgw"
radosgw -c "$C" -n client.rgw
for _ in $(seq 1 480); do curl -s -o /dev/null "http://$IP:$PORT/" && break; sleep 0.5; done
curl -sS -o /dev/null "http://$IP:$PORT/" || { echo "ceph.sh: radosgw did not answer on $IP:$PORT (see $D/log)" >&2; exit 1; }
radosgw-admin -c "$C" user create --uid=eval --display-name=eval --access-key=EVALKEY --secret=EVALSECRET >/dev/null
s3 -o /dev/null -X PUT "http://$IP:$PORT/$BUCKET"
