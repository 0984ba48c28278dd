#!/usr/bin/env python3
"""Failover of hadeploy-agent next to keepalived, in the same lab and the same run.

A 2-node lab; a client on the host probes the VIP over HTTP every 10 ms (100 ms timeout).
For each daemon and each mode — graceful stop, SIGKILL of the daemon, node crash (docker kill),
link loss (every cable of the active node pulled) and partition heal (the cables back) — it
pulls the active node REPS times and prints, as medians and maxima: the time until the
survivor answers, and the longest client outage. Timers: agent keepalive 100 ms / deadtime
300 ms; keepalived VRRPv3 advert 0.1 s. Rerun: python3 bench/failover-vs-keepalived.py [REPS]
"""
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
    # mode: (pull node1, restore node1) per daemon
    "graceful stop": {
        "agent": ("systemctl stop hadeploy-agent", "systemctl start hadeploy-agent"),
        "keepalived": ("systemctl stop keepalived", "systemctl start keepalived"),
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
            takeover, outage, heal = [], [], []
            for _ in range(REPS):
                wait_serving(vip, "node1")
                time.sleep(2)
                probe = Probe(vip)
                probe.start()
                time.sleep(0.3)
                pulled = time.monotonic()
                if mode in MODES:
                    node("node1", MODES[mode][daemon][0], check=False)
                elif mode == "node crash":
                    sh(BIN, "lab", "fault", "--name", LAB, "crash", "node1")
                else:
                    sh(BIN, "lab", "fault", "--name", LAB, "unplug", "--all", "node1")
                time.sleep(3)
                probe.stop = True
                probe.join()
                t, o = measure(probe, pulled, "node2")
                takeover.append(t if t is not None else float("inf"))
                outage.append(o)
                # Restore; for link loss this is the partition heal, measured too.
                probe = Probe(vip)
                probe.start()
                healed = time.monotonic()
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
            results[(daemon, mode)] = (takeover, outage)
            if heal:
                results[(daemon, "partition heal")] = ([0.0], heal)
    print(f"\n{REPS} repetitions per mode; ms; median / max")
    print(f"{'mode':<16} {'daemon':<11} {'survivor answers':>20} {'client outage':>18}")
    for mode in list(MODES) + ["node crash", "link loss", "partition heal"]:
        for daemon in ("agent", "keepalived"):
            if (daemon, mode) not in results:
                continue
            t, o = results[(daemon, mode)]
            fmt = lambda xs: f"{statistics.median(xs):8.0f} / {max(xs):6.0f}"
            print(f"{mode:<16} {daemon:<11} {fmt(t) if mode != 'partition heal' else '-':>20} {fmt(o):>18}")


if __name__ == "__main__":
    main()
