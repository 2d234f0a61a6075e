#!/usr/bin/env bash
# Run overhead benchmark, one invocation, everything on 127.0.0.1 (release build):
#  a site of one server 'srv1' with N small folder sources (default 50), a backup node 'vault1'
#  it pushes to and a backup node 'vault2' that pulls from it; one 'scm-backup run --wait' over
#  all of them. Prints the run's wall time against (a) the sum of its tasks' own times (lease to
#  result, from the catalog), (b) the busiest node's sum (each agent runs one task at a time, so
#  no schedule can beat it), and (c) a baseline made in the same invocation: the same N backups
#  with the local 'scm-backup backup' and two 'cp' of each artifact and sidecar. The gap between
#  the wall time and (b) is the scheduling overhead: polls, signals, tickets, the run driver.
# Usage: ops/bench/runs.sh [SOURCES]     (SCM_BACKUP_BIN=path uses that binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-50}
command -v bc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q bc >/dev/null
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build -c release --product scm-backup >/dev/null
    SCM_BACKUP_BIN="$PWD/.build/release/scm-backup"
fi
BIN="$SCM_BACKUP_BIN"
WORK=$(mktemp -d /tmp/scm-backup-runs-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }

$BIN pki init --dir "$WORK/pki" --site bench >/dev/null
for n in hub:coordinator srv1:agent vault1:agent vault2:agent root:admin; do
    $BIN pki issue --dir "$WORK/pki" --name "${n%%:*}" --role "${n##*:}" --out "$WORK/pki" >/dev/null
done
{
    printf '[coordinator]\nlisten = "127.0.0.1:0"\ncertificate = "pki/hub.pem"\nkey = "pki/hub.key"\n'
    printf 'ca = "pki/ca.pem"\ndatabase = "catalog.sqlite"\nticket_key = "pki/ticket-signing.key"\n'
    printf '[schedule]\ndefault = "off"\n[verify]\nwindow = "off"\n'
    printf '[nodes.srv1]\nroles = ["server"]\naddresses = ["127.0.0.1"]\n'
    for i in $(seq -w 1 "$N"); do
        mkdir -p "$WORK/src/s$i"
        head -c 4096 /dev/urandom >"$WORK/src/s$i/data"
        printf '[nodes.srv1.sources.s%s]\nkind = "folder"\npath = "%s"\n' "$i" "$WORK/src/s$i"
    done
    printf '[nodes.vault1]\nroles = ["backup"]\naddresses = ["127.0.0.1"]\n'
    printf '[nodes.vault2]\nroles = ["backup"]\naddresses = ["127.0.0.1"]\n'
    printf '[[pairings]]\nserver = "srv1"\nbackup = "vault1"\n'
    printf '[[pairings]]\nserver = "srv1"\nbackup = "vault2"\ndirection = "pull"\n'
} >"$WORK/site.toml"

# --- the baseline: the same backups and copies without a coordinator ---------------------
mkdir -p "$WORK/base/v1" "$WORK/base/v2"
T0=$(now)
for i in $(seq -w 1 "$N"); do
    $BIN backup --store "$WORK/base/store" --node srv1 --kind folder --name "s$i" "$WORK/src/s$i" >/dev/null
done
find "$WORK/base/store/srv1" -name '*.tar.gz*' -exec cp {} "$WORK/base/v1/" \; -exec cp {} "$WORK/base/v2/" \;
sync
BASE=$(echo "$(now) - $T0" | bc -l)

# --- the site ----------------------------------------------------------------------------
$BIN coordinator --config "$WORK/site.toml" --port-file "$WORK/port" >"$WORK/coordinator.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port")
for n in srv1 vault1 vault2; do
    STORE_ID=$($BIN init-store --store "$WORK/store-$n" | awk '{print $NF}')
    cat >"$WORK/$n.toml" <<EOF
[agent]
coordinator = "https://127.0.0.1:$PORT"
certificate = "pki/$n.pem"
key = "pki/$n.key"
ca = "pki/ca.pem"
store = "store-$n"
store_id = "$STORE_ID"
source_roots = ["$WORK/src"]
lease_wait_seconds = 20
data_listen = "127.0.0.1:0"
ticket_key = "pki/ticket-signing.pub"
EOF
    $BIN agent --config "$WORK/$n.toml" >"$WORK/$n.log" 2>&1 &
    PIDS+=($!)
done
ADMIN=(--coordinator "https://127.0.0.1:$PORT" --cert "$WORK/pki/root.pem" --key "$WORK/pki/root.key" --ca "$WORK/pki/ca.pem")
admin() { $BIN "$@" "${ADMIN[@]}"; }
for _ in $(seq 100); do
    [ "$(admin nodes --json | python3 -c 'import json,sys; print(sum(n["online"] for n in json.load(sys.stdin)))')" = 3 ] && break
    sleep 0.2
done
T0=$(now)
admin run --wait --poll-seconds 0.2 --json >"$WORK/run.json"
WALL=$(echo "$(now) - $T0" | bc -l)
admin tasks list --limit 1000 --json >"$WORK/tasks.json"
python3 - "$WORK/run.json" "$WORK/tasks.json" "$WALL" "$BASE" "$N" <<'EOF'
import json, sys
run = json.load(open(sys.argv[1])); tasks = {t["id"]: t for t in json.load(open(sys.argv[2]))}
wall, base, n = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
ids = [s["backupTask"] for s in run["sources"]] + [c["task"] for s in run["sources"] for c in s["copies"]]
own = {}
for i in ids:
    task = tasks[i]
    own.setdefault(task["node"], 0.0)
    own[task["node"]] += task["ownSeconds"]
total = sum(own.values()); busiest = max(own.values())
ok = sum(1 for s in run["sources"] if s["state"] == "succeeded")
print(f"run of {n} sources: {run['state']} ({ok} succeeded), {len(ids)} tasks")
print(f"  wall {wall:.2f} s (scm-backup run --wait, from the request to the run's end)")
print(f"  tasks' own times: sum {total:.2f} s; per node " + ", ".join(f"{k} {v:.2f} s" for k, v in sorted(own.items())))
print(f"  wall / busiest node's sum: {wall / busiest:.2f}  (overhead {wall - busiest:.2f} s, {(wall - busiest) / len(ids) * 1000:.0f} ms a task)")
print(f"  wall / sum of all tasks:   {wall / total:.2f}  (three agents work at once)")
print(f"baseline (local backup + 2 cp each, same invocation): {base:.2f} s; run / baseline: {wall / base:.2f}")
EOF
