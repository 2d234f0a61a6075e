#!/usr/bin/env bash
# The main job for now: a local demo of a site's server node. Installs what is missing, builds,
# and runs 'scm-backup demo' (arguments are passed on, e.g. --dir /tmp/my-demo).
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
swift build --product scm-backup
.build/debug/scm-backup demo "$@"
