#!/usr/bin/env bash
# The main job: a local demo of a server node ('scm-backup demo'), then a demo of a whole site
# on this machine (ops/demo-site.sh: a coordinator and two agents over mutual TLS on 127.0.0.1).
# Installs what is missing and builds first. --dir DIR keeps everything in DIR/local and DIR/site.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=""
if [ "${1:-}" = "--dir" ] && [ -n "${2:-}" ]; then DIR="$2"; elif [ $# -gt 0 ]; then
    echo "usage: ops/demo.sh [--dir DIR]" >&2
    exit 2
fi
ops/setup.sh
swift build --product scm-backup
if [ -z "$DIR" ]; then DIR=$(mktemp -d /tmp/scm-backup-demo.XXXXXX); fi
printf '\n######## Part 1: one server node, local commands\n'
.build/debug/scm-backup demo --dir "$DIR/local"
printf '\n######## Part 2: a site: coordinator and agents over mutual TLS\n'
SCM_BACKUP_BIN="$PWD/.build/debug/scm-backup" ops/demo-site.sh --dir "$DIR/site"
printf '\nBoth demos left their files in %s\n' "$DIR"
