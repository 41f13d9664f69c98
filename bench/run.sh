#!/usr/bin/env bash
# The lab benchmark report: builds the release binaries, then bench/lab_bench.py and
# bench/cni_bench.py print one JSON line per figure on stdout and a markdown table on stderr.
# Runs in a few minutes after the build (most of it loading ~10,000 flows through the agent API).
# Needs root, Open vSwitch, iperf3 and ping (scripts/install-deps.sh installs them).
#   BENCH_SECONDS (iperf3 duration, default 10), BENCH_PODS (CNI ADD sample, default 100),
#   BENCH_FAKE_ATTACHMENTS (load for the controller restart figure, default 2000 = ~10k flows),
#   BENCH_PAR (parallel CNI calls in cni_bench.py, default 50),
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
# The lab report (issue 6), then CNI ADD/DEL latency on a 3-node lab against Debian's bridge
# plugin (issue 4). Both clean up after themselves, also on failure.
status=0
python3 bench/lab_bench.py || status=$?
python3 bench/cni_bench.py || status=$?
exit $status
