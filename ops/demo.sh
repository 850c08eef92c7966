#!/usr/bin/env bash
# The main job on a fresh machine: install what is needed, then run the lab demo (a director in network
# namespaces forwarding real traffic to real servers), and tear it down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh
exec npm run --silent lab -- demo "$@"
