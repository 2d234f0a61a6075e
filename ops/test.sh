#!/usr/bin/env bash
# The test command: installs what is missing, builds (warnings are errors in our targets) and
# runs every test, after checking the formatting (ops/format.sh --check). Extra arguments go
# to 'swift test' (e.g. --filter StoreTests).
#
# Tests run one at a time (--no-parallel): many of them drive real processes synchronously
# (svnadmin, agents, the 8 GiB archive) and a synchronous test holds one of the concurrency
# pool's threads, of which there are as many as cores (2 here); two of them at once starve the
# in-process HTTPS servers of the async tests, whose requests then time out. Serially the whole
# suite takes about 6 minutes. Set SCM_BACKUP_PARALLEL_TESTS=1 to run them in parallel anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
ops/format.sh --check
swift build --build-tests
if [ "${SCM_BACKUP_PARALLEL_TESTS:-0}" = 1 ]; then
    swift test "$@"
else
    swift test --no-parallel "$@"
fi
