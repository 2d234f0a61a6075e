#!/usr/bin/env bash
# Status benchmark: a coordinator (release build) whose catalog holds ARTIFACTS artifacts
# (default 100,000) of 20 sources on two servers, each with a copy on its server and on two
# backup nodes (3 copies each), written straight into the catalog's SQLite file. Times
# 'scm-backup status --json' SAMPLES times (default 50) against 'scm-backup nodes --json' in
# the same invocation (the same process start, TLS handshake and round trip, no catalog
# work), and prints median and p99 of both and their difference: what status itself costs.
# Usage: ops/bench/status.sh [ARTIFACTS] [SAMPLES]    (SCM_BACKUP_BIN=path uses that binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
ARTIFACTS=${1:-100000}
SAMPLES=${2:-50}
command -v sqlite3 >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q sqlite3 >/dev/null
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build -c release --product scm-backup >/dev/null
    SCM_BACKUP_BIN="$PWD/.build/release/scm-backup"
fi
BIN="$SCM_BACKUP_BIN"
WORK=$(mktemp -d /tmp/scm-backup-status-bench.XXXXXX)
COORD=
trap 'kill $COORD 2>/dev/null || true; rm -rf "$WORK"' EXIT
$BIN pki init --dir "$WORK/pki" --site bench >/dev/null
for n in hub:coordinator root:admin; do
    $BIN pki issue --dir "$WORK/pki" --name "${n%%:*}" --role "${n##*:}" --out "$WORK/pki" >/dev/null
done
{
    printf '[coordinator]\nlisten = "127.0.0.1:0"\ncertificate = "pki/hub.pem"\nkey = "pki/hub.key"\n'
    printf 'ca = "pki/ca.pem"\ndatabase = "catalog.sqlite"\n[verify]\nwindow = "off"\n'
    for s in srv1 srv2; do
        printf '[nodes.%s]\nroles = ["server"]\n' "$s"
        for i in $(seq 0 9); do printf '[nodes.%s.sources.src%d]\nkind = "svn"\npath = "/var/scm/repos/src%d"\n' "$s" "$i" "$i"; done
    done
    printf '[nodes.vault1]\nroles = ["backup"]\n[nodes.vault2]\nroles = ["backup"]\n'
    for s in srv1 srv2; do for v in vault1 vault2; do printf '[[pairings]]\nserver = "%s"\nbackup = "%s"\n' "$s" "$v"; done; done
} >"$WORK/site.toml"
start() {
    rm -f "$WORK/port"
    $BIN coordinator --config "$WORK/site.toml" --port-file "$WORK/port" >>"$WORK/coordinator.log" 2>&1 &
    COORD=$!
    for _ in $(seq 200); do [ -s "$WORK/port" ] && break; sleep 0.1; done
}
start  # makes the catalog
kill $COORD && wait $COORD 2>/dev/null || true
echo "writing $ARTIFACTS artifacts and $((3 * ARTIFACTS)) copies into the catalog..."
sqlite3 "$WORK/catalog.sqlite" >/dev/null <<EOF
PRAGMA journal_mode = WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $ARTIFACTS)
INSERT INTO artifact (id, origin, kind, source, stamp, fileName, size, sha256, md5, revision, created, firstSeenAt, confirmed)
SELECT i + 1, 'srv' || (i % 2 + 1), 'svn', 'src' || (i / 2 % 10),
    strftime('%Y/%m/%d/%H%M%S', 1600000000 + i * 600, 'unixepoch'), 'src-' || i || '.tar.gz', 1048576 + i,
    printf('%064x', i), NULL, CAST(i AS TEXT), datetime(1600000000 + i * 600, 'unixepoch'),
    datetime(1600000000 + i * 600, 'unixepoch'), 1
FROM n;
INSERT INTO copy (artifactId, node, path, size, state, seenAt, verifiedAt)
SELECT a.id, node.name, a.origin || '/svn/' || a.source || '/' || a.stamp || '/' || a.fileName, a.size, 'intact',
    a.firstSeenAt, a.firstSeenAt
FROM artifact a JOIN (SELECT 'origin' AS name UNION ALL SELECT 'vault1' UNION ALL SELECT 'vault2') node;
UPDATE copy SET node = (SELECT origin FROM artifact WHERE id = copy.artifactId) WHERE node = 'origin';
COMMIT;
EOF
start
ADMIN=(--coordinator "https://127.0.0.1:$(cat "$WORK/port")" --cert "$WORK/pki/root.pem" --key "$WORK/pki/root.key" --ca "$WORK/pki/ca.pem")
$BIN status --json "${ADMIN[@]}" >"$WORK/status.json" || [ $? = 3 ]
python3 -c "import json,sys; s=json.load(open('$WORK/status.json')); print('status lists', len(s['sources']), 'sources; newest of srv1/src0:', s['sources'][0]['newest']['stamp'])"
sample() {
    local out=$1
    shift
    : >"$out"
    for _ in $(seq "$SAMPLES"); do
        local t0 t1
        t0=$(date +%s%N)
        "$@" >/dev/null || [ $? = 3 ]
        t1=$(date +%s%N)
        echo $(((t1 - t0) / 1000)) >>"$out"
    done
}
sample "$WORK/nodes.us" $BIN nodes --json "${ADMIN[@]}"
sample "$WORK/status.us" $BIN status --json "${ADMIN[@]}"
python3 - "$WORK/nodes.us" "$WORK/status.us" "$ARTIFACTS" <<'EOF'
import sys, statistics
def load(p): return sorted(int(x) / 1000 for x in open(p))
def p99(v): return v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))]
nodes, status = load(sys.argv[1]), load(sys.argv[2])
print(f"{len(status)} samples each, {int(sys.argv[3]):,} artifacts (3 copies each):")
print(f"  scm-backup nodes  (baseline): median {statistics.median(nodes):7.1f} ms  p99 {p99(nodes):7.1f} ms")
print(f"  scm-backup status:            median {statistics.median(status):7.1f} ms  p99 {p99(status):7.1f} ms")
print(f"  status - baseline:            median {statistics.median(status) - statistics.median(nodes):7.1f} ms  ratio {statistics.median(status) / statistics.median(nodes):.2f}")
EOF
