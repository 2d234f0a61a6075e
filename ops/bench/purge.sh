#!/usr/bin/env bash
# Purge benchmark: one server node srv1 whose store and catalog hold COPIES artifacts (default
# 10,000) of 10 sources, each also held verified on two backup nodes (catalog only), under
# [retention] keep_last = 10, so that the purge stage deletes all but 100 on srv1.
#  - decision: 'purge --node srv1 --json' (the plan over every copy on the node), SAMPLES times
#    (default 5), against 'nodes --json' (same process start, TLS and round trip, no planning);
#  - deletion: the stage applied until nothing is left to delete (orders of at most 250
#    copies, up to 40 per stage), the agent's own time per task (hash each copy against the order, floors, move to
#    the trash, fsync) summed, against a baseline of the same work by the shell on a copy of the
#    store: sha256sum of every copy, mv of each with its sidecar into a trash folder, sync.
# Usage: ops/bench/purge.sh [COPIES] [SAMPLES]    (SCM_BACKUP_BIN=path uses that binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
COPIES=${1:-10000}
SAMPLES=${2:-5}
command -v sqlite3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q sqlite3 >/dev/null
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build -c release --product scm-backup >/dev/null
    SCM_BACKUP_BIN="$PWD/.build/release/scm-backup"
fi
BIN="$SCM_BACKUP_BIN"
WORK=$(mktemp -d /tmp/scm-backup-purge-bench.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
$BIN pki init --dir "$WORK/pki" --site bench >/dev/null
for n in hub:coordinator root:admin srv1:agent; do
    $BIN pki issue --dir "$WORK/pki" --name "${n%%:*}" --role "${n##*:}" --out "$WORK/pki" >/dev/null
done
{
    printf '[coordinator]\nlisten = "127.0.0.1:0"\ncertificate = "pki/hub.pem"\nkey = "pki/hub.key"\n'
    printf 'ca = "pki/ca.pem"\ndatabase = "catalog.sqlite"\npurge_key = "pki/purge-signing.key"\n'
    printf '[schedule]\ndefault = "off"\n[verify]\nwindow = "off"\n[retention]\nkeep_last = 10\n'
    printf '[nodes.srv1]\nroles = ["server"]\naddresses = ["127.0.0.1"]\n'
    for i in $(seq 0 9); do printf '[nodes.srv1.sources.src%d]\nkind = "folder"\npath = "/srv/src%d"\n' "$i" "$i"; done
    printf '[nodes.vault1]\nroles = ["backup"]\n[nodes.vault2]\nroles = ["backup"]\n'
    printf '[[pairings]]\nserver = "srv1"\nbackup = "vault1"\n[[pairings]]\nserver = "srv1"\nbackup = "vault2"\n'
} >"$WORK/site.toml"
start() {
    rm -f "$WORK/port"
    $BIN coordinator --config "$WORK/site.toml" --port-file "$WORK/port" >>"$WORK/coordinator.log" 2>&1 &
    COORD=$!
    for _ in $(seq 200); do [ -s "$WORK/port" ] && break; sleep 0.1; done
}
start  # makes the catalog
kill $COORD && wait $COORD 2>/dev/null || true

# One real artifact (a backup of a small folder), copied into COPIES stamps with their sidecars.
mkdir -p "$WORK/src" && head -c 65536 /dev/urandom >"$WORK/src/data"
STORE_ID=$($BIN init-store --store "$WORK/store" | awk '{print $NF}')
$BIN backup --store "$WORK/template" --node srv1 --kind folder --name src0 "$WORK/src" >/dev/null
TEMPLATE=$(find "$WORK/template/srv1" -name '*.tar.gz' | head -1)
echo "writing $COPIES artifacts into srv1's store and $((3 * COPIES)) copies into the catalog..."
python3 - "$TEMPLATE" "$WORK/store" "$WORK/catalog.sql" "$COPIES" <<'EOF'
import json, os, sys, time, hashlib
template, store, sql, copies = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = open(template, "rb").read()
dna = json.load(open(template + ".dna"))
sha = hashlib.sha256(data).hexdigest()
now = int(time.time()) - 86400
out = open(sql, "w")
out.write("BEGIN;\n")
for i in range(copies):
    source = "src%d" % (i % 10)
    t = now - (copies - i) * 60
    stamp = time.strftime("%Y/%m/%d/%H%M%S", time.gmtime(t))
    name = "%s-%06d.tar.gz" % (source, i)
    rel = "srv1/folder/%s/%s/%s" % (source, stamp, name)
    os.makedirs(os.path.dirname(os.path.join(store, rel)), exist_ok=True)
    with open(os.path.join(store, rel), "wb") as f: f.write(data)
    d = dict(dna, artifact=name, source=source, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)))
    with open(os.path.join(store, rel) + ".dna", "w") as f: json.dump(d, f, indent=2, sort_keys=True)
    created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
    seen = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + 86000))
    out.write("INSERT INTO artifact (id, origin, kind, source, stamp, fileName, size, sha256, created, firstSeenAt, confirmed) "
              "VALUES (%d, 'srv1', 'folder', '%s', '%s', '%s', %d, '%s', '%s', '%s', 1);\n" % (i + 1, source, stamp, name, len(data), sha, created, created))
    for node in ("srv1", "vault1", "vault2"):
        out.write("INSERT INTO copy (artifactId, node, path, size, state, seenAt, verifiedAt, sha256) "
                  "VALUES (%d, '%s', '%s', %d, 'intact', '%s', '%s', '%s');\n" % (i + 1, node, rel, len(data), seen, seen, sha))
for s in range(10):
    folder = os.path.join(store, "srv1/folder/src%d" % s)
    newest = max(os.path.relpath(os.path.dirname(os.path.join(r, f)), folder)
                 for r, _, fs in os.walk(folder) for f in fs if f.endswith(".tar.gz"))
    os.symlink(newest, os.path.join(folder, "last"))
out.write("COMMIT;\n")
EOF
sqlite3 "$WORK/catalog.sqlite" <"$WORK/catalog.sql" >/dev/null
cp -a "$WORK/store" "$WORK/baseline-store"
start
PIDS+=($COORD)
PORT=$(cat "$WORK/port")
cat >"$WORK/srv1.toml" <<EOF
[agent]
coordinator = "https://127.0.0.1:$PORT"
certificate = "pki/srv1.pem"
key = "pki/srv1.key"
ca = "pki/ca.pem"
store = "store"
store_id = "$STORE_ID"
purge_key = "pki/purge-signing.pub"
lease_wait_seconds = 20
EOF
$BIN agent --config "$WORK/srv1.toml" >"$WORK/srv1.log" 2>&1 &
PIDS+=($!)
ADMIN=(--coordinator "https://127.0.0.1:$PORT" --cert "$WORK/pki/root.pem" --key "$WORK/pki/root.key" --ca "$WORK/pki/ca.pem")
admin() { $BIN "$@" "${ADMIN[@]}"; }
sample() {
    local out=$1
    shift
    : >"$out"
    for _ in $(seq "$SAMPLES"); do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$out"
    done
}
sample "$WORK/nodes.us" admin nodes --json
sample "$WORK/plan.us" admin purge --node srv1 --json
admin purge --node srv1 --json >"$WORK/plan.json"

# Deletion: apply until nothing is left to delete on srv1 (each stage queues up to 40 orders).
T0=$(date +%s%N)
for _ in $(seq 100); do
    admin purge --node srv1 --apply --json >"$WORK/apply.json"
    TASK=$(python3 -c "import json; print(json.load(open('$WORK/apply.json')).get('task') or '')")
    [ -z "$TASK" ] && break
    for _ in $(seq 3000); do
        [ "$(admin tasks list --state queued,leased --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 0 ] && break
        sleep 0.2
    done
done
FAILED=$(admin tasks list --state failed --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$FAILED" = 0 ] || { echo "$FAILED purge tasks failed:"; admin tasks list --state failed; tail -5 "$WORK/srv1.log"; exit 1; }
WALL=$((($(date +%s%N) - T0) / 1000))
# The coordinator's own time for the first stage (catalog read and plan, before any deletion).
STAGE_MS=$(grep -m1 'purge stage planned' "$WORK/coordinator.log" | sed 's/.*scm.ms=\([0-9.]*\).*/\1/')
admin tasks list --limit 1000 --json >"$WORK/tasks.json"

# The baseline: the same hashing and moves by the shell on the copy of the store.
(cd "$WORK/baseline-store" && python3 -c "
import json; plan = json.load(open('$WORK/plan.json'))
print('\n'.join(c['path'] for c in plan['copies'] if c['delete']))" >"$WORK/doomed")
T0=$(date +%s%N)
(
    cd "$WORK/baseline-store"
    xargs -a "$WORK/doomed" sha256sum >/dev/null
    while read -r p; do
        mkdir -p ".trash/bench/$(dirname "$p")"
        mv "$p" "$p.dna" ".trash/bench/$(dirname "$p")/"
    done <"$WORK/doomed"
    sync
)
BASE=$((($(date +%s%N) - T0) / 1000))
python3 - "$WORK" "$COPIES" "$WALL" "$BASE" "$STAGE_MS" <<'EOF'
import json, os, statistics, sys
work, copies, wall, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1e6, int(sys.argv[4]) / 1e6
def us(name):
    xs = sorted(int(l) for l in open(f"{work}/{name}.us"))
    return statistics.median(xs) / 1000
plan = json.load(open(f"{work}/plan.json"))
doomed = sum(c["delete"] for c in plan["copies"])
n, p = us("nodes"), us("plan")
print(f"decision: 'purge --node srv1 --json' over {len(plan['copies'])} copies ({doomed} to delete): median {p:.1f} ms"
      f" vs nodes {n:.1f} ms -> {p - n:.1f} ms more (ratio {p / n:.2f}; {os.path.getsize(work + '/plan.json') / 1e6:.1f} MB of JSON)")
print(f"          the first stage inside the coordinator (catalog read, plan, and recording every artifact"
      f" replicated for the first time): {float(sys.argv[5]):.1f} ms")
tasks = [t for t in json.load(open(f"{work}/tasks.json")) if t["kind"] == "purge"]
own = sum(t.get("ownSeconds") or 0 for t in tasks)
deleted = sum(len(t.get("artifacts") or []) for t in tasks)
print(f"deletion: {len(tasks)} purge tasks, {deleted} copies: agent own time {own:.2f} s"
      f" ({own / max(deleted, 1) * 1000:.2f} ms/copy), wall with planning and leases {wall:.2f} s")
print(f"baseline: sha256sum + mv into a trash + sync of the same copies: {base:.2f} s"
      f" -> agent / baseline {own / base:.2f}")
EOF
