#!/usr/bin/env bash
# The test command: installs what is missing, builds (warnings are errors in our targets) and
# runs every test in parallel, after checking the formatting (ops/format.sh --check). Extra
# arguments go to 'swift test' (e.g. --filter StoreTests).
#
# Tests run in parallel: the servers do no blocking work on Swift's cooperative pool (the
# catalog goes through GRDB's async API, the data port's file work through NIO's thread pool),
# and tests that block for long (real processes, tools, big files) run their bodies on a
# thread of their own (BackupTesting's `blocking`, or `onThreadOfItsOwn` for async bodies
# that block between awaits; the CI failure of 2026-12-02 was in-process servers starved by a
# test making 3 MiB of noise one byte at a time and another running CLI processes on the
# pool). Set SCM_BACKUP_SERIAL_TESTS=1 to run them one at a time (--no-parallel), e.g. to
# compare wall times.
set -euo pipefail
cd "$(dirname "$0")/.."
ops/setup.sh
ops/format.sh --check
swift build --build-tests
if [ "${SCM_BACKUP_SERIAL_TESTS:-0}" = 1 ]; then
    swift test --no-parallel "$@"
else
    swift test "$@"
fi
