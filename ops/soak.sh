#!/usr/bin/env bash
# Soak run on 127.0.0.1: N backup -> transfer -> verify -> purge cycles on a small real site
# (a coordinator; server node 'srv' with an svn repository that gets a commit each cycle and a
# folder that changes each cycle; backup node 'vault' it pushes to), sampling the resident
# memory (VmRSS, and RssAnon: the heap without the mapped code) and open descriptors of every process every SAMPLE cycles. Every task must
# succeed; each node keeps at most KEEP copies per source (older ones are purged with signed
# orders), so the site's state stays the same size and any growth is the processes' own. Prints the series as CSV (soak.csv in the work folder) and, per process, the first,
# last and largest sample.
# Usage: ops/soak.sh [CYCLES] [SAMPLE]      (defaults 100 and 10; SCM_BACKUP_BIN=path uses that
#        binary instead of a release build; KEEP=3; SOAK_DIR=folder keeps the work folder;
#        HUB_WRAPPER="heaptrack -o DIR/hub" runs the coordinator under that command)
set -euo pipefail
cd "$(dirname "$0")/.."
CYCLES=${1:-100}
SAMPLE=${2:-10}
KEEP=${KEEP:-3}
bash ops/setup.sh
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build -c release --product scm-backup >/dev/null
    SCM_BACKUP_BIN="$PWD/.build/release/scm-backup"
fi
BIN="$SCM_BACKUP_BIN"
if [ -n "${SOAK_DIR:-}" ]; then
    WORK="$SOAK_DIR"
    rm -rf "$WORK" && mkdir -p "$WORK"
else
    WORK=$(mktemp -d /tmp/scm-backup-soak.XXXXXX)
fi
declare -A PID
cleanup() {
    for p in "${PID[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${SOAK_DIR:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

$BIN pki init --dir pki --site soak >/dev/null
for n in hub:coordinator srv:agent vault:agent root:admin; do
    $BIN pki issue --dir pki --name "${n%%:*}" --role "${n##*:}" --out pki >/dev/null
done
svnadmin create repo
mkdir -p conf
echo "cycle 0" >conf/state.txt
cat >site.toml <<EOF
[coordinator]
listen = "127.0.0.1:0"
certificate = "pki/hub.pem"
key = "pki/hub.key"
ca = "pki/ca.pem"
database = "catalog.sqlite"
ticket_key = "pki/ticket-signing.key"
purge_key = "pki/purge-signing.key"
[nodes.srv]
roles = ["server"]
addresses = ["127.0.0.1"]
[nodes.srv.sources.repo]
kind = "svn"
path = "$WORK/repo"
[nodes.srv.sources.conf]
kind = "folder"
path = "$WORK/conf"
[nodes.vault]
roles = ["backup"]
addresses = ["127.0.0.1"]
[[pairings]]
server = "srv"
backup = "vault"
EOF
# shellcheck disable=SC2086 # HUB_WRAPPER is a command with its arguments.
${HUB_WRAPPER:-} $BIN coordinator --config site.toml --port-file port >coordinator.log 2>&1 &
PID[hub]=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
PORT=$(cat port)
# Under a wrapper the coordinator is the wrapper's child: sample it, and stop it (SIGTERM, so
# the wrapper sees a clean exit) at the end.
if [ -n "${HUB_WRAPPER:-}" ]; then PID[hub]=$(pgrep -n -f "$BIN coordinator --config site.toml"); fi
for n in srv vault; do
    STORE_ID=$($BIN init-store --store "store-$n" | awk '{print $NF}')
    cat >"$n.toml" <<EOF
[agent]
coordinator = "https://127.0.0.1:$PORT"
certificate = "pki/$n.pem"
key = "pki/$n.key"
ca = "pki/ca.pem"
store = "store-$n"
store_id = "$STORE_ID"
source_roots = ["$WORK"]
lease_wait_seconds = 5
data_listen = "127.0.0.1:0"
ticket_key = "pki/ticket-signing.pub"
purge_key = "pki/purge-signing.pub"
EOF
    $BIN agent --config "$n.toml" >"$n.log" 2>&1 &
    PID[$n]=$!
done
ADMIN=(--coordinator "https://127.0.0.1:$PORT" --cert pki/root.pem --key pki/root.key --ca pki/ca.pem)
admin() { $BIN "$@" "${ADMIN[@]}"; }

# Waits until every task is finished; fails naming any that did not succeed.
settle() {
    for _ in $(seq 1200); do
        # Only the open and the failed tasks: the history grows with every cycle.
        if admin tasks list --json --state queued,leased,failed,cancelled --limit 1000 | python3 -c '
import json, sys
tasks = json.load(sys.stdin)
open_ = [t for t in tasks if t["state"] in ("queued", "leased")]
bad = [t for t in tasks if t["state"] in ("failed", "cancelled")]
if bad:
    for t in bad: print("task %d %s %s: %s" % (t["id"], t["kind"], t["state"], t.get("lastError")), file=sys.stderr)
    sys.exit(2)
sys.exit(1 if open_ else 0)'; then
            return 0
        else
            [ $? -eq 2 ] && { echo "soak: a task did not succeed" >&2; exit 1; }
        fi
        sleep 0.2
    done
    echo "soak: tasks did not finish in 4 minutes" >&2
    exit 1
}

for _ in $(seq 100); do admin nodes | grep -c "online " | grep -q 2 && break; sleep 0.2; done
echo "cycle,process,rss_kib,anon_kib,fds" >soak.csv
sample() {
    for name in hub srv vault; do
        local p=${PID[$name]}
        local rss anon fds
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")
        anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$p/status")
        fds=$(find "/proc/$p/fd" -mindepth 1 -maxdepth 1 | wc -l)
        echo "$1,$name,$rss,$anon,$fds" >>soak.csv
    done
}

START=$(date +%s)
for cycle in $(seq 1 "$CYCLES"); do
    svnmucc -m "cycle $cycle" put /dev/null "file://$WORK/repo/c$cycle" >/dev/null
    echo "cycle $cycle" >conf/state.txt
    admin tasks submit --kind backup --node srv --source repo >/dev/null
    admin tasks submit --kind backup --node srv --source conf >/dev/null
    settle
    admin transfer --from srv --to vault >/dev/null
    settle
    admin verify --node vault >/dev/null
    settle
    # Keep the newest KEEP copies of each source on each node; purge the rest with signed orders.
    admin artifacts --json | python3 -c '
import json, sys
keep = int(sys.argv[1])
by = {}
for a in json.load(sys.stdin):
    for c in a["copies"]:
        by.setdefault((c["node"], a["source"]), []).append(c["path"])
for (node, _), paths in sorted(by.items()):
    for p in sorted(paths)[:-keep]: print(node, p)' "$KEEP" | while read -r node path; do
        admin tasks submit --kind purge --node "$node" --artifact "$path" >/dev/null
    done
    settle
    if [ "$cycle" -eq 1 ] || [ $((cycle % SAMPLE)) -eq 0 ] || [ "$cycle" -eq "$CYCLES" ]; then
        sample "$cycle"
        echo "soak: cycle $cycle of $CYCLES ($(($(date +%s) - START)) s)"
    fi
done

python3 - "$CYCLES" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open("soak.csv")))
print("%d cycles; per process: first / last / max" % int(sys.argv[1]))
for name in ("hub", "srv", "vault"):
    mine = [r for r in rows if r["process"] == name]
    rss = [int(r["rss_kib"]) for r in mine]
    anon = [int(r["anon_kib"]) for r in mine]
    fds = [int(r["fds"]) for r in mine]
    print("%-6s RSS %6.1f / %6.1f / %6.1f MiB   heap %6.1f / %6.1f / %6.1f MiB   fds %3d / %3d / %3d" % (
        name, rss[0] / 1024, rss[-1] / 1024, max(rss) / 1024, anon[0] / 1024, anon[-1] / 1024,
        max(anon) / 1024, fds[0], fds[-1], max(fds)))
EOF
echo "soak: series in $WORK/soak.csv"
