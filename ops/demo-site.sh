#!/usr/bin/env bash
# The site demo: a hub and two nodes on this machine, as real processes over mutual TLS on
# 127.0.0.1. Makes the site PKI, a server node 'cms02' with an svn repository, a git repository
# and an Apache config folder, a backup node 'backup1', the hub's site.toml and each agent's
# agent.toml; starts the coordinator and both agents; queues backups, transfers to the backup
# node (signed tickets, verified on arrival), a verify that catches a mutant copy, quarantines
# it and has it repaired from the origin, a run that backs up every source and sends what it
# made to the backup node by itself (then status, check, df), and a purge that deletes exactly
# what it names. Everything is written under --dir (a new
# temporary folder by default) and left there; the processes are stopped at the end.
#
# Usage: ops/demo-site.sh [--dir DIR]      (SCM_BACKUP_BIN=path skips the build)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=""
while [ $# -gt 0 ]; do
    case "$1" in
    --dir) DIR="$2"; shift 2 ;;
    *) echo "usage: ops/demo-site.sh [--dir DIR]" >&2; exit 2 ;;
    esac
done
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build --product scm-backup >/dev/null
    SCM_BACKUP_BIN="$PWD/.build/debug/scm-backup"
fi
if [ -z "$DIR" ]; then DIR=$(mktemp -d /tmp/scm-backup-site-demo.XXXXXX); fi
mkdir -p "$DIR"
if [ -n "$(ls -A "$DIR")" ]; then echo "ops/demo-site.sh: '$DIR' is not empty" >&2; exit 2; fi
DIR=$(cd "$DIR" && pwd)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

step() { printf '\n== %s\n' "$1"; }
run() { printf '$ scm-backup %s\n' "$*" | sed "s|$DIR/|\$DEMO/|g"; "$SCM_BACKUP_BIN" "$@"; }
ADMIN=(--coordinator "https://127.0.0.1:PORT" --cert "$DIR/pki/root.pem" --key "$DIR/pki/root.key" --ca "$DIR/pki/ca.pem")
admin() { local args=("$@"); "$SCM_BACKUP_BIN" "${args[@]}" "${ADMIN[@]/PORT/$PORT}"; }
show() { printf '$ scm-backup %s\n' "$*"; admin "$@"; }
# Queues a task and waits until it has finished; prints its line of 'tasks'.
task() {
    local id
    printf '$ scm-backup tasks submit %s\n' "$*"
    id=$(admin tasks submit "$@" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    for _ in $(seq 600); do
        state=$(admin tasks list --json | python3 -c "import json,sys; print(next(t['state'] for t in json.load(sys.stdin) if t['id'] == $id))")
        case "$state" in succeeded | failed | cancelled) break ;; esac
        sleep 0.1
    done
    admin tasks list | grep "^$id " || true
    [ "$state" = succeeded ] || { echo "task $id ended $state" >&2; exit 1; }
}

step "1. The site's PKI: a CA, the hub's certificate, one per node, an operator and an admin (demo folder: $DIR)"
# The CA lives on an admin machine ($DIR/ca here); the hub and nodes get only their part.
run pki init --dir "$DIR/ca" --site demo
for who in hub:coordinator cms02:agent backup1:agent alice:operator root:admin; do
    "$SCM_BACKUP_BIN" pki issue --dir "$DIR/ca" --name "${who%%:*}" --role "${who##*:}" --out "$DIR/pki" >/dev/null
done
for f in ca.pem revoked.json ticket-signing.key ticket-signing.pub purge-signing.key purge-signing.pub; do
    cp "$DIR/ca/$f" "$DIR/pki/$f"
done
run pki list --dir "$DIR/ca"

step "2. Server node cms02's sources: an svn repository, a git repository, an Apache config folder"
SRC="$DIR/cms02/scm"
mkdir -p "$SRC/conf"
svnadmin create "$SRC/repos-env"
svn checkout -q "file://$SRC/repos-env" "$DIR/wc"
for i in 1 2 3; do echo "release $i" >"$DIR/wc/NEWS"; svn add -q --force "$DIR/wc"; svn commit -q -m "release $i" "$DIR/wc"; done
git init -q --bare -b main "$SRC/tools.git"
git clone -q "$SRC/tools.git" "$DIR/tools" 2>/dev/null
echo "#!/bin/sh" >"$DIR/tools/deploy.sh"
git -C "$DIR/tools" add deploy.sh
git -C "$DIR/tools" -c user.email=demo@example.org -c user.name=Demo commit -q -m "first tool"
git -C "$DIR/tools" push -q origin main
printf 'alice:$apr1$demo\nbob:$apr1$demo\n' >"$SRC/conf/users.conf"
printf '[/]\n* = r\n' >"$SRC/conf/authz.conf"
echo "made $SRC/repos-env (revision 3), $SRC/tools.git, $SRC/conf"

step "3. The hub's site.toml: nodes, cms02's sources, the pairing; each agent's agent.toml"
cat >"$DIR/site.toml" <<EOF
[coordinator]
listen = "127.0.0.1:0"
certificate = "pki/hub.pem"
key = "pki/hub.key"
ca = "pki/ca.pem"
revoked = "pki/revoked.json"
database = "catalog.sqlite"
lease_seconds = 30
ticket_key = "pki/ticket-signing.key"
purge_key = "pki/purge-signing.key"
# The hub's own snapshot (catalog, site file, public keys) after every run; a real site also
# backs this folder up as a source of the hub node (Protocol/hub.md).
self_backup = "$DIR/self-backup"

# A real site keeps the defaults (every night at 02:00, a nightly verify from 01:00); this demo
# starts its own run below, so that its steps do not depend on the time of day.
[schedule]
default = "off"
[verify]
window = "off"

# Each run ends with a purge stage on every node holding copies: keep the newest 2 of each
# source (a real site keeps weeks: see deploy/site.example.toml).
[retention]
keep_last = 2

[nodes.cms02]
roles = ["server"]
addresses = ["127.0.0.1"]

[nodes.cms02.sources.env]
kind = "svn"
path = "$SRC/repos-env"
verify_snapshot = true

[nodes.cms02.sources.tools]
kind = "git"
path = "$SRC/tools.git"

[nodes.cms02.sources.apache-confdir]
kind = "folder"
path = "$SRC/conf"

[nodes.backup1]
roles = ["backup"]
addresses = ["127.0.0.1"]

[[pairings]]
server = "cms02"
backup = "backup1"
direction = "push"
bandwidth_limit = "50 MiB/s"
EOF
run coordinator --config "$DIR/site.toml" --check
"$SCM_BACKUP_BIN" coordinator --config "$DIR/site.toml" --port-file "$DIR/port" >"$DIR/coordinator.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$DIR/port" ] && break; sleep 0.1; done
PORT=$(cat "$DIR/port")
echo "coordinator listening on https://127.0.0.1:$PORT (log: $DIR/coordinator.log)"
for node in cms02 backup1; do
    # Each store gets its marker once; the agent works only in the store with that id.
    mkdir -p "$DIR/$node"
    STORE_ID=$("$SCM_BACKUP_BIN" init-store --store "$DIR/$node/store" | awk '{print $NF}')
    cat >"$DIR/$node.toml" <<EOF
[agent]
coordinator = "https://127.0.0.1:$PORT"
certificate = "pki/$node.pem"
key = "pki/$node.key"
ca = "pki/ca.pem"
store = "$node/store"
store_id = "$STORE_ID"
source_roots = ["$DIR/$node/scm"]
lease_wait_seconds = 5
data_listen = "127.0.0.1:0"
ticket_key = "pki/ticket-signing.pub"
purge_key = "pki/purge-signing.pub"
# A recovery through the site writes only here (scm-backup recover --node).
recovery_roots = ["$DIR/$node/scm"]
EOF
    mkdir -p "$DIR/$node"
    run agent --config "$DIR/$node.toml" --check
    "$SCM_BACKUP_BIN" agent --config "$DIR/$node.toml" >"$DIR/$node/agent.log" 2>&1 &
    PIDS+=($!)
done
for _ in $(seq 100); do
    [ "$(admin nodes --json | python3 -c 'import json,sys; print(sum(n["online"] for n in json.load(sys.stdin)))')" = 2 ] && break
    sleep 0.2
done
show nodes

step "4. Back up cms02's sources: the hub sends each source's definition; the agent backs it up"
task --kind backup --node cms02 --source env
task --kind backup --node cms02 --source tools
task --kind backup --node cms02 --source apache-confdir
for i in 4 5; do
    echo "release $i" >"$DIR/wc/NEWS"
    svn commit -q -m "release $i" "$DIR/wc"
    task --kind backup --node cms02 --source env
done
show artifacts

step "5. Refusals: a source the site does not give cms02; an operator trying to submit work"
printf '$ scm-backup tasks submit --kind backup --node cms02 --source etc\n'
if admin tasks submit --kind backup --node cms02 --source etc; then echo "expected a refusal" >&2; exit 1; fi
printf '$ scm-backup tasks submit --kind verify --node cms02   (as operator alice)\n'
if "$SCM_BACKUP_BIN" tasks submit --kind verify --node cms02 --coordinator "https://127.0.0.1:$PORT" \
    --cert "$DIR/pki/alice.pem" --key "$DIR/pki/alice.key" --ca "$DIR/pki/ca.pem"; then
    echo "expected a refusal" >&2
    exit 1
fi

step "6. Copy everything to the paired backup node: one task per artifact, each with a signed ticket"
# Waits until no task is queued or leased.
settle() {
    for _ in $(seq 600); do
        admin tasks list --json | python3 -c 'import json,sys; sys.exit(any(t["state"] in ("queued","leased") for t in json.load(sys.stdin)))' && return
        sleep 0.1
    done
    echo "tasks did not settle" >&2
    exit 1
}
show transfer --from cms02 --to backup1
settle
admin tasks list | grep " transfer " | head -3
show artifacts --source env
show transfer --from cms02 --to backup1

step "7. A byte flips on backup1's copy of the first env artifact; its verify quarantines it, the hub repairs it"
FIRST=$(admin artifacts --source env --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["copies"][0]["path"])')
python3 - "$DIR/backup1/store/$FIRST" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(100)
    b = f.read(1)
    f.seek(100)
    f.write(bytes([b[0] ^ 0xFF]))
EOF
show verify --node backup1
settle
admin tasks list | grep -E " verify backup1 | transfer " | head -2
echo "quarantined: $(cd "$DIR/backup1/store/.quarantine" && find . -name '*.tar.gz')"
cmp "$DIR/cms02/store/$FIRST" "$DIR/backup1/store/$FIRST" && echo "backup1's copy is whole again: byte-identical to the origin's"
show mutants

step "8. A run: every source backed up, and what it made sent to backup1 and verified there, by the hub"
show run --wait --poll-seconds 0.5
RUN=$(admin runs --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
show runs show "$RUN"
show status
show check
show df

step "9. Each run ends with a purge stage ([retention] keep_last = 2): a second run, what each node kept and why"
show run --wait --poll-seconds 0.5
settle
show purge --node cms02
show purge --node backup1
echo "(the agents moved what went to their trash, for trash_hours; 'scm-backup trash --node' lists, restores, empties)"
show trash --node backup1

step "10. A hand purge deletes exactly what its order names; the newest copy that verifies is never deleted"
OLDEST=$(admin artifacts --source env --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["copies"][0]["path"])')
NEWEST=$(admin artifacts --source env --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["copies"][0]["path"])')
task --kind purge --node cms02 --artifact "$OLDEST" --artifact "$NEWEST"
show artifacts --source env
task --kind inventory --node backup1

step "11. Losing the hub loses nothing: its snapshots, and the hub's receipt beside every copy"
for snap in "$DIR"/self-backup/*; do
    echo "$(basename "$snap"): $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(", ".join(f["name"] for f in m["files"]), "of epoch", m["epoch"])' "$snap/MANIFEST.json")"
done
echo "receipts (<artifact>.dna.sig) on backup1: $(find "$DIR/backup1/store" -path '*/.trash' -prune -o -name '*.dna.sig' -print | wc -l)"
echo "('scm-backup hub restore' brings a hub back from them; 'scm-backup catalog rebuild' makes a catalog from the stores)"

step "12. cms02 loses its repository and someone breaks users.conf: both come back through the site from backup1"
rm -rf "$SRC/repos-env"
printf 'alice:$apr1$broken\n' >"$SRC/conf/users.conf"
show recover --node cms02 --source env --to "$SRC/repos-env" --from backup1
echo "svnadmin verify: $(svnadmin verify -q "$SRC/repos-env" && echo ok), youngest revision $(svnlook youngest "$SRC/repos-env")"
# The diff is shown here only, the password hashes masked; --yes replaces every differing file.
show recover --node cms02 --source apache-confdir --to "$SRC/conf" --from backup1 --yes
echo "users.conf now: $(tr '\n' ' ' <"$SRC/conf/users.conf")"

step "13. Agents stop cleanly on SIGTERM; the catalog keeps everything for the next start"
for pid in "${PIDS[@]}"; do kill -TERM "$pid"; done
for pid in "${PIDS[@]}"; do wait "$pid" || true; done
PIDS=()
echo "stopped; the demo's files are in $DIR"
