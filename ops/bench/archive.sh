#!/usr/bin/env bash
# Archive benchmark: ~1 GiB of real source files archived by 'scm-backup backup' and by
#   tar czf - DIR | tee >(sha256sum) >(md5sum) > x.tar.gz
# in the same run, warm cache for both. Prints wall time, CPU time and output size of each and
# the ratios ours/baseline. 'scm-backup backup' also reads its artifact back in full (every
# member, the gzip CRC, SHA-256) and fsyncs before publishing; the baseline does neither.
#
# The tree is made once from git exports of the Swift package mirrors on the build machine
# (every version the mirror holds, repeated until the size is reached) and kept in $BENCH_DIR.
# Usage: ops/bench/archive.sh [SIZE_MIB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SIZE_MIB=${1:-1024}
BENCH_DIR=${BENCH_DIR:-/tmp/scm-backup-bench}
MIRRORS=${MIRRORS:-/opt/swift-packages}
TREE="$BENCH_DIR/tree-$SIZE_MIB"

swift build -c release --product scm-backup >/dev/null
BIN="$ROOT/.build/release/scm-backup"

if [ ! -f "$TREE/.complete" ]; then
    echo "making a ${SIZE_MIB} MiB tree of source files in $TREE ..."
    rm -rf "$TREE"
    mkdir -p "$TREE"
    total=0
    # The mirrors hold only a few versions of each package (about 500 MiB in all), so the
    # exports are repeated under another name until the size is reached.
    round=1
    while [ "$total" -lt "$SIZE_MIB" ] && [ "$round" -le 8 ]; do
        for repo in $(find "$MIRRORS" -maxdepth 3 -name '*.git' -type d | sort); do
            for tag in $(git -C "$repo" tag --sort=-creatordate 2>/dev/null | head -n 24); do
                dest="$TREE/round$round/$(basename "$repo" .git)-$tag"
                mkdir -p "$dest"
                git -C "$repo" archive --format=tar "$tag" | tar -xf - -C "$dest"
                total=$(du -sm "$TREE" | cut -f1)
                [ "$total" -ge "$SIZE_MIB" ] && break 3
            done
        done
        round=$((round + 1))
    done
    [ "$total" -ge "$SIZE_MIB" ] || echo "warning: only ${total} MiB of sources found under $MIRRORS" >&2
    touch "$TREE/.complete"
fi
files=$(find "$TREE" -type f | wc -l)
bytes=$(du -sb "$TREE" | cut -f1)
echo "tree: $TREE, $files files, $((bytes / 1048576)) MiB"

OUT="$BENCH_DIR/out"
rm -rf "$OUT"
mkdir -p "$OUT"
tar -cf - -C "$BENCH_DIR" "$(basename "$TREE")" > /dev/null   # warm the page cache

measure() {  # measure NAME COMMAND... ; sets WALL_<NAME> and CPU_<NAME> (seconds)
    local name=$1; shift
    local t0 t1 c0 c1
    t0=$(date +%s.%N)
    c0=$(awk '{print $14+$15+$16+$17}' /proc/$$/stat)
    "$@"
    t1=$(date +%s.%N)
    c1=$(awk '{print $14+$15+$16+$17}' /proc/$$/stat)
    printf -v "WALL_$name" '%s' "$(echo "$t1 - $t0" | bc -l)"
    printf -v "CPU_$name" '%s' "$(echo "($c1 - $c0) / $(getconf CLK_TCK)" | bc -l)"
}

baseline() {
    (cd "$BENCH_DIR" && tar czf - "$(basename "$TREE")" \
        | tee >(sha256sum > "$OUT/base.sha256") >(md5sum > "$OUT/base.md5") > "$OUT/base.tar.gz")
    wait   # bash 5.1+ also waits for the process substitutions, so their CPU is counted
}
ours() {
    "$BIN" backup --store "$OUT/store" --node bench --kind folder --name corpus "$TREE" > "$OUT/ours.txt"
}

measure base baseline
measure ours ours
base_size=$(stat -c %s "$OUT/base.tar.gz")
ours_file=$(find "$OUT/store" -name '*.tar.gz')
ours_size=$(stat -c %s "$ours_file")
gnu_ok=$(tar -tzf "$ours_file" > /dev/null && echo yes || echo NO)

printf '%-44s %9s %9s %14s\n' "run" "wall s" "cpu s" "bytes"
printf '%-44s %9.2f %9.2f %14d\n' "tar czf | tee >(sha256sum) >(md5sum)" "$WALL_base" "$CPU_base" "$base_size"
printf '%-44s %9.2f %9.2f %14d\n' "scm-backup backup (with read-back check)" "$WALL_ours" "$CPU_ours" "$ours_size"
printf 'ratio ours/baseline: wall %.2f, cpu %.2f, size %.3f; GNU tar reads ours: %s\n' \
    "$(echo "$WALL_ours / $WALL_base" | bc -l)" "$(echo "$CPU_ours / $CPU_base" | bc -l)" \
    "$(echo "$ours_size / $base_size" | bc -l)" "$gnu_ok"
