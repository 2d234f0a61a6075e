#!/usr/bin/env bash
# Formats the Swift sources with the committed .swift-format; '--check' only reports.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--check" ]; then
    swift format lint --recursive --strict Package.swift Sources Tests
else
    swift format format --in-place --recursive Package.swift Sources Tests
fi
