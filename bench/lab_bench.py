#!/usr/bin/env python3
"""Weft lab benchmark: one JSON line per figure on stdout, a markdown summary at the end.

Figures (see bench/README.md): pod-to-pod TCP throughput across nodes (iperf3) and round-trip
latency (ping) with Weft's flows, against (i) the same lab with OVS NORMAL and no controller and
(ii) a Linux bridge + kernel VXLAN fabric built in the same run; CNI ADD latency p50/p99 over 100
pods; time from `net create` to the first successful ping; time for a restarted controller to
reconcile the switches (plain restart, and after the flows were wiped).

Everything runs in namespaces this script (or weftctl) creates; all of it is removed at the end,
also on failure. Needs root, Open vSwitch, iperf3, ping (scripts/install-deps.sh).
"""

import json
import os
import subprocess
import sys
import time

from benchlib import BIN, ENV, emit, percentile, run, sh, weftctl
LAB = os.environ.get("BENCH_LAB", "bench")
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
PODS = int(os.environ.get("BENCH_PODS", "100"))
FAKE = int(os.environ.get("BENCH_FAKE_ATTACHMENTS", "2000"))  # ~5 flows each on node1
LB = "weft-benchlb"  # namespaces of the Linux bridge baseline


def w(*args, check=True, timeout=120):
    return weftctl(LAB, *args, check=check, timeout=timeout)


def wj(*args):
    return json.loads(w("-o", "json", *args).stdout)


def ofctl(node, *args):
    rundir = f"/run/weft-lab/{LAB}/{node}/ovs"
    return sh(["ip", "netns", "exec", f"weft-{LAB}-{node}", "env", f"OVS_RUNDIR={rundir}",
               "ovs-ofctl", "-O", "OpenFlow13", *args])


def flow_count(node):
    out = ofctl(node, "dump-aggregate", "weft0").stdout
    for word in out.split():
        if word.startswith("flow_count="):
            return int(word.split("=")[1])
    return -1


def reconciled(node):
    """The restarted controller has reconciled `node`'s switch (its metrics list the node)."""
    code = ("import urllib.request,sys;t=urllib.request.urlopen('http://127.0.0.1:9090/metrics').read().decode();"
            f"sys.exit(0 if 'weft_switch_flows{{node=\"{node}\"}}' in t else 1)")
    return sh(in_ns(f"weft-{LAB}-ctl", sys.executable, "-c", code), check=False).returncode == 0


def in_ns(ns, *args):
    return ["ip", "netns", "exec", ns, *args]


def iperf(server_ns, client_ns, ip):
    """TCP throughput in Gbit/s (receiver side), one stream, SECONDS long."""
    srv = subprocess.Popen(in_ns(server_ns, "iperf3", "-s", "-1", "-p", "5201"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        for _ in range(50):
            time.sleep(0.1)
            r = sh(in_ns(client_ns, "iperf3", "-c", ip, "-p", "5201", "-t", str(SECONDS), "-J"),
                   check=False, timeout=SECONDS + 30)
            if r.returncode == 0:
                j = json.loads(r.stdout)
                return j["end"]["sum_received"]["bits_per_second"] / 1e9
            if "Connection refused" not in r.stdout + r.stderr:
                raise RuntimeError(f"iperf3: {r.stdout[-500:]} {r.stderr[-500:]}")
        raise RuntimeError("iperf3 server never came up")
    finally:
        srv.kill()
        srv.wait()


def rtt(client_ns, ip, count=300):
    """Average and max round-trip time in ms of `count` pings 10 ms apart."""
    r = sh(in_ns(client_ns, "ping", "-c", str(count), "-i", "0.01", "-q", ip), timeout=60)
    line = [l for l in r.stdout.splitlines() if "min/avg/max" in l][0]
    mn, avg, mx, mdev = (float(x) for x in line.split("=")[1].split()[0].split("/"))
    return avg, mx


def measure(label, client_ns, server_ns, ip):
    gbps = iperf(server_ns, client_ns, ip)
    avg, mx = rtt(client_ns, ip)
    emit("tcp_throughput", label, round(gbps, 3), "Gbit/s", seconds=SECONDS, streams=1)
    emit("rtt_avg", label, round(avg, 3), "ms", pings=300, interval_ms=10, max_ms=mx)
    return gbps, avg


def build_linux_bridge_fabric():
    """Two 'nodes' with a Linux bridge each, joined by kernel VXLAN over an underlay bridge."""
    teardown_linux_bridge_fabric()
    u = f"{LB}-u"
    sh(["ip", "netns", "add", u])
    sh(["ip", "-n", u, "link", "add", "br0", "type", "bridge"])
    sh(["ip", "-n", u, "link", "set", "br0", "up"])
    for i in (1, 2):
        n, p = f"{LB}-n{i}", f"{LB}-p{i}"
        for ns in (n, p):
            sh(["ip", "netns", "add", ns])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        sh(["ip", "link", "add", "eth0", "netns", n, "type", "veth", "peer", "name", f"n{i}", "netns", u])
        sh(["ip", "-n", u, "link", "set", f"n{i}", "master", "br0", "up"])
        sh(["ip", "-n", n, "addr", "add", f"10.254.250.{i}/24", "dev", "eth0"])
        sh(["ip", "-n", n, "link", "set", "eth0", "up"])
        other = 3 - i
        sh(["ip", "-n", n, "link", "add", "vx0", "type", "vxlan", "id", "42", "remote",
            f"10.254.250.{other}", "dstport", "4789", "dev", "eth0"])
        sh(["ip", "-n", n, "link", "add", "br0", "type", "bridge"])
        sh(["ip", "-n", n, "link", "set", "vx0", "master", "br0", "up"])
        sh(["ip", "link", "add", "eth0", "netns", p, "type", "veth", "peer", "name", "pod", "netns", n])
        sh(["ip", "-n", n, "link", "set", "pod", "master", "br0", "up"])
        sh(["ip", "-n", n, "link", "set", "br0", "up"])
        sh(["ip", "-n", p, "link", "set", "eth0", "mtu", "1450"])
        sh(["ip", "-n", p, "addr", "add", f"10.30.0.{i}/24", "dev", "eth0"])
        sh(["ip", "-n", p, "link", "set", "eth0", "up"])


def teardown_linux_bridge_fabric():
    for ns in sh(["ip", "netns", "list"]).stdout.split("\n"):
        name = ns.split(" ")[0]
        if name.startswith(LB + "-"):
            pids = sh(["ip", "netns", "pids", name], check=False).stdout.split()
            for pid in pids:
                sh(["kill", "-9", pid], check=False)
            sh(["ip", "netns", "del", name], check=False)


def wait(pred, timeout, step=0.02):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def main():
    t_start = time.monotonic()
    w("lab", "down", check=False)
    t = time.monotonic()
    w("lab", "up", "--nodes", "2", timeout=300)
    emit("lab_up", "2 nodes", round(time.monotonic() - t, 2), "s")
    w("net", "create", "red", "--subnet", "10.20.0.0/24")
    w("pod", "run", "a", "--node", "node1", "--net", "red", "--ip", "10.20.0.1/24")
    w("pod", "run", "b", "--node", "node2", "--net", "red", "--ip", "10.20.0.2/24")
    pa, pb = f"weft-{LAB}-pod-a", f"weft-{LAB}-pod-b"
    weft = measure("weft", pa, pb, "10.20.0.2")

    # (i) Same lab, same pods and tunnels; the controller stopped and each switch flooding/learning
    # with NORMAL. Two nodes, one tunnel: no loop without STP.
    weft_flows = {n: flow_count(n) for n in ("node1", "node2")}
    w("lab", "stop", "controller")
    for n in ("node1", "node2"):
        ofctl(n, "del-flows", "weft0")
        ofctl(n, "del-groups", "weft0")
        ofctl(n, "add-flow", "weft0", "priority=0,actions=NORMAL")
    normal = measure("ovs_normal", pa, pb, "10.20.0.2")

    # Back to Weft: the restarted controller must replace NORMAL with its flows.
    t = time.monotonic()
    w("lab", "start", "controller")
    ok = wait(lambda: all(flow_count(n) == c for n, c in weft_flows.items()), 60)
    emit("controller_reconcile_after_wipe", f"{sum(weft_flows.values())} flows",
         round(time.monotonic() - t, 3), "s", complete=ok, flows_per_switch=weft_flows)

    # (ii) Linux bridge + kernel VXLAN, built now, in its own namespaces.
    build_linux_bridge_fabric()
    try:
        lb = measure("linux_bridge_vxlan", f"{LB}-p1", f"{LB}-p2", "10.30.0.2")
    finally:
        teardown_linux_bridge_fabric()

    emit("tcp_throughput_ratio", "weft/ovs_normal", round(weft[0] / normal[0], 3), "ratio", target=0.95)
    emit("tcp_throughput_ratio", "weft/linux_bridge_vxlan", round(weft[0] / lb[0], 3), "ratio")
    emit("rtt_ratio", "weft/ovs_normal", round(weft[1] / normal[1], 3), "ratio")
    emit("rtt_ratio", "weft/linux_bridge_vxlan", round(weft[1] / lb[1], 3), "ratio")

    # CNI ADD latency: PODS pods, alternating nodes, each through the real weft-cni binary.
    adds = []
    for i in range(PODS):
        p = wj("pod", "run", f"c{i}", "--node", f"node{1 + i % 2}", "--net", "red")
        adds.append(p["attachments"][0]["addMs"])
    emit("cni_add_latency_p50", f"{PODS} pods", round(percentile(adds, 50), 1), "ms")
    emit("cni_add_latency_p99", f"{PODS} pods", round(percentile(adds, 99), 1), "ms", target=50)

    # Controller restart with ~10,000 flows on a switch: FAKE attachments (PrepareAttachment +
    # Attach through the agent API with port numbers no real port has) over 20 networks on node1.
    nets = []
    for k in range(20):
        w("net", "create", f"bulk{k}", "--subnet", f"10.50.{k}.0/24")
        nets.append(f"default/bulk{k}")
    t = time.monotonic()
    # As node1, over mutual TLS with the lab's certificate for it.
    r = sh(["env", f"WEFT_TLS_DIR=/run/weft-lab/{LAB}/pki", os.path.join(BIN, "weft-fake-attach"),
            f"weft-{LAB}-ctl", "https://127.0.0.1:7070", "node1",
            ",".join(nets), str(FAKE), "16"], timeout=1200)
    attached = json.loads(r.stdout.strip().splitlines()[-1])["attached"]
    emit("bulk_attach", f"{attached} attachments", round(time.monotonic() - t, 1), "s",
         per_attach_ms=round((time.monotonic() - t) * 1000 / max(attached, 1), 1))
    flows = {n: flow_count(n) for n in ("node1", "node2")}
    w("lab", "stop", "controller")
    t = time.monotonic()
    w("lab", "start", "controller")
    ok = wait(lambda: all(reconciled(n) for n in flows), 120)
    same = all(flow_count(n) == c for n, c in flows.items())
    emit("controller_restart_reconcile", f"{sum(flows.values())} flows", round(time.monotonic() - t, 3), "s",
         complete=ok and same, flows_per_switch=flows, note="nothing to change; includes the switches' reconnect")
    w("lab", "stop", "controller")
    for n in flows:
        ofctl(n, "del-flows", "weft0")
    t = time.monotonic()
    w("lab", "start", "controller")
    ok = wait(lambda: all(flow_count(n) == c for n, c in flows.items()), 300, step=0.05)
    emit("controller_reconcile_after_wipe", f"{sum(flows.values())} flows",
         round(time.monotonic() - t, 3), "s", complete=ok, flows_per_switch=flows)

    # Time from `net create` to the first successful ping between two new pods on two nodes.
    t = time.monotonic()
    w("net", "create", "green", "--subnet", "10.21.0.0/24")
    w("pod", "run", "g1", "--node", "node1", "--net", "green", "--ip", "10.21.0.1/24")
    w("pod", "run", "g2", "--node", "node2", "--net", "green", "--ip", "10.21.0.2/24")
    g1 = f"weft-{LAB}-pod-g1"
    ok = wait(lambda: sh(in_ns(g1, "ping", "-c", "1", "-W", "0.2", "10.21.0.2"), check=False).returncode == 0,
              30, step=0)
    emit("net_create_to_first_ping", "2 pods on 2 nodes", round(time.monotonic() - t, 3), "s", complete=ok)

    emit("bench_wall_time", "total", round(time.monotonic() - t_start, 1), "s")


def cleanup():
    teardown_linux_bridge_fabric()
    w("lab", "down", check=False)


if __name__ == "__main__":
    run(main, cleanup)
