#!/usr/bin/env bash
# Builds the libcni conformance driver from Debian's golang-github-appc-cni-dev sources (libcni
# 1.1.2, offline: GOPATH mode, no module downloads). Usage: build.sh OUTPUT_BINARY
set -euo pipefail
out=${1:?usage: build.sh OUTPUT_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: go not installed (scripts/install-deps.sh installs golang-go)" >&2
    exit 2
fi
if [ ! -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ]; then
    echo "build.sh: libcni sources missing (install golang-github-appc-cni-dev)" >&2
    exit 2
fi
cache=${GOCACHE:-$(mktemp -d)}
cd "$here/driver"
GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$cache" go build -o "$out" main.go
if [ -z "${GOCACHE:-}" ]; then rm -rf "$cache"; fi
