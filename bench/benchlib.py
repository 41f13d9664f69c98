"""What the lab benchmark scripts share: running commands, one JSON line per figure, the
markdown summary, and running a benchmark so that its cleanup happens also on failure."""

import json
import os
import subprocess
import sys

ENV = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
BIN = os.environ["WEFT_BIN_DIR"]
WEFTCTL = os.path.join(BIN, "weftctl")
results = []


def emit(figure, variant, value, unit, **extra):
    rec = {"figure": figure, "variant": variant, "value": value, "unit": unit}
    rec.update(extra)
    results.append(rec)
    print(json.dumps(rec), flush=True)


def sh(args, check=True, timeout=120, **kw):
    r = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()} {r.stdout.strip()}")
    return r


def weftctl(lab, *args, check=True, timeout=120):
    return sh([WEFTCTL, "--lab", lab, *args], check=check, timeout=timeout)


def percentile(values, p):
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))
    return v[k]


def summary():
    lines = ["| figure | variant | value |", "|---|---|---|"]
    for r in results:
        extra = ""
        if "target" in r:
            verdict = f", {'met' if r['pass'] else 'NOT met'}" if "pass" in r else ""
            extra = f" (target {r['target']}{verdict})"
        if r.get("complete") is False:
            extra += " INCOMPLETE"
        lines.append(f"| {r['figure']} | {r['variant']} | {r['value']} {r['unit']}{extra} |")
    return "\n".join(lines)


def run(main, cleanup):
    """Runs `main`, always `cleanup` after it, prints the summary on stderr, and exits 1 when
    `main` failed."""
    code = 0
    try:
        main()
    except Exception as e:  # report, then still clean up
        print(f"bench failed: {e}", file=sys.stderr)
        code = 1
    finally:
        cleanup()
    print("\n" + summary(), file=sys.stderr)
    sys.exit(code)
