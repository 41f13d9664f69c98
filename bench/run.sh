#!/usr/bin/env bash
# The lab benchmark report: builds the release binaries, then bench/lab_bench.py prints one JSON
# line per figure on stdout and a markdown table on stderr. Runs in a few minutes after the build
# (most of it loading ~10,000 flows through the agent API). Needs root, Open vSwitch, iperf3 and ping (scripts/install-deps.sh installs them).
#   BENCH_SECONDS (iperf3 duration, default 10), BENCH_PODS (CNI ADD sample, default 100),
#   BENCH_FAKE_ATTACHMENTS (load for the controller restart figure, default 2000 = ~10k flows),
#   WEFT_BIN_DIR (use these binaries instead of building).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
if [ -z "${WEFT_BIN_DIR:-}" ]; then
    cargo build --release -q -p weftctl -p weft-controller -p weft-agent -p weft-cni --bins
    cargo build --release -q -p weft-tests --bin weft-fake-attach
    WEFT_BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
fi
export WEFT_BIN_DIR
for t in iperf3 ping ovs-vswitchd; do
    command -v "$t" >/dev/null || { echo "bench: $t missing; run scripts/install-deps.sh" >&2; exit 1; }
done
exec python3 bench/lab_bench.py
