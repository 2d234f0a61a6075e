#!/usr/bin/env bash
# The test command: installs what is missing, builds (warnings are errors in our targets) and
# runs every test. Extra arguments go to 'swift test' (e.g. --filter StoreTests).
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
swift build --build-tests
swift test "$@"
