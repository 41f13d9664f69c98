#!/usr/bin/env bash
# Creates the Python venv the Kubernetes-mode checks use (idempotent): the kmock API emulator for
# the controller tests and kubernetes-validate for the manifests. Prints the venv's python.
# Location: $WEFT_K8S_VENV, default target/venv-k8s (ignored by git, removed by `cargo clean`).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${WEFT_K8S_VENV:-$PWD/target/venv-k8s}"
# Pinned: the emulator harness (controller/tests/kmock) adapts kmock's internals.
pkgs=(kmock==0.8 jsonpatch==1.33 kubernetes-validate==1.37.0 PyYAML==6.0.3)
stamp="$venv/.weft-pkgs"
# Tests run in parallel and may all ask at once: one creates, the others wait.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${pkgs[*]}" ]; then
    echo "$venv/bin/python"
    exit 0
fi
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pkgs[@]}" >&2
echo "${pkgs[*]}" >"$stamp"
echo "$venv/bin/python"
