#!/usr/bin/env bash
# Times Weft's OpenFlow FLOW_MOD encoder against os-ken's (Python, from PyPI) in one run, checks
# that both produce the same bytes, and prints one JSON line per figure. Exits non-zero when a
# target of issue 2 is missed: >= 5M FLOW_MOD encodes/s on one core, >= 100x os-ken.
#
#   scripts/bench-openflow.sh               # rate comparison only (about a minute)
#   BENCH_CRITERION=1 scripts/bench-openflow.sh   # also the criterion benches (a few minutes)
#
# os-ken goes into .venv-bench/ (gitignored). OS_KEN_VERSION overrides the pinned version;
# OS_KEN_COUNT the number of os-ken operations per timed round.
set -euo pipefail
cd "$(dirname "$0")/.."

OS_KEN_VERSION=${OS_KEN_VERSION:-4.2.2}
OS_KEN_COUNT=${OS_KEN_COUNT:-20000}
VENV=.venv-bench
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

log() { echo "bench-openflow: $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import os_ken, importlib.metadata as m, sys; sys.exit(m.version('os-ken') != '$OS_KEN_VERSION')" 2>/dev/null; then
    log "installing os-ken==$OS_KEN_VERSION"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "os-ken==$OS_KEN_VERSION" >&2
fi

# One core, the same one for both, when the machine lets us pin.
PIN=()
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null; then
    PIN=(taskset -c 0)
    log "pinned to core 0"
else
    log "taskset unavailable: not pinned"
fi

log "building the rate bench"
cargo bench -p weft-openflow --bench codec_rate --no-run 2>"$OUT/build.log" || {
    cat "$OUT/build.log" >&2
    exit 1
}
log "timing weft"
"${PIN[@]}" cargo bench -p weft-openflow --bench codec_rate 2>>"$OUT/build.log" >"$OUT/weft.jsonl"
log "timing os-ken $OS_KEN_VERSION ($OS_KEN_COUNT operations per round)"
"${PIN[@]}" "$VENV/bin/python" scripts/bench_os_ken.py "$OS_KEN_COUNT" >"$OUT/os_ken.jsonl"

cat "$OUT/weft.jsonl" "$OUT/os_ken.jsonl"
status=0
python3 - "$OUT/weft.jsonl" "$OUT/os_ken.jsonl" <<'PY' || status=$?
import json, sys

rows = [json.loads(l) for p in sys.argv[1:] for l in open(p) if l.strip()]
fig = {(r["figure"], r["impl"]): r for r in rows}
ok = True

weft_hex = fig[("flow_mod_bytes", "weft")]["hex"]
os_ken_hex = fig[("flow_mod_bytes", "os-ken")]["hex"]
same = weft_hex == os_ken_hex
print(json.dumps({"figure": "flow_mod_bytes_identical", "value": same, "pass": same}))
ok &= same

weft = fig[("flow_mod_encode", "weft")]["per_sec"]
os_ken = fig[("flow_mod_encode", "os-ken")]["per_sec"]
ratio = weft / os_ken
print(json.dumps({"figure": "ratio_vs_os_ken", "value": round(ratio, 1), "target": 100, "pass": ratio >= 100}))
ok &= ratio >= 100
print(json.dumps({"figure": "flow_mod_encode_per_sec", "value": weft, "target": 5000000, "pass": weft >= 5_000_000}))
ok &= weft >= 5_000_000

# Informational: both sides building the message object first, then encoding it.
b_ratio = fig[("flow_mod_build_encode", "weft")]["per_sec"] / fig[("flow_mod_build_encode", "os-ken")]["per_sec"]
print(json.dumps({"figure": "build_encode_ratio_vs_os_ken", "value": round(b_ratio, 1)}))
sys.exit(0 if ok else 1)
PY

if [ "${BENCH_CRITERION:-0}" = 1 ]; then
    log "criterion benches"
    "${PIN[@]}" cargo bench -p weft-openflow --bench codec >&2
fi
exit $status
