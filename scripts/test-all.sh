#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy, and all tests (privileged ones included when root).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"

./scripts/install-deps.sh

# As root, tests that need namespaces and Open vSwitch must run, not skip.
if [ "$(id -u)" -eq 0 ]; then
    export WEFT_REQUIRE_PRIVILEGED="${WEFT_REQUIRE_PRIVILEGED:-1}"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
./scripts/check-deploy.sh
