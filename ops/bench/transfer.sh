#!/usr/bin/env bash
# Transfer benchmark, one run, everything on 127.0.0.1:
#  1. a 1 GiB artifact (incompressible) from agent 'src' to agent 'dst' (release build, mutual
#     TLS, ticket, digest computed on arrival, fsync, publish) versus 'rsync -e ssh --whole-file'
#     of the same artifact and sidecar to an sshd started here;
#  2. a no-op pass over 10,000 small artifacts both nodes already hold: 'scm-backup transfer'
#     (the catalog says they are there) versus 'rsync -a -e ssh' over the same two trees.
# Prints wall seconds, CPU seconds of the whole machine (/proc/stat, both ends included) and
# the ratios. Installs openssh-server and rsync if missing.
# Usage: ops/bench/transfer.sh [SIZE_MIB] [SMALL_COUNT]     (defaults 1024 and 10000;
#        SCM_BACKUP_BIN=path uses that binary instead of a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE_MIB=${1:-1024}
SMALL=${2:-10000}
missing=()
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v rsync >/dev/null || missing+=(rsync)
command -v bc >/dev/null || missing+=(bc)
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build -c release --product scm-backup >/dev/null
    SCM_BACKUP_BIN="$PWD/.build/release/scm-backup"
fi
BIN="$SCM_BACKUP_BIN"
WORK=$(mktemp -d /tmp/scm-backup-transfer-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

busy() { awk '/^cpu / {print $2+$3+$4+$7+$8}' /proc/stat; }
TICKS=$(getconf CLK_TCK)
now() { date +%s.%N; }
measure_start() { T0=$(now); C0=$(busy); }
measure_end() {
    WALL=$(echo "$(now) - $T0" | bc -l)
    CPU=$(echo "($(busy) - $C0) / $TICKS" | bc -l)
}

# --- the site: hub, src (server), dst (backup) -----------------------------------------
$BIN pki init --dir "$WORK/pki" --site bench >/dev/null
for n in hub:coordinator src:agent dst:agent root:admin; do
    $BIN pki issue --dir "$WORK/pki" --name "${n%%:*}" --role "${n##*:}" --out "$WORK/pki" >/dev/null
done
mkdir -p "$WORK/big"
head -c "$((SIZE_MIB << 20))" /dev/urandom >"$WORK/big/blob"
cat >"$WORK/site.toml" <<EOF
[coordinator]
listen = "127.0.0.1:0"
certificate = "pki/hub.pem"
key = "pki/hub.key"
ca = "pki/ca.pem"
database = "catalog.sqlite"
ticket_key = "pki/ticket-signing.key"
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
EOF
$BIN coordinator --config "$WORK/site.toml" --port-file "$WORK/port" >"$WORK/coordinator.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port")
for n in src dst; do
    STORE_ID=$($BIN init-store --store "$WORK/store-$n" | awk '{print $NF}')
    cat >"$WORK/$n.toml" <<EOF
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
EOF
    $BIN agent --config "$WORK/$n.toml" >"$WORK/$n.log" 2>&1 &
    PIDS+=($!)
done
ADMIN=(--coordinator "https://127.0.0.1:$PORT" --cert "$WORK/pki/root.pem" --key "$WORK/pki/root.key" --ca "$WORK/pki/ca.pem")
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
echo "making the ${SIZE_MIB} MiB artifact on src (a backup task)..."
admin tasks submit --kind backup --node src --source big >/dev/null
settle
ARTIFACT=$(cd "$WORK/store-src" && find src -name '*.tar.gz')
echo "artifact: $ARTIFACT ($(stat -c %s "$WORK/store-src/$ARTIFACT") bytes)"

# --- sshd on 127.0.0.1 ----------------------------------------------------------------
mkdir -p "$WORK/ssh" /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/host"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/client"
cp "$WORK/ssh/client.pub" "$WORK/ssh/authorized_keys"
SSH_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/ssh/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $WORK/ssh/host
AuthorizedKeysFile $WORK/ssh/authorized_keys
PidFile $WORK/ssh/sshd.pid
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
UsePAM no
EOF
/usr/sbin/sshd -f "$WORK/ssh/sshd_config" -D -e 2>"$WORK/ssh/sshd.log" &
PIDS+=($!)
sleep 0.5
SSH="ssh -p $SSH_PORT -i $WORK/ssh/client -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"

# --- 1. one large artifact --------------------------------------------------------------
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
mkdir -p "$WORK/rsync-dst"
measure_start
rsync -a --whole-file -e "$SSH" "$WORK/store-src/$ARTIFACT" "$WORK/store-src/$ARTIFACT.dna" root@127.0.0.1:"$WORK/rsync-dst/"
sync
measure_end
R_WALL=$WALL
R_CPU=$CPU
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
measure_start
admin transfer --from src --to dst >/dev/null
settle
measure_end
S_WALL=$WALL
S_CPU=$CPU
admin tasks list | grep " transfer " | head -1
cmp "$WORK/store-src/$ARTIFACT" "$WORK/store-dst/$ARTIFACT" || { echo "the copy differs" >&2; exit 1; }
printf '\n1 artifact of %s bytes, agent -> agent over loopback vs rsync -e ssh --whole-file:\n' "$(stat -c %s "$WORK/store-src/$ARTIFACT")"
printf '  rsync -e ssh   wall %6.2f s   CPU %6.2f s\n' "$R_WALL" "$R_CPU"
printf '  scm-backup     wall %6.2f s   CPU %6.2f s\n' "$S_WALL" "$S_CPU"
printf '  ratio (scm-backup / rsync)   wall %.2f   CPU %.2f\n' "$(echo "$S_WALL / $R_WALL" | bc -l)" "$(echo "$S_CPU / $R_CPU" | bc -l)"

# --- 2. no-op pass over many small artifacts already on both nodes -----------------------
echo
echo "making $SMALL small artifacts on both nodes..."
python3 - "$WORK/store-src" "$SMALL" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile, datetime
root, count = sys.argv[1], int(sys.argv[2])
base = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
for i in range(count):
    when = base + datetime.timedelta(seconds=i)
    stamp = when.strftime("%Y/%m/%d/%H%M%S")
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        body = f"config {i}\n".encode()
        info = tarfile.TarInfo(f"conf{i % 100}/users.conf")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    tar_bytes = data.getvalue()
    gz = gzip.compress(tar_bytes, mtime=0)
    rev = hashlib.sha256(tar_bytes).hexdigest()[:12]
    source = f"conf{i % 100}"
    folder = os.path.join(root, "src", "folder", source, stamp)
    os.makedirs(folder, exist_ok=True)
    name = f"{source}-{rev}.tar.gz"
    with open(os.path.join(folder, name), "wb") as f:
        f.write(gz)
    dna = {"artifact": name, "created": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "format": "scm-backup-dna/1",
           "kind": "folder", "md5": hashlib.md5(gz).hexdigest(), "origin": "src", "revision": rev,
           "sha256": hashlib.sha256(gz).hexdigest(), "size": len(gz), "source": source,
           "tarSHA256": hashlib.sha256(tar_bytes).hexdigest(), "tarSize": len(tar_bytes)}
    with open(os.path.join(folder, name + ".dna"), "w") as f:
        json.dump(dna, f, indent=2, sort_keys=True)
EOF
cp -a "$WORK/store-src/src/folder" "$WORK/store-dst/src/"
admin tasks submit --kind inventory --node src >/dev/null
admin tasks submit --kind verify --node dst >/dev/null
settle
mkdir -p "$WORK/rsync-small"
cp -a "$WORK/store-src/src/folder" "$WORK/rsync-small/"
measure_start
rsync -a -e "$SSH" "$WORK/store-src/src/folder" root@127.0.0.1:"$WORK/rsync-small/"
measure_end
R_WALL=$WALL
R_CPU=$CPU
measure_start
PLAN=$(admin transfer --from src --to dst)
measure_end
S_WALL=$WALL
S_CPU=$CPU
echo "scm-backup: $(echo "$PLAN" | tail -1)"
printf '\n%s small artifacts already on both nodes, a no-op pass:\n' "$SMALL"
printf '  rsync -a -e ssh            wall %6.2f s   CPU %6.2f s\n' "$R_WALL" "$R_CPU"
printf '  scm-backup transfer        wall %6.2f s   CPU %6.2f s\n' "$S_WALL" "$S_CPU"
printf '  ratio (scm-backup / rsync)   wall %.2f   CPU %.2f\n' "$(echo "$S_WALL / $R_WALL" | bc -l)" "$(echo "$S_CPU / $R_CPU" | bc -l)"
