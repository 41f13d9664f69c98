#!/usr/bin/env bash
# Runs the lab demo: a whole Weft fabric in network namespaces on this machine (root needed;
# nothing outside the lab's namespaces is touched). Extra arguments go to `weftctl lab demo`
# (e.g. --keep to leave the lab running for `weftctl --lab demo ...`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
./scripts/install-deps.sh
cargo build --release --bins -p weftctl -p weft-controller -p weft-agent -p weft-cni
exec "${CARGO_TARGET_DIR:-target}/release/weftctl" lab demo "$@"
