#!/usr/bin/env bash
# Idle-connection flood benchmark: a coordinator process on 127.0.0.1, then an attacker from
# another loopback address (127.0.0.2) that keeps 1,000 TCP connections open without ever
# starting TLS (reopening each one the coordinator closes). From one address at most
# max_connections_per_address (64) may be in their handshake: the rest are closed at once. Prints the coordinator's open file descriptors and the latency of an
# authenticated GET /v1/nodes (curl with an operator certificate, pinned to the coordinator's
# identity name) before and during the flood, and their ratio. Everything runs on 127.0.0.1.
# Usage: ops/bench/idle.sh [SAMPLES]   (default 100). SCM_BACKUP_BIN picks the binary (default:
# a release build made here).
set -euo pipefail
cd "$(dirname "$0")/../.."
SAMPLES=${1:-100}
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build -c release --product scm-backup >/dev/null
    SCM_BACKUP_BIN=.build/release/scm-backup
fi
WORK=$(mktemp -d /tmp/scm-backup-idle-bench.XXXXXX)
trap 'kill $COORD $FLOOD 2>/dev/null || true; rm -rf "$WORK"' EXIT
FLOOD=
"$SCM_BACKUP_BIN" pki init --dir "$WORK/pki" --site bench >/dev/null
"$SCM_BACKUP_BIN" pki issue --dir "$WORK/pki" --name hub --role coordinator --out "$WORK/certs" >/dev/null
"$SCM_BACKUP_BIN" pki issue --dir "$WORK/pki" --name alice --role operator --out "$WORK/certs" >/dev/null
printf '[coordinator]\nlisten = "127.0.0.1:0"\ncertificate = "certs/hub.pem"\nkey = "certs/hub.key"\nca = "pki/ca.pem"\ndatabase = "catalog.sqlite"\n\n[nodes.srv1]\nroles = ["server"]\n' >"$WORK/site.toml"
"$SCM_BACKUP_BIN" coordinator --config "$WORK/site.toml" --port-file "$WORK/port" >"$WORK/coordinator.log" 2>&1 &
COORD=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port")
# The coordinator's identity name (Protocol/identity.md): curl checks it like our clients do.
ID="n$(printf 'scm-backup-identity/1\0coordinator\0hub' | sha256sum | cut -c1-32).id.scm-backup.invalid"
request() {
    curl -s -o /dev/null -w '%{time_total}\n' --resolve "$ID:$PORT:127.0.0.1" --cacert "$WORK/pki/ca.pem" \
        --cert "$WORK/certs/alice.pem" --key "$WORK/certs/alice.key" "https://$ID:$PORT/v1/nodes" || echo fail
}
fds() { ls /proc/$COORD/fd | wc -l; }
stats() { grep -v fail | sort -n | awk '{a[NR]=$1} END {printf "median %.2f ms, p95 %.2f ms, max %.2f ms", a[int(NR/2)+1]*1000, a[int(NR*0.95)]*1000, a[NR]*1000}'; }
request >/dev/null  # warm up
echo "coordinator pid $COORD on port $PORT: $(fds) descriptors idle"
for _ in $(seq "$SAMPLES"); do request; done >"$WORK/before"
echo "GET /v1/nodes, no flood:       $(stats <"$WORK/before")"
python3 - "$PORT" >"$WORK/flood.log" 2>&1 <<'PY' &
import socket, sys, time, select
port = int(sys.argv[1]); want = 1000; conns = []; end = time.time() + 600
while time.time() < end:
    live = []
    for s in conns:
        r, _, _ = select.select([s], [], [], 0)
        if r:
            try:
                if s.recv(1, socket.MSG_PEEK) == b"": s.close(); continue
            except OSError: s.close(); continue
        live.append(s)
    conns = live
    while len(conns) < want:
        s = socket.socket(); s.setblocking(True)
        try: s.bind(("127.0.0.2", 0)); s.connect(("127.0.0.1", port)); conns.append(s)
        except OSError: s.close(); break
    time.sleep(0.05)
PY
FLOOD=$!
sleep 3
echo "flood from 127.0.0.2: $(ls /proc/$FLOOD/fd | wc -l) descriptors held by the attacker (1000 wanted, reopened as the coordinator closes them)"
echo "coordinator descriptors during the flood: $(fds) (sampled)"
for _ in $(seq "$SAMPLES"); do request; done >"$WORK/during"
echo "coordinator descriptors after the samples: $(fds)"
echo "GET /v1/nodes, during flood:   $(stats <"$WORK/during")"
failed=$(grep -c 'fail' "$WORK/during" || true)
b=$(grep -v fail "$WORK/before" | sort -n | awk '{a[NR]=$1} END {print a[int(NR/2)+1]}')
d=$(grep -v fail "$WORK/during" | sort -n | awk '{a[NR]=$1} END {print a[int(NR/2)+1]}')
echo "ratio of medians (during / before): $(awk -v b="$b" -v d="$d" 'BEGIN {printf "%.2f", d/b}'); failed requests: $failed"
echo "refusals logged by the coordinator: $(grep -c 'request refused' "$WORK/coordinator.log" || true) lines (rate-limited per peer and code)"
