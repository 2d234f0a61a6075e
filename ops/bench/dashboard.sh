#!/usr/bin/env bash
# Dashboard benchmark: a coordinator (release build) whose catalog holds a year of nightly
# artifacts of SOURCES sources (default 500) on one server, each with copies on two backup nodes
# (3 nodes; 365 x SOURCES artifacts, 3 copies each), and a year of hourly disk samples per node,
# written straight into the catalog's SQLite file. It measures, against /style.css on the same
# listener in the same run (the same process, connection set-up and HTTP, no catalog work):
#  - the time to render '/' (the site grid) and '/sources/srv1/src0' (a year of artifacts with
#    their plot), as HTML and as JSON, SAMPLES times each (default 30): median and p99;
#  - the coordinator's RSS idle and at its peak under 20 requests per second of those pages for
#    DURATION seconds (default 30);
#  - the number of series of /metrics.
# Usage: ops/bench/dashboard.sh [SOURCES] [SAMPLES] [DURATION]   (SCM_BACKUP_BIN=path uses that binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
SOURCES=${1:-500}
SAMPLES=${2:-30}
DURATION=${3:-30}
DAYS=365
bash ops/setup.sh >/dev/null
if [ -z "${SCM_BACKUP_BIN:-}" ]; then
    swift build -c release --product scm-backup >/dev/null
    SCM_BACKUP_BIN="$PWD/.build/release/scm-backup"
fi
BIN="$SCM_BACKUP_BIN"
WORK=$(mktemp -d /tmp/scm-backup-dashboard-bench.XXXXXX)
COORD=
trap 'kill $COORD 2>/dev/null || true; rm -rf "$WORK"' EXIT
$BIN pki init --dir "$WORK/pki" --site bench >/dev/null
$BIN pki issue --dir "$WORK/pki" --name hub --role coordinator --out "$WORK/pki" >/dev/null
{
    printf '[coordinator]\nlisten = "127.0.0.1:0"\ncertificate = "pki/hub.pem"\nkey = "pki/hub.key"\n'
    printf 'ca = "pki/ca.pem"\ndatabase = "catalog.sqlite"\n[schedule]\ndefault = "off"\n[verify]\nwindow = "off"\n'
    printf '[dashboard]\nlisten = "127.0.0.1:0"\n'
    printf '[nodes.srv1]\nroles = ["server"]\n'
    for i in $(seq 0 $((SOURCES - 1))); do printf '[nodes.srv1.sources.src%d]\nkind = "svn"\npath = "/var/scm/repos/src%d"\n' "$i" "$i"; done
    printf '[nodes.bak1]\nroles = ["backup"]\n[nodes.bak2]\nroles = ["backup"]\n'
    for v in bak1 bak2; do printf '[[pairings]]\nserver = "srv1"\nbackup = "%s"\n' "$v"; done
} >"$WORK/site.toml"
start() {
    rm -f "$WORK/port" "$WORK/dashboard-port"
    $BIN coordinator --config "$WORK/site.toml" --port-file "$WORK/port" --dashboard-port-file "$WORK/dashboard-port" \
        >>"$WORK/coordinator.log" 2>&1 &
    COORD=$!
    for _ in $(seq 300); do [ -s "$WORK/dashboard-port" ] && break; sleep 0.1; done
    [ -s "$WORK/dashboard-port" ] || { tail -20 "$WORK/coordinator.log"; exit 1; }
}
start  # makes the catalog
kill $COORD && wait $COORD 2>/dev/null || true
ARTIFACTS=$((SOURCES * DAYS))
NOW=$(date +%s)
FIRST=$((NOW - DAYS * 86400))
echo "writing $ARTIFACTS artifacts, $((3 * ARTIFACTS)) copies and a year of hourly disk samples of 3 nodes..."
sqlite3 "$WORK/catalog.sqlite" >/dev/null <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $ARTIFACTS)
INSERT INTO artifact (id, origin, kind, source, stamp, fileName, size, sha256, md5, revision, created, firstSeenAt, confirmed)
SELECT i + 1, 'srv1', 'svn', 'src' || (i % $SOURCES),
    strftime('%Y/%m/%d/%H%M%S', $FIRST + (i / $SOURCES) * 86400 + 3600, 'unixepoch'), 'src' || (i % $SOURCES) || '-' || (i / $SOURCES) || '.tar.gz',
    10485760 + (i / $SOURCES) * 4096 + (i % 97) * 1000,
    printf('%064x', i), NULL, CAST(i / $SOURCES * 3 AS TEXT), datetime($FIRST + (i / $SOURCES) * 86400 + 3600, 'unixepoch'),
    datetime($FIRST + (i / $SOURCES) * 86400 + 3600, 'unixepoch'), 1
FROM n;
INSERT INTO copy (artifactId, node, path, size, state, seenAt, verifiedAt)
SELECT a.id, node.name, a.origin || '/svn/' || a.source || '/' || a.stamp || '/' || a.fileName, a.size, 'intact',
    a.firstSeenAt, a.firstSeenAt
FROM artifact a JOIN (SELECT 'srv1' AS name UNION ALL SELECT 'bak1' UNION ALL SELECT 'bak2') node;
WITH RECURSIVE h(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM h WHERE i + 1 < $((DAYS * 24)))
INSERT INTO sample (series, at, value, span)
SELECT 'disk.' || kind.k || ':' || node.name, datetime($FIRST + i * 3600, 'unixepoch'),
    CASE kind.k WHEN 'total' THEN 4e12 ELSE 3e12 - i * 5e7 END, 'hour'
FROM h JOIN (SELECT 'srv1' AS name UNION ALL SELECT 'bak1' UNION ALL SELECT 'bak2') node
    JOIN (SELECT 'free' AS k UNION ALL SELECT 'total') kind;
COMMIT;
SQL
start
BASE="http://127.0.0.1:$(cat "$WORK/dashboard-port")"
curl -sf "$BASE/" -o "$WORK/home.html"
curl -sf "$BASE/sources/srv1/src0" -o "$WORK/source.html"
echo "'/' is $(wc -c <"$WORK/home.html") bytes with $(grep -o 'class="cell ' "$WORK/home.html" | wc -l) cells; '/sources/srv1/src0' $(wc -c <"$WORK/source.html") bytes with $(grep -o '<tr><td>' "$WORK/source.html" | wc -l) rows"
sample() {
    local out=$1
    shift
    : >"$out"
    for _ in $(seq "$SAMPLES"); do
        curl -sf -o /dev/null -w '%{time_total}\n' "$@" >>"$out"
    done
}
sample "$WORK/css.s" "$BASE/style.css"
sample "$WORK/home.s" "$BASE/"
sample "$WORK/homejson.s" -H 'Accept: application/json' "$BASE/"
sample "$WORK/source.s" "$BASE/sources/srv1/src0"
sample "$WORK/sourcejson.s" -H 'Accept: application/json' "$BASE/sources/srv1/src0"
rss() { awk '/VmRSS/ {print $2}' /proc/$COORD/status; }
IDLE=$(rss)
python3 - "$BASE" "$DURATION" "$COORD" >"$WORK/load.txt" <<'PY'
import sys, threading, time, urllib.request
base, duration, pid = sys.argv[1], float(sys.argv[2]), sys.argv[3]
paths = ["/", "/sources/srv1/src0", "/sources/srv1/src1", "/nodes/bak1", "/runs", "/alerts", "/metrics"]
peak, done, errors, lat = 0, 0, 0, []
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"): return int(line.split()[1])
def hit(path):
    global done, errors
    t0 = time.time()
    try:
        urllib.request.urlopen(base + path, timeout=30).read(); done += 1
    except Exception: errors += 1
    lat.append(time.time() - t0)
start = time.time(); threads = []; i = 0
while time.time() - start < duration:
    due = start + i / 20.0
    time.sleep(max(0, due - time.time()))
    t = threading.Thread(target=hit, args=(paths[i % len(paths)],)); t.start(); threads.append(t); i += 1
    peak = max(peak, rss())
for t in threads: t.join(); peak = max(peak, rss())
lat.sort()
print(peak, done, errors, i, lat[len(lat) // 2], lat[int(0.99 * (len(lat) - 1))])
PY
read -r PEAK DONE ERRORS SENT P50 P99 <"$WORK/load.txt"
SERIES=$(curl -sf "$BASE/metrics" | grep -vc '^#')
python3 - "$WORK" "$SOURCES" "$ARTIFACTS" "$IDLE" "$PEAK" "$DONE" "$ERRORS" "$SENT" "$P50" "$P99" "$SERIES" "$DURATION" <<'PY'
import sys, statistics
w, sources, artifacts, idle, peak, done, errors, sent, p50, p99, series, duration = sys.argv[1:]
def load(n): return sorted(float(x) * 1000 for x in open(f"{w}/{n}.s"))
def p(v, q): return v[min(len(v) - 1, int(round(q * (len(v) - 1))))]
css = load("css")
print(f"{int(sources)} sources x 3 nodes, {int(artifacts):,} artifacts ({3 * int(artifacts):,} copies), {len(css)} samples each:")
print(f"  /style.css (baseline)      median {statistics.median(css):8.1f} ms  p99 {p(css, .99):8.1f} ms")
for name, label in [("home", "/"), ("homejson", "/ as JSON"), ("source", "/sources/srv1/src0"), ("sourcejson", "/sources/… as JSON")]:
    v = load(name)
    print(f"  {label:26} median {statistics.median(v):8.1f} ms  p99 {p(v, .99):8.1f} ms  ratio {statistics.median(v) / statistics.median(css):7.1f}")
print(f"RSS idle {int(idle) / 1024:.1f} MiB; peak under 20 requests/s for {duration} s: {int(peak) / 1024:.1f} MiB (ratio {int(peak) / int(idle):.2f});"
      f" {done}/{sent} answered, {errors} errors, latency median {float(p50) * 1000:.0f} ms p99 {float(p99) * 1000:.0f} ms")
print(f"/metrics: {series} series")
PY
