#!/usr/bin/env bash
# Runs the lab demo: a whole Weft fabric in network namespaces on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
./scripts/install-deps.sh
cargo build --release --workspace --bins
exec ./target/release/weftctl lab demo "$@"
