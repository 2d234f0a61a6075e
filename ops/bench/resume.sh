#!/usr/bin/env bash
# Resume benchmark, one run on 127.0.0.1: a SIZE_MIB artifact (1 GiB by default) pushed from
# agent 'src' to agent 'dst' at a paced 150 MiB/s; once dst holds 90 % of it as a partial, dst's
# agent is killed (SIGKILL) and started again on the same data port; src's task resumes. Prints
# the time the receiving data port took from the resumed PUT to accepting its first byte (it
# re-reads and re-hashes the partial, on NIO's thread pool) against `sha256sum` of the same
# bytes in the same run, and the whole resumed transfer.
# Usage: ops/bench/resume.sh [SIZE_MIB]   (SCM_BACKUP_BIN=path uses that binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE_MIB=${1:-1024}
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build -c release --product scm-backup >/dev/null
    SCM_BACKUP_BIN="$PWD/.build/release/scm-backup"
fi
BIN="$SCM_BACKUP_BIN"
WORK=$(mktemp -d /tmp/scm-backup-resume-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill -9 "$pid" 2>/dev/null || true
        { wait "$pid"; } 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
$BIN pki init --dir pki --site bench >/dev/null
for n in hub:coordinator src:agent dst:agent root:admin; do
    $BIN pki issue --dir pki --name "${n%%:*}" --role "${n##*:}" --out pki >/dev/null
done
mkdir big
head -c "$((SIZE_MIB << 20))" /dev/urandom >big/blob
cat >site.toml <<TOML
[coordinator]
listen = "127.0.0.1:0"
certificate = "pki/hub.pem"
key = "pki/hub.key"
ca = "pki/ca.pem"
database = "catalog.sqlite"
ticket_key = "pki/ticket-signing.key"
lease_seconds = 30
[nodes.src]
roles = ["server"]
addresses = ["127.0.0.1"]
[nodes.src.sources.big]
kind = "folder"
path = "$WORK/big"
[nodes.dst]
roles = ["backup"]
addresses = ["127.0.0.1"]
[[pairings]]
server = "src"
backup = "dst"
bandwidth_limit = "150 MiB/s"
TOML
$BIN coordinator --config site.toml --port-file port >coordinator.log 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
agent_toml() { # NAME DATA_LISTEN
    cat <<TOML
[agent]
coordinator = "https://127.0.0.1:$(cat port)"
certificate = "pki/$1.pem"
key = "pki/$1.key"
ca = "pki/ca.pem"
store = "store-$1"
store_id = "$($BIN init-store --store "store-$1" | awk '{print $NF}')"
source_roots = ["$WORK"]
lease_wait_seconds = 2
data_listen = "$2"
ticket_key = "pki/ticket-signing.pub"
TOML
}
agent_toml src 127.0.0.1:0 >src.toml
agent_toml dst 127.0.0.1:0 >dst.toml
$BIN agent --config src.toml >src.log 2>&1 &
PIDS+=($!)
$BIN agent --config dst.toml --data-port-file dst.port >dst.log 2>&1 &
DST=$!
PIDS+=($DST)
ADMIN=(--coordinator "https://127.0.0.1:$(cat port)" --cert pki/root.pem --key pki/root.key --ca pki/ca.pem)
admin() { $BIN "$@" "${ADMIN[@]}"; }
settle() {
    for _ in $(seq 6000); do
        admin tasks list --json | python3 -c 'import json,sys; t=json.load(sys.stdin); sys.exit(0 if t and all(x["state"] in ("succeeded","failed") for x in t) else 1)' && return
        sleep 0.05
    done
    echo "tasks did not finish" >&2
    exit 1
}
for _ in $(seq 100); do
    [ "$(admin nodes --json | python3 -c 'import json,sys; print(sum(n["online"] for n in json.load(sys.stdin)))')" = 2 ] && break
    sleep 0.2
done
echo "making the ${SIZE_MIB} MiB artifact on src..."
admin tasks submit --kind backup --node src --source big >/dev/null
settle
ARTIFACT=$(cd store-src && find src -name '*.tar.gz')
SIZE=$(stat -c %s "store-src/$ARTIFACT")
echo "artifact: $ARTIFACT ($SIZE bytes); pushing it to dst at 150 MiB/s..."
admin transfer --from src --to dst >/dev/null
PARTIAL="store-dst/$ARTIFACT.partial"
for _ in $(seq 3000); do
    [ -f "$PARTIAL" ] && [ "$(stat -c %s "$PARTIAL")" -ge $((SIZE * 9 / 10)) ] && break
    sleep 0.02
done
kill -9 "$DST"
{ wait "$DST"; } 2>/dev/null || true
HELD=$(stat -c %s "$PARTIAL")
echo "dst killed holding $HELD bytes of it; restarted on the same data port"
agent_toml dst "127.0.0.1:$(cat dst.port)" >dst.toml
T0=$(date +%s.%N)
$BIN agent --config dst.toml >dst2.log 2>&1 &
PIDS+=($!)
settle
T1=$(date +%s.%N)
admin tasks list | head -1
B0=$(date +%s.%N)
head -c "$HELD" "store-dst/$ARTIFACT" | sha256sum >/dev/null
B1=$(date +%s.%N)
BASE=$(echo "$B1 - $B0" | bc -l)
printf 'dst held %s of %s bytes\n' "$HELD" "$SIZE"
printf '  sha256sum of those bytes (baseline)                   %7.3f s\n' "$BASE"
# Binaries before issue 10 do not log the resumed PUT; the restart-to-done time compares all.
LINE=$(grep "partial resumed" dst2.log | tail -1 || true)
if [ -n "$LINE" ]; then
    TTFB=$(sed -E 's/.*scm.seconds=([0-9.]+).*/\1/' <<<"$LINE")
    FROM=$(sed -E 's/.*scm.resumedFrom=([0-9]+).*/\1/' <<<"$LINE")
    printf '  time to first byte accepted (re-hash of %s bytes)    %7.3f s   ratio %.2f\n' "$FROM" "$TTFB" \
        "$(echo "$TTFB / $BASE" | bc -l)"
fi
printf '  restart of dst to the transfer done                   %7.3f s\n' "$(echo "$T1 - $T0" | bc -l)"
