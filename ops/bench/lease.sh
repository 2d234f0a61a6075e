#!/usr/bin/env bash
# Lease latency benchmark: a release coordinator process, then 1 and 200 simulated agents
# long-polling it. Prints, for each, the latency from queueing a task to an agent holding its
# lease and the ratio to a plain authenticated round trip measured in the same run, and the
# coordinator's RSS with 200 agents connected, then the 200 again while one agent reports inventories
# of 10,000 copies (p99 included). Everything runs on 127.0.0.1.
# Usage: ops/bench/lease.sh [SAMPLES]   (default 200; SCM_BACKUP_BIN=path runs that coordinator,
#        e.g. an older release, against this lease-bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
SAMPLES=${1:-200}
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build -c release --product scm-backup >/dev/null
    SCM_BACKUP_BIN="$PWD/.build/release/scm-backup"
fi
swift build -c release --product lease-bench >/dev/null
BIN=.build/release
WORK=$(mktemp -d /tmp/scm-backup-lease-bench.XXXXXX)
trap 'kill $COORD 2>/dev/null || true; rm -rf "$WORK"' EXIT
$SCM_BACKUP_BIN pki init --dir "$WORK/pki" --site bench >/dev/null
$SCM_BACKUP_BIN pki issue --dir "$WORK/pki" --name hub --role coordinator --out "$WORK/certs" >/dev/null
$SCM_BACKUP_BIN pki issue --dir "$WORK/pki" --name bench-admin --role admin --out "$WORK/certs" >/dev/null
# The site: the simulated agents sim0...sim199 (lease-bench issues their certificates).
{
    printf '[coordinator]\nlisten = "127.0.0.1:0"\ncertificate = "certs/hub.pem"\nkey = "certs/hub.key"\n'
    printf 'ca = "pki/ca.pem"\ndatabase = "catalog.sqlite"\n'
    for i in $(seq 0 199); do printf '\n[nodes.sim%d]\nroles = ["server"]\n' "$i"; done
} >"$WORK/site.toml"
$SCM_BACKUP_BIN coordinator --config "$WORK/site.toml" --port-file "$WORK/port" >"$WORK/coordinator.log" 2>&1 &
COORD=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
URL="https://127.0.0.1:$(cat "$WORK/port")"
echo "coordinator pid $COORD at $URL; RSS idle $(awk '/VmRSS/ {print $2, $3}' /proc/$COORD/status)"
for N in 1 200; do
    $BIN/lease-bench --url "$URL" --pki "$WORK/pki" --certs "$WORK/certs" --agents "$N" --samples "$SAMPLES" &
    BENCH=$!
    if [ "$N" = 200 ]; then
        sleep 8
        echo "coordinator RSS with 200 agents long-polling: $(awk '/VmRSS/ {print $2, $3}' /proc/$COORD/status)"
    fi
    wait $BENCH
done
# The long polls of the last run's agents (gone now) are still waiting on the coordinator for
# up to 25 s, and a task handed to one of them would wait for its lease to expire: let them end.
sleep 27
# The same 200 agents while one of them reports an inventory of 10,000 copies after another:
# the catalog writes such a report 100 copies a transaction, so a lease waits behind one batch.
$BIN/lease-bench --url "$URL" --pki "$WORK/pki" --certs "$WORK/certs" --agents 200 --samples "$SAMPLES" \
    --inventory-copies 10000
