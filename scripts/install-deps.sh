#!/usr/bin/env bash
# Installs the system packages the tests and the lab need on a fresh Debian machine.
# Idempotent: does nothing when everything is already there. Needs root to install.
set -euo pipefail

need=()
command -v ovs-vswitchd >/dev/null 2>&1 || [ -x /usr/sbin/ovs-vswitchd ] || need+=(openvswitch-switch)
command -v ovs-ofctl >/dev/null 2>&1 || need+=(openvswitch-common)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# CNI conformance: libcni sources + Go to build the driver, reference plugins (tuning, host-local,
# bridge for the latency baseline).
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ] || need+=(golang-github-appc-cni-dev)
[ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)

# Lab demo, end-to-end tests and bench/: ping and arping inside lab pods, iperf3 for throughput.
command -v ping >/dev/null 2>&1 || need+=(iputils-ping); command -v arping >/dev/null 2>&1 || need+=(iputils-arping); command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)

if [ ${#need[@]} -eq 0 ]; then
    echo "install-deps: all system packages present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${need[*]}; run as root (or install them) first" >&2
    exit 1
fi
echo "install-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# Tests start their own ovsdb-server/ovs-vswitchd; keep the package from starting the system one.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
