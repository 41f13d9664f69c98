#!/usr/bin/env python3
"""CNI ADD/DEL latency on a 3-node lab with flows confirmed (issue 4), against Debian's `bridge`
plugin (host-local IPAM) into a Linux bridge, measured in the same run.

Each call execs the plugin binary the way Multus does (inside the node's network namespace, the
`CNI_*` environment, the NAD config on stdin) and times that one exec. A Weft ADD returns only
once the controller confirmed the attachment's flows on every switch holding members of the
network, so the figure includes the flow push. Sequential (BENCH_PODS calls, pods spread over the
three nodes, one network) and BENCH_PAR calls started at once. One JSON line per figure on stdout,
a markdown table on stderr. Targets (Weft ADD): p50 <= 20 ms, p99 <= 50 ms.

Everything lives in lab `cnibench` (namespaces weft-cnibench-*, files under
/run/weft-lab/cnibench) and is removed by `weftctl lab down` at the end, also on failure.
"""

import ctypes
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

from benchlib import BIN, ENV, emit, percentile, run, sh, weftctl
LAB = os.environ.get("BENCH_LAB", "cnibench")
PODS = int(os.environ.get("BENCH_PODS", "100"))
PAR = int(os.environ.get("BENCH_PAR", "50"))
NODES = 3
PLUGINS = "/usr/lib/cni"
LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
CLONE_NEWNET = 0x40000000


def w(*args, check=True, timeout=300):
    return weftctl(LAB, *args, check=check, timeout=timeout)


HOME_NS = os.open("/proc/thread-self/ns/net", os.O_RDONLY)


class in_netns:
    """Moves the calling thread into a network namespace and back, so children spawned meanwhile
    start there (as Multus runs plugins in the node's namespace). Spawning with a pre-exec hook
    instead would make Python fork rather than vfork: ~2.5 ms per call on this machine, which is
    the harness's time, not the plugin's."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if LIBC.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {self.path}")
        finally:
            os.close(fd)

    def __exit__(self, *exc):
        if LIBC.setns(HOME_NS, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")


class Plugin:
    def __init__(self, name, binary, conf, env):
        self.name, self.binary, self.conf, self.env = name, binary, json.dumps(conf), env

    def start(self, cmd, node, pod, cid):
        """Starts one call in `node`'s namespace; returns (process, start time)."""
        env = {
            "PATH": ENV["PATH"],
            "CNI_COMMAND": cmd,
            "CNI_CONTAINERID": cid,
            "CNI_NETNS": f"/run/netns/{pod}",
            "CNI_IFNAME": "net1",
            "CNI_PATH": f"{BIN}:{PLUGINS}",
            "CNI_ARGS": f"IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod};"
                        f"K8S_POD_INFRA_CONTAINER_ID={cid};K8S_POD_UID=uid-{cid}",
        }
        env.update(self.env(node))
        with in_netns(f"/run/netns/weft-{LAB}-{node}"):
            t = time.monotonic()
            p = subprocess.Popen([self.binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env)
        return p, t

    def finish(self, p, t):
        out, err = p.communicate(self.conf.encode(), timeout=60)
        ms = (time.monotonic() - t) * 1000
        if p.returncode != 0:
            raise RuntimeError(f"{self.name}: {out.decode().strip()} {err.decode().strip()}")
        return ms

    def call(self, cmd, node, pod, cid):
        return self.finish(*self.start(cmd, node, pod, cid))

    def parallel(self, cmd, calls):
        """Starts every call at once (spawned back to back) and times each from its own start."""
        started = [self.start(cmd, *c) for c in calls]
        times, errors = [None] * len(started), []

        def wait(i, p, t):
            try:
                times[i] = self.finish(p, t)
            except Exception as e:  # reported below
                errors.append(str(e))

        threads = [threading.Thread(target=wait, args=(i, p, t)) for i, (p, t) in enumerate(started)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        if errors:
            raise RuntimeError(f"{len(errors)} of {len(calls)} parallel {cmd}s failed: {errors[0]}")
        return times


def scrape(ns, port):
    with in_netns(f"/run/netns/{ns}"):
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


def add_steps(nodes):
    """Sum and count of each ADD step over the nodes' agents, plus the controller's switch
    reconciles (compute, diff, push, confirmed by the switch), from their /metrics."""
    total = {}
    for node in nodes:
        text = scrape(f"weft-{LAB}-{node}", 9091)
        for kind, step, v in re.findall(r'weft_agent_cni_add_step_seconds_(sum|count)\{step="(\w+)"\} (\S+)', text):
            t = total.setdefault(step, [0.0, 0.0])
            t[0 if kind == "sum" else 1] += float(v)
    text = scrape(f"weft-{LAB}-ctl", 9090)
    for kind, v in re.findall(r'^weft_reconcile_seconds_(sum|count) (\S+)$', text, re.M):
        t = total.setdefault("controller: one switch reconcile", [0.0, 0.0])
        t[0 if kind == "sum" else 1] += float(v)
    return total


def bench_plugin(plugin, nodes, prefix):
    """Sequential ADDs then DELs, then PAR parallel ADDs then DELs; emits p50/p99 of each."""
    def calls(n, tag):
        out = []
        for i in range(n):
            pod = f"weft-{LAB}-pod-{prefix}{tag}{i}"
            sh(["ip", "netns", "add", pod])
            # 64 hex digits, like a container runtime's id.
            out.append((nodes[i % len(nodes)], pod, f"{ord(prefix):02x}{ord(tag):02x}{i:060x}"))
        return out

    for mode, n in (("sequential", PODS), ("parallel", PAR)):
        cs = calls(n, mode[0])
        for op in ("ADD", "DEL"):
            if mode == "sequential":
                before = add_steps(nodes) if plugin.name == "weft" and op == "ADD" else None
                times = [plugin.call(op, *c) for c in cs]
                if before is not None:
                    # Where a sequential ADD goes, by the agents' own clocks (mean per step;
                    # pod_config, ovs_port and attach run at once, `parallel` is their span).
                    for step, (secs, count) in add_steps(nodes).items():
                        b = before.get(step, [0.0, 0.0])
                        if count > b[1]:
                            emit("cni_add_step_mean", step,
                                 round((secs - b[0]) / (count - b[1]) * 1000, 2), "ms")
            else:
                times = plugin.parallel(op, cs)
            for p in (50, 99):
                extra = {}
                if plugin.name == "weft" and op == "ADD":
                    extra["target"] = 20 if p == 50 else 50
                    extra["pass"] = percentile(times, p) <= extra["target"]
                emit(f"cni_{op.lower()}_p{p}", f"{plugin.name} {mode} ({n})",
                     round(percentile(times, p), 1), "ms", **extra)
        for _, pod, _ in cs:
            sh(["ip", "netns", "del", pod], check=False)


def main():
    t0 = time.monotonic()
    w("lab", "down", check=False)
    w("lab", "up", "--nodes", str(NODES))
    w("net", "create", "red", "--subnet", "10.40.0.0/22")
    nodes = [f"node{i + 1}" for i in range(NODES)]
    lab_dir = f"/run/weft-lab/{LAB}"
    weft = Plugin("weft", os.path.join(BIN, "weft-cni"),
                  {"cniVersion": "1.0.0", "name": "red", "type": "weft", "network": "default/red"},
                  lambda node: {"WEFT_CNI_SOCKET": f"{lab_dir}/{node}/cni.sock"})
    # Warm-up: the first exec of each binary pays for page-ins.
    warm = f"weft-{LAB}-pod-warm"
    sh(["ip", "netns", "add", warm])
    weft.call("ADD", "node1", warm, "f" * 64)
    weft.call("DEL", "node1", warm, "f" * 64)
    # What the harness itself costs per call: /bin/true spawned and timed the same way.
    noop = Plugin("noop", "/bin/true", {}, lambda node: {})
    noop_times = [noop.call("ADD", "node1", warm, "f" * 64) for _ in range(50)]
    emit("harness_exec_p50", "/bin/true spawned like a plugin", round(percentile(noop_times, 50), 1), "ms")
    bench_plugin(weft, nodes, "w")

    bridge = Plugin("bridge", os.path.join(PLUGINS, "bridge"),
                    {"cniVersion": "1.0.0", "name": "brbench", "type": "bridge", "bridge": "cnibr0",
                     "ipam": {"type": "host-local", "subnet": "10.41.0.0/22",
                              "dataDir": f"{lab_dir}/host-local"}},
                    lambda node: {})
    bridge.call("ADD", "node1", warm, "f" * 64)
    bridge.call("DEL", "node1", warm, "f" * 64)
    # The Linux bridge lives in one node's namespace, as a bridge CNI does on one host.
    bench_plugin(bridge, ["node1"], "b")
    sh(["ip", "netns", "del", warm], check=False)
    emit("bench_wall_time", "total", round(time.monotonic() - t0, 1), "s")


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("cni_bench: needs root (network namespaces, OVS)")
    run(main, lambda: w("lab", "down", check=False))
