#!/bin/bash
# Runs a command in a private mount namespace with its own /run/netns and /run/tsvs-lab, so that a lab (and
# the lab tests) can run beside another one on the same host: namespace names stay private. Root only.
#   bash ops/isolate.sh npm run lab -- demo
exec unshare -m --propagation private bash -c 'mount -t tmpfs tmpfs /run/netns && mkdir -p /run/tsvs-lab && mount -t tmpfs tmpfs /run/tsvs-lab && exec "$@"' iso "$@"
