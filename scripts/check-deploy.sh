#!/usr/bin/env bash
# Renders deploy/ with kustomize and validates every rendered object against the Kubernetes
# schemas (kubernetes-validate, strict) of the oldest and newest Kubernetes Weft supports; also
# checks the objects the install needs are there. CI runs it from scripts/test-all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
py="$(./scripts/k8s-venv.sh)"
out="${CARGO_TARGET_DIR:-target}/deploy-rendered.yaml"
mkdir -p "$(dirname "$out")"
if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize deploy/ >"$out"
elif command -v kustomize >/dev/null 2>&1; then
    kustomize build deploy/ >"$out"
else
    echo "check-deploy: neither kubectl nor kustomize is installed" >&2
    exit 1
fi
"$py" - "$out" <<'PY'
import sys, yaml, kubernetes_validate

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
failed = 0
for version in ("1.33.0", "1.37.0"):
    for d in docs:
        what = f"{d['kind']}/{d['metadata']['name']}"
        try:
            kubernetes_validate.validate(d, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            failed += 1
            print(f"FAIL {version} {what}: {e.message} at {'/'.join(map(str, e.path))}")
kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
need = {
    ("Namespace", "weft-system"),
    ("CustomResourceDefinition", "virtualnetworks.weft.dev"),
    ("CustomResourceDefinition", "interclusterlinks.weft.dev"),
    ("ServiceAccount", "weft-controller"), ("ServiceAccount", "weft-agent"),
    ("ClusterRole", "weft-controller"), ("ClusterRoleBinding", "weft-controller"),
    ("Role", "weft-controller-leader-election"), ("RoleBinding", "weft-controller-leader-election"),
    ("Deployment", "weft-controller"), ("DaemonSet", "weft-agent"),
    ("Service", "weft-controller"), ("Service", "weft-controller-metrics"), ("Service", "weft-agent-metrics"),
}
for missing in sorted(need - kinds):
    failed += 1
    print(f"FAIL missing {missing[0]}/{missing[1]}")
for d in docs:
    ns = d["metadata"].get("namespace")
    if d["kind"] not in ("Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding") and ns != "weft-system":
        failed += 1
        print(f"FAIL {d['kind']}/{d['metadata']['name']} not in weft-system")
ds = next(d for d in docs if d["kind"] == "DaemonSet")
pod = ds["spec"]["template"]["spec"]
if not (pod.get("hostNetwork") and pod["containers"][0]["securityContext"].get("privileged")
        and [c["name"] for c in pod.get("initContainers", [])] == ["install-cni"]):
    failed += 1
    print("FAIL agent DaemonSet: needs hostNetwork, a privileged agent and the install-cni init container")
print(f"check-deploy: {len(docs)} objects, {2 * len(docs)} validations, {failed} failed")
sys.exit(1 if failed else 0)
PY
