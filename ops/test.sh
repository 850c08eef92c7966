#!/usr/bin/env bash
# The whole test suite on a fresh machine: install what is needed, type-check, run unit and lab tests.
# Ends with one line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh
exec npm run --silent test -- "$@"
