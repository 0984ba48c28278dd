#!/usr/bin/env python3
"""Failover of hadeploy-agent next to keepalived, in the same lab and the same run.

A 2-node lab; a client on the host probes the VIP over HTTP every 10 ms (100 ms timeout), and
`ip -ts monitor address` on each node timestamps every change of its addresses. For each daemon
and each mode — graceful stop, standby (the agent's hb_standby; keepalived has none), SIGKILL
of the daemon, node crash (docker kill), link loss (every cable of the active node pulled) and
partition heal (the cables back) — it pulls the active node REPS times and prints, as medians
and maxima: the time until the survivor answers, the longest client outage, and how long both
nodes held the VIP; and after SIGKILL, how long the killed node kept it. Timers: agent
keepalive 100 ms / deadtime 300 ms; keepalived VRRPv3 advert 0.1 s.
Rerun: python3 bench/failover-vs-keepalived.py [REPS]
"""
import datetime
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(REPO, "target/release/hadeploy")
LAB = "bench-fo"
REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def sh(*args, check=True):
    done = subprocess.run(args, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def node(name, script, check=True):
    return sh("docker", "exec", f"hadeploy-{LAB}-{name}", "sh", "-c", script, check=check)


class Probe(threading.Thread):
    """HTTP GET every 10 ms; records (time, node that answered or None)."""

    def __init__(self, vip):
        super().__init__(daemon=True)
        self.vip, self.samples, self.stop = vip, [], False

    def run(self):
        while not self.stop:
            t = time.monotonic()
            who = None
            try:
                body = urllib.request.urlopen(f"http://{self.vip}/", timeout=0.1).read().decode()
                who = "node1" if "node1" in body else "node2" if "node2" in body else "?"
            except Exception:
                pass
            self.samples.append((t, who))
            time.sleep(max(0.0, 0.01 - (time.monotonic() - t)))


def measure(probe, pulled_at, survivor):
    after = [(t, w) for t, w in probe.samples if t >= pulled_at]
    first = next((t for t, w in after if w == survivor), None)
    longest, since = 0.0, None
    for t, w in after:
        if w is None and since is None:
            since = t
        elif w is not None and since is not None:
            longest, since = max(longest, t - since), None
    return (None if first is None else (first - pulled_at) * 1000, longest * 1000)


def watch_addresses():
    """(Re)starts the address monitor on both nodes; its log starts empty."""
    for n in ("node1", "node2"):
        node(n, "pkill -f 'ip -ts monitor' ; : > /tmp/addr.log", check=False)
        sh("docker", "exec", "-d", f"hadeploy-{LAB}-{n}", "sh", "-c",
           "exec ip -ts monitor address > /tmp/addr.log 2>&1")
    time.sleep(0.2)


def holds(name, vip, initially):
    """The node's VIP changes since watch_addresses(): [(wall time, holds)]."""
    out = [(0.0, initially)]
    log = node(name, "cat /tmp/addr.log", check=False)
    for line in log.splitlines():
        if not line.startswith("[") or f" {vip}/" not in line:
            continue
        stamp, rest = line[1:].split("]", 1)
        when = datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc)
        out.append((when.timestamp(), not rest.strip().startswith("Deleted")))
    return out


def state_at(changes, t):
    state = changes[0][1]
    for when, held in changes:
        if when <= t:
            state = held
    return state


def both_held(one, two, start, end):
    """Milliseconds within [start, end] during which both nodes held the VIP."""
    points = sorted({start, end} | {t for t, _ in one + two if start < t < end})
    total = 0.0
    for a, b in zip(points, points[1:]):
        if state_at(one, a) and state_at(two, a):
            total += b - a
    return total * 1000


def kept_until(changes, start, end):
    """Milliseconds after `start` until the node stopped holding the VIP (`end` if it kept it)."""
    for when, held in changes:
        if when >= start and not held:
            return (when - start) * 1000
    return (end - start) * 1000 if state_at(changes, end) else 0.0


def wait_serving(vip, who, limit=60):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            if who in urllib.request.urlopen(f"http://{vip}/", timeout=0.2).read().decode():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{who} does not serve the VIP")


def main():
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=REPO, check=True)
    inventory = sh(BIN, "lab", "up", "--name", LAB, "--nodes", "2").strip().splitlines()[-1]
    try:
        lab = json.load(open(os.path.join(os.path.dirname(inventory), "lab.json")))
        vip = lab["vip"]
        run(inventory, vip)
    finally:
        sh(BIN, "lab", "down", "--name", LAB, check=False)


def use_agent(inventory):
    cfg = os.path.join(os.path.dirname(inventory), "ssh_config")
    sh(BIN, "apply", "--ssh-config", cfg, inventory)
    for n in ("node1", "node2"):
        node(n, "systemctl stop keepalived; sed -i -e 's/^keepalive.*/keepalive 100ms/' "
                "-e 's/^warntime.*/warntime 200ms/' -e 's/^deadtime.*/deadtime 300ms/' "
                "-e 's/^initdead.*/initdead 1/' /etc/ha.d/ha.cf; systemctl restart hadeploy-agent")


def use_keepalived(vip):
    for i, n in enumerate(("node1", "node2")):
        conf = f"""global_defs {{ vrrp_version 3 }}
vrrp_instance VI_1 {{
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority {150 - 50 * i}
  advert_int 0.1
  virtual_ipaddress {{ {vip}/24 }}
  notify_master "/bin/systemctl start nginx"
  notify_backup "/bin/systemctl stop nginx"
  notify_fault "/bin/systemctl stop nginx"
}}
"""
        # Only keepalived from here on, also after a crash and reboot of the node.
        node(n, f"systemctl disable --now hadeploy-agent 2>/dev/null; systemctl stop heartbeat nginx; "
                "systemctl enable -q keepalived; "
                f"ip addr del {vip}/24 dev eth0 2>/dev/null; cat > /etc/keepalived/keepalived.conf <<'EOF'\n{conf}EOF\n"
                "systemctl restart keepalived")


MODES = {
    # mode: (pull node1, restore node1) per daemon; None: the daemon has no such operation
    "graceful stop": {
        "agent": ("systemctl stop hadeploy-agent", "systemctl start hadeploy-agent"),
        "keepalived": ("systemctl stop keepalived", "systemctl start keepalived"),
    },
    "standby": {
        "agent": ("hadeploy-agent standby", "hadeploy-agent takeover"),
        "keepalived": None,
    },
    "SIGKILL": {
        "agent": ("systemctl kill -s KILL hadeploy-agent; systemctl stop hadeploy-agent",
                  "systemctl start hadeploy-agent"),
        "keepalived": ("pkill -9 -x keepalived", "systemctl reset-failed keepalived; systemctl restart keepalived"),
    },
}


def run(inventory, vip):
    results = {}
    for daemon in ("agent", "keepalived"):
        if daemon == "agent":
            use_agent(inventory)
        else:
            use_keepalived(vip)
        wait_serving(vip, "node1")
        time.sleep(6)  # past the agent's start-up grace
        for mode in list(MODES) + ["node crash", "link loss"]:
            if mode in MODES and MODES[mode][daemon] is None:
                continue
            takeover, outage, both, kept, heal, heal_both = [], [], [], [], [], []
            for _ in range(REPS):
                wait_serving(vip, "node1")
                time.sleep(2)
                watch_addresses()
                probe = Probe(vip)
                probe.start()
                time.sleep(0.3)
                pulled, pulled_wall = time.monotonic(), time.time()
                if mode in MODES:
                    node("node1", MODES[mode][daemon][0], check=False)
                elif mode == "node crash":
                    sh(BIN, "lab", "fault", "--name", LAB, "crash", "node1")
                else:
                    sh(BIN, "lab", "fault", "--name", LAB, "unplug", "--all", "node1")
                time.sleep(3)
                probe.stop = True
                probe.join()
                end_wall = time.time()
                t, o = measure(probe, pulled, "node2")
                takeover.append(t if t is not None else float("inf"))
                outage.append(o)
                one = holds("node1", vip, True) if mode != "node crash" else [(0.0, True), (pulled_wall, False)]
                two = holds("node2", vip, False)
                both.append(both_held(one, two, pulled_wall, end_wall))
                if mode == "SIGKILL":
                    kept.append(kept_until(one, pulled_wall, end_wall))
                # Restore; for link loss this is the partition heal, measured too.
                if mode == "link loss":
                    watch_addresses()
                probe = Probe(vip)
                probe.start()
                healed, healed_wall = time.monotonic(), time.time()
                if mode in MODES:
                    node("node1", MODES[mode][daemon][1], check=False)
                elif mode == "node crash":
                    sh(BIN, "lab", "fault", "--name", LAB, "start", "node1")
                else:
                    sh(BIN, "lab", "fault", "--name", LAB, "plug", "node1")
                time.sleep(4 if mode != "node crash" else 10)
                probe.stop = True
                probe.join()
                if mode == "link loss":
                    heal.append(measure(probe, healed, "node1")[1])
                    # node1's interface came back without the VIP; whatever it re-adds counts.
                    one = holds("node1", vip, False)
                    two = holds("node2", vip, True)
                    heal_both.append(both_held(one, two, healed_wall, time.time()))
            results[(daemon, mode)] = (takeover, outage, both)
            if kept:
                results[(daemon, "SIGKILL: killed node keeps the VIP")] = (None, None, kept)
            if heal:
                results[(daemon, "partition heal")] = (None, heal, heal_both)
    print(f"\n{REPS} repetitions per mode; ms; median / max")
    print(f"{'mode':<36} {'daemon':<11} {'survivor answers':>17} {'client outage':>15} {'both held / kept':>17}")
    fmt = lambda xs: "-" if xs is None else f"{statistics.median(xs):6.0f} / {max(xs):6.0f}"
    for mode in list(MODES) + ["SIGKILL: killed node keeps the VIP", "node crash", "link loss", "partition heal"]:
        for daemon in ("agent", "keepalived"):
            if (daemon, mode) not in results:
                if mode in MODES and MODES[mode][daemon] is None:
                    print(f"{mode:<36} {daemon:<11} {'(no such operation)':>17}")
                continue
            t, o, b = results[(daemon, mode)]
            print(f"{mode:<36} {daemon:<11} {fmt(t):>17} {fmt(o):>15} {fmt(b):>17}")


if __name__ == "__main__":
    main()
