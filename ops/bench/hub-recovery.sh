#!/usr/bin/env bash
# Hub recovery benchmark: three agents (server srv1, backup nodes vault1 and vault2) whose stores
# hold ARTIFACTS artifacts (default 10,000) of 10 folder sources. srv1 keeps only the even ones
# (the odd ones it lost: only the hub's receipts on the vaults vouch for them); each vault holds
# every one with its receipt, and vault2 also holds FORGED (default 100) artifacts of srv1 that
# no receipt vouches for.
#  - rebuild: 'catalog rebuild', the coordinator and the agents started, until
#    'catalog rebuild --report --wait' says every inventory is in; against a baseline of the
#    same reading and writing by the shell: cat of every sidecar and receipt of the three stores
#    and sqlite3 inserting as many artifact and copy rows in one transaction;
#  - hub restore: the rebuilt hub's self-backup (its snapshot, backed up as the hub node's
#    folder source and sent to vault1), the hub killed, 'hub restore' into a fresh folder;
#    against a baseline of tar xzf and sha256sum of the same artifact on the same disk.
# Usage: ops/bench/hub-recovery.sh [ARTIFACTS] [FORGED]   (SCM_BACKUP_BIN=path uses that binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
ARTIFACTS=${1:-10000}
FORGED=${2:-100}
bash ops/setup.sh >/dev/null
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build -c release --product scm-backup >/dev/null
    SCM_BACKUP_BIN="$PWD/.build/release/scm-backup"
fi
BIN="$SCM_BACKUP_BIN"
WORK=$(mktemp -d /tmp/scm-backup-recovery-bench.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
$BIN pki init --dir "$WORK/pki" --site bench >/dev/null
for n in hub:coordinator root:admin srv1:agent vault1:agent vault2:agent hubhost:agent; do
    $BIN pki issue --dir "$WORK/pki" --name "${n%%:*}" --role "${n##*:}" --out "$WORK/pki" >/dev/null
done
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
write_site() {
    {
        printf '[coordinator]\nlisten = "127.0.0.1:%s"\ncertificate = "pki/hub.pem"\nkey = "pki/hub.key"\n' "$PORT"
        printf 'ca = "pki/ca.pem"\ndatabase = "catalog.sqlite"\npurge_key = "pki/purge-signing.key"\n'
        printf 'ticket_key = "pki/ticket-signing.key"\nself_backup = "%s/self-backup"\nlease_seconds = 30\n' "$WORK"
        printf '[schedule]\ndefault = "off"\n[verify]\nwindow = "off"\n'
        printf '[nodes.srv1]\nroles = ["server"]\naddresses = ["127.0.0.1"]\n'
        for i in $(seq 0 9); do printf '[nodes.srv1.sources.src%d]\nkind = "folder"\npath = "/srv/src%d"\n' "$i" "$i"; done
        printf '[nodes.hubhost]\nroles = ["hub", "server"]\naddresses = ["127.0.0.1"]\n'
        printf '[nodes.hubhost.sources.hub-self]\nkind = "folder"\npath = "%s/self-backup"\n' "$WORK"
        for v in vault1 vault2; do printf '[nodes.%s]\nroles = ["backup"]\naddresses = ["127.0.0.1"]\n' $v; done
        for v in vault1 vault2; do printf '[[pairings]]\nserver = "srv1"\nbackup = "%s"\n' $v; done
        printf '[[pairings]]\nserver = "hubhost"\nbackup = "vault1"\n'
    } >"$WORK/site.toml"
}
write_site
for n in srv1 vault1 vault2 hubhost; do
    ID=$($BIN init-store --store "$WORK/store-$n" | awk '{print $NF}')
    cat >"$WORK/$n.toml" <<EOF
[agent]
coordinator = "https://127.0.0.1:$PORT"
certificate = "pki/$n.pem"
key = "pki/$n.key"
ca = "pki/ca.pem"
store = "store-$n"
store_id = "$ID"
ticket_key = "pki/ticket-signing.pub"
data_listen = "127.0.0.1:0"
source_roots = ["$WORK"]
lease_wait_seconds = 20
EOF
done

# One real artifact, copied into ARTIFACTS stamps with their sidecars and the hub's receipts
# (signed as the coordinator signs them: Protocol/store.md, Protocol/transfer.md).
mkdir -p "$WORK/src" && head -c 65536 /dev/urandom >"$WORK/src/data"
$BIN backup --store "$WORK/template" --node srv1 --kind folder --name src0 "$WORK/src" >/dev/null
TEMPLATE=$(find "$WORK/template/srv1" -name '*.tar.gz' | head -1)
echo "writing $ARTIFACTS artifacts into three stores ($((ARTIFACTS / 2)) lost on srv1, $FORGED forged on vault2)..."
/usr/bin/python3 - "$TEMPLATE" "$WORK" "$ARTIFACTS" "$FORGED" <<'EOF'
import base64, hashlib, json, os, sys, time
from cryptography.hazmat.primitives.serialization import load_pem_private_key, Encoding, PublicFormat
template, work, count, forged = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
key = load_pem_private_key(open(work + "/pki/ticket-signing.key", "rb").read(), None)
raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
kid = hashlib.sha256(raw).hexdigest()[:16]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
data = open(template, "rb").read()
dna = json.load(open(template + ".dna"))
sha = hashlib.sha256(data).hexdigest()
now = int(time.time()) - 86400
iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
def put(node, rel, name, source, t, receipt):
    path = os.path.join(work, "store-" + node, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f: f.write(data)
    with open(path + ".dna", "w") as f:
        json.dump(dict(dna, artifact=name, source=source, created=iso(t)), f, indent=2, sort_keys=True)
    if receipt:
        with open(path + ".dna.sig", "w") as f: f.write(receipt + "\n")
rows = 0
for i in range(count + forged):
    source = "src%d" % (i % 10)
    t = now - (count - i) * 60
    stamp = time.strftime("%Y/%m/%d/%H%M%S", time.gmtime(t))
    name = "%s-%06d.tar.gz" % (source, i)
    rel = "srv1/folder/%s/%s/%s" % (source, stamp, name)
    if i >= count:  # forged on vault2: no receipt
        put("vault2", rel, name, source, t, None)
        continue
    payload = json.dumps({"format": "scm-backup-receipt/1", "epoch": "0" * 32, "path": rel, "size": len(data),
                          "sha256": sha, "signedAt": iso(t + 60), "facts": {"origin": "srv1", "kind": "folder",
                          "source": source, "created": iso(t)}}, sort_keys=True).encode()
    sig = key.sign(b"scm-backup-signed/2\nscm-backup-receipt/1\n" + kid.encode() + b"\n" + payload)
    receipt = "%s.%s.%s" % (kid, b64(payload), b64(sig))
    if i % 2 == 0: put("srv1", rel, name, source, t, receipt)
    put("vault1", rel, name, source, t, receipt)
    put("vault2", rel, name, source, t, receipt)
# The baseline's rows: as many artifacts and copies as the rebuild writes.
with open(work + "/baseline.sql", "w") as out:
    out.write("CREATE TABLE artifact (id INTEGER PRIMARY KEY, path TEXT UNIQUE, size INTEGER, sha256 TEXT);\n")
    out.write("CREATE TABLE copy (artifactId INTEGER, node TEXT, path TEXT, size INTEGER, sha256 TEXT, PRIMARY KEY (artifactId, node));\nBEGIN;\n")
    for i in range(count + forged):
        out.write("INSERT INTO artifact VALUES (%d, 'a%d', %d, '%s');\n" % (i, i, len(data), sha))
        nodes = ["vault2"] if i >= count else (["srv1"] if i % 2 == 0 else []) + ["vault1", "vault2"]
        for n in nodes:
            out.write("INSERT INTO copy VALUES (%d, '%s', 'a%d', %d, '%s');\n" % (i, n, i, len(data), sha))
    out.write("COMMIT;\n")
EOF
mkdir -p "$WORK/self-backup"
sync

start_coordinator() {
    rm -f "$WORK/port"
    $BIN coordinator --config "$1" --port-file "$WORK/port" >>"$WORK/coordinator.log" 2>&1 &
    COORD=$!
    PIDS+=($COORD)
    for _ in $(seq 300); do [ -s "$WORK/port" ] && break; sleep 0.1; done
}
# A catalog existed and is lost: its witness stays, so the coordinator refuses to start afresh.
echo "00000000000000000000000000000000" >"$WORK/catalog.sqlite.epoch"
T0=$(date +%s%N)
$BIN catalog rebuild --config "$WORK/site.toml" >"$WORK/rebuild.txt"
start_coordinator "$WORK/site.toml"
for n in srv1 vault1 vault2 hubhost; do
    $BIN agent --config "$WORK/$n.toml" >"$WORK/$n.log" 2>&1 &
    PIDS+=($!)
done
$BIN catalog rebuild --config "$WORK/site.toml" --report --wait 3600 >"$WORK/report.txt"
REBUILD_MS=$(ms "$T0")

T0=$(date +%s%N)
find "$WORK"/store-srv1 "$WORK"/store-vault1 "$WORK"/store-vault2 -name '*.dna' -o -name '*.dna.sig' | xargs cat >/dev/null
sqlite3 "$WORK/baseline.db" <"$WORK/baseline.sql"
BASE_REBUILD_MS=$(ms "$T0")

# The hub's self-backup of the rebuilt catalog, shipped to vault1 as the hub node's source.
ADMIN=(--coordinator "https://127.0.0.1:$PORT" --cert "$WORK/pki/root.pem" --key "$WORK/pki/root.key" --ca "$WORK/pki/ca.pem")
admin() { $BIN "$@" "${ADMIN[@]}"; }
kill "$COORD" && wait "$COORD" 2>/dev/null || true
start_coordinator "$WORK/site.toml"  # a snapshot at start: the whole rebuilt catalog
online() { admin nodes --json | python3 -c 'import json,sys; print(sum(n["online"] for n in json.load(sys.stdin)))'; }
for _ in $(seq 300); do [ "$(online)" = 4 ] && break; sleep 0.2; done
admin run --source hub-self --wait --poll-seconds 0.5 >"$WORK/run.txt"
VAULT_PORT=$(admin nodes --json | python3 -c 'import json,sys; print([n for n in json.load(sys.stdin) if n["name"]=="vault1"][0]["dataPort"])')
kill -9 "$COORD"
mkdir -p "$WORK/hub2"
{
    printf '[coordinator]\nlisten = "127.0.0.1:%s"\ncertificate = "%s/pki/hub.pem"\nkey = "%s/pki/hub.key"\n' "$PORT" "$WORK" "$WORK"
    printf 'ca = "%s/pki/ca.pem"\ndatabase = "%s/hub2/catalog.sqlite"\nticket_key = "%s/pki/ticket-signing.key"\n' "$WORK" "$WORK" "$WORK"
} >"$WORK/hub2/site.toml"
T0=$(date +%s%N)
$BIN hub restore --config "$WORK/hub2/site.toml" --from vault1 --data-url "https://127.0.0.1:$VAULT_PORT" \
    --origin hubhost --source hub-self >"$WORK/restore.txt"
RESTORE_MS=$(ms "$T0")
ARTIFACT=$(find "$WORK/store-vault1/hubhost" -name '*.tar.gz' | sort | tail -1)
T0=$(date +%s%N)
mkdir -p "$WORK/baseline-restore" && tar xzf "$ARTIFACT" -C "$WORK/baseline-restore"
find "$WORK/baseline-restore" -type f -print0 | xargs -0 sha256sum >/dev/null
sha256sum "$ARTIFACT" >/dev/null
cp "$(find "$WORK/baseline-restore" -name catalog.sqlite | sort | tail -1)" "$WORK/baseline-catalog.sqlite"
sync
BASE_RESTORE_MS=$(ms "$T0")

cat "$WORK/report.txt"
grep -E "restored the hub|catalog " "$WORK/restore.txt"
echo "self-backup artifact: $(stat -c %s "$ARTIFACT") bytes; catalog $(stat -c %s "$WORK/hub2/catalog.sqlite") bytes"
python3 - "$REBUILD_MS" "$BASE_REBUILD_MS" "$RESTORE_MS" "$BASE_RESTORE_MS" <<'EOF'
import sys
r, br, h, bh = map(int, sys.argv[1:])
print("catalog rebuild (3 agents): %.1f s; baseline (cat every sidecar and receipt, sqlite3 the rows): %.2f s; ratio %.1f" % (r / 1000, br / 1000, r / max(br, 1)))
print("hub restore: %.2f s; baseline (tar xzf, sha256sum, cp the catalog): %.2f s; ratio %.1f" % (h / 1000, bh / 1000, h / max(bh, 1)))
EOF
