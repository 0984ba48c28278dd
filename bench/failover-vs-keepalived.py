#!/usr/bin/env python3
"""Failover of hadeploy-agent next to keepalived, and the agent on 3 nodes next to 2, in one run.

A 2-node lab; a client on the host probes the VIP over HTTP every 10 ms (100 ms timeout), and
`ip -ts monitor address` on each node timestamps every change of its addresses. For each daemon
and each mode — graceful stop, standby (the agent's hb_standby; keepalived has none), SIGKILL
of the daemon, node crash (docker kill), link loss (every cable of the active node pulled) and
partition heal (the cables back) — it pulls the active node REPS times and prints, as medians
and maxima: the time until the survivor answers, the longest client outage, and how long both
nodes held the VIP; and after SIGKILL, how long the killed node kept it. Timers: agent
keepalive 100 ms / deadtime 300 ms; keepalived VRRPv3 advert 0.1 s.

Then, once the pair's lab is down, a 3-node lab (`bench-fo3`) gets the agent with the same
timers and the same modes, REPS times each, the fault always on node1, the node holding the VIP
(its home); the survivor is whichever other node answers first, "both held" counts the time two
or more nodes held the VIP. It prints the 3-node figures, then the 2-node and 3-node agent
figures side by side with their difference (3 nodes minus 2) per mode, and for each mode
whether the 3-node client-outage median is within one keepalive (100 ms) of the pair's, i.e.
at most 100 ms longer.

Rerun: python3 bench/failover-vs-keepalived.py [REPS] [--only PARTS]
  REPS   repetitions per mode, shared by every part (default 5)
  PARTS  comma-separated, any of: agent (the agent on 2 nodes), keepalived (keepalived on
         2 nodes), agent3 (the agent on 3 nodes); default all three. The environment variable
         FAILOVER_BENCH_ONLY=PARTS does the same (the flag wins). `--only agent3` reruns just
         the 3-node part (no comparison: the 2-node figures are not measured);
         `--only agent,agent3` gives the 2-node/3-node comparison without keepalived.
"""
import datetime
import json
import math
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
LAB3 = "bench-fo3"
KEEPALIVE_MS = 100
PARTS = ("agent", "keepalived", "agent3")
USAGE = "usage: failover-vs-keepalived.py [REPS] [--only agent,keepalived,agent3]"


def parse_args(argv):
    reps, only = 5, os.environ.get("FAILOVER_BENCH_ONLY", "")
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            print(__doc__)
            raise SystemExit(0)
        if arg == "--only":
            if not args:
                raise SystemExit(USAGE)
            only = args.pop(0)
        elif arg.startswith("--only="):
            only = arg.split("=", 1)[1]
        elif arg.isdigit() and int(arg) > 0:
            reps = int(arg)
        else:
            raise SystemExit(USAGE)
    parts = {"agent" if p == "agent2" else p for p in (p.strip() for p in only.split(",")) if p}
    if parts - set(PARTS):
        raise SystemExit(f"--only: unknown part {', '.join(sorted(parts - set(PARTS)))}; {USAGE}")
    return reps, [p for p in PARTS if p in parts] or list(PARTS)


REPS, ONLY = parse_args(sys.argv[1:])


class Lab:
    """A lab the benchmark brings up and tears down: `with Lab(name, nodes) as lab: ...`."""

    def __init__(self, name, count):
        self.name, self.count = name, count

    def __enter__(self):
        try:
            out = sh(BIN, "lab", "up", "--name", self.name, "--nodes", str(self.count))
            self.inventory = out.strip().splitlines()[-1]
            state = json.load(open(os.path.join(os.path.dirname(self.inventory), "lab.json")))
        except BaseException:
            self.__exit__()
            raise
        self.vip = state["vip"]
        self.nodes = [n["name"] for n in state["nodes"]]
        self.containers = {n["name"]: n["container"] for n in state["nodes"]}
        return self

    def __exit__(self, *_):
        sh(BIN, "lab", "down", "--name", self.name, check=False)

    def fault(self, *args):
        sh(BIN, "lab", "fault", "--name", self.name, *args)


def sh(*args, check=True):
    done = subprocess.run(args, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def node(lab, name, script, check=True):
    return sh("docker", "exec", lab.containers[name], "sh", "-c", script, check=check)


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
                # The lab's page is the node's name.
                who = body.strip() if body.strip().startswith("node") else "?"
            except Exception:
                pass
            self.samples.append((t, who))
            time.sleep(max(0.0, 0.01 - (time.monotonic() - t)))


def first_answer(probe, pulled_at, survivors):
    """(ms after `pulled_at` until one of `survivors` answered, which one), or (None, None)."""
    return next((((t - pulled_at) * 1000, w) for t, w in probe.samples
                 if t >= pulled_at and w in survivors), (None, None))


def measure(probe, pulled_at, survivors):
    after = [(t, w) for t, w in probe.samples if t >= pulled_at]
    first = first_answer(probe, pulled_at, survivors)[0]
    longest, since = 0.0, None
    for t, w in after:
        if w is None and since is None:
            since = t
        elif w is not None and since is not None:
            longest, since = max(longest, t - since), None
    return (first, longest * 1000)


def watch_addresses(lab):
    """(Re)starts the address monitor on every node; its log starts empty."""
    for n in lab.nodes:
        node(lab, n, "pkill -f 'ip -ts monitor' ; : > /tmp/addr.log", check=False)
        sh("docker", "exec", "-d", lab.containers[n], "sh", "-c",
           "exec ip -ts monitor address > /tmp/addr.log 2>&1")
    time.sleep(0.2)


def holds(lab, name, vip, initially):
    """The node's VIP changes since watch_addresses(): [(wall time, holds)]."""
    out = [(0.0, initially)]
    log = node(lab, name, "cat /tmp/addr.log", check=False)
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


def both_held(changes, start, end):
    """Milliseconds within [start, end] during which two or more of the nodes (one change list
    each) held the VIP; with two nodes, both."""
    points = sorted({start, end} | {t for c in changes for t, _ in c if start < t < end})
    total = 0.0
    for a, b in zip(points, points[1:]):
        if sum(state_at(c, a) for c in changes) >= 2:
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
    results, takers = {}, {}
    pair = [d for d in ("agent", "keepalived") if d in ONLY]
    if pair:
        with Lab(LAB, 2) as lab:
            for daemon in pair:
                run(lab, daemon, daemon, results, takers)
        print_pair(results, pair)
    if "agent3" in ONLY:
        with Lab(LAB3, 3) as lab:
            run(lab, "agent", "agent3", results, takers)
        print_three(results, takers)
        if "agent" in ONLY:
            print_comparison(results)
        else:
            print("\n(2-node agent not measured in this run: --only agent,agent3 for the comparison)")


def use_agent(lab):
    cfg = os.path.join(os.path.dirname(lab.inventory), "ssh_config")
    sh(BIN, "apply", "--ssh-config", cfg, lab.inventory)
    for n in lab.nodes:
        node(lab, n, f"systemctl stop keepalived; sed -i -e 's/^keepalive.*/keepalive {KEEPALIVE_MS}ms/' "
                     "-e 's/^warntime.*/warntime 200ms/' -e 's/^deadtime.*/deadtime 300ms/' "
                     "-e 's/^initdead.*/initdead 1/' /etc/ha.d/ha.cf; systemctl restart hadeploy-agent")


def use_keepalived(lab):
    vip = lab.vip
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
        node(lab, n, f"systemctl disable --now hadeploy-agent 2>/dev/null; systemctl stop heartbeat nginx; "
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
ROWS = list(MODES) + ["SIGKILL: killed node keeps the VIP", "node crash", "link loss", "partition heal"]


def run(lab, daemon, key, results, takers):
    """Every mode of `daemon` on `lab`, REPS times, always pulling node1 (which holds the VIP);
    results[(key, mode)] = (survivor answers, client outage, both held or kept), in ms.
    takers[(key, mode)] = the survivor that answered first, per repetition."""
    vip, others = lab.vip, [n for n in lab.nodes if n != "node1"]
    if daemon == "agent":
        use_agent(lab)
    else:
        use_keepalived(lab)
    wait_serving(vip, "node1")
    time.sleep(6)  # past the agent's start-up grace
    for mode in list(MODES) + ["node crash", "link loss"]:
        if mode in MODES and MODES[mode][daemon] is None:
            continue
        takeover, outage, both, kept, heal, heal_both, took = [], [], [], [], [], [], []
        for _ in range(REPS):
            wait_serving(vip, "node1")
            time.sleep(2)
            watch_addresses(lab)
            probe = Probe(vip)
            probe.start()
            time.sleep(0.3)
            pulled, pulled_wall = time.monotonic(), time.time()
            if mode in MODES:
                node(lab, "node1", MODES[mode][daemon][0], check=False)
            elif mode == "node crash":
                lab.fault("crash", "node1")
            else:
                lab.fault("unplug", "--all", "node1")
            time.sleep(3)
            probe.stop = True
            probe.join()
            end_wall = time.time()
            t, o = measure(probe, pulled, others)
            took.append(first_answer(probe, pulled, others)[1] or "none")
            takeover.append(t if t is not None else float("inf"))
            outage.append(o)
            one = holds(lab, "node1", vip, True) if mode != "node crash" else [(0.0, True), (pulled_wall, False)]
            rest = [holds(lab, n, vip, False) for n in others]
            both.append(both_held([one] + rest, pulled_wall, end_wall))
            if mode == "SIGKILL":
                kept.append(kept_until(one, pulled_wall, end_wall))
            # Restore; for link loss this is the partition heal, measured too.
            if mode == "link loss":
                watch_addresses(lab)
            probe = Probe(vip)
            probe.start()
            healed, healed_wall = time.monotonic(), time.time()
            if mode in MODES:
                node(lab, "node1", MODES[mode][daemon][1], check=False)
            elif mode == "node crash":
                lab.fault("start", "node1")
            else:
                lab.fault("plug", "node1")
            time.sleep(4 if mode != "node crash" else 10)
            probe.stop = True
            probe.join()
            if mode == "link loss":
                heal.append(measure(probe, healed, ["node1"])[1])
                # node1's interface came back without the VIP; whatever it re-adds counts. Each
                # survivor starts as it was left: the one that took over holds the VIP.
                one = holds(lab, "node1", vip, False)
                rest = [holds(lab, n, vip, state_at(before, math.inf)) for n, before in zip(others, rest)]
                heal_both.append(both_held([one] + rest, healed_wall, time.time()))
        results[(key, mode)] = (takeover, outage, both)
        takers[(key, mode)] = took
        if kept:
            results[(key, "SIGKILL: killed node keeps the VIP")] = (None, None, kept)
        if heal:
            results[(key, "partition heal")] = (None, heal, heal_both)


def median_max(xs):
    return statistics.median(xs), max(xs)


def fmt(xs):
    if xs is None:
        return "-"
    med, top = median_max(xs)
    return f"{med:6.0f} / {top:6.0f}"


def fmt_diff(two, three):
    if two is None or three is None:
        return "-"
    (m2, x2), (m3, x3) = median_max(two), median_max(three)
    diff = lambda a, b: f"{round(b - a):+6d}" if math.isfinite(b - a) else f"{'n/a':>6}"
    return f"{diff(m2, m3)} / {diff(x2, x3)}"


def print_pair(results, daemons):
    print(f"\n{REPS} repetitions per mode; ms; median / max")
    print(f"{'mode':<36} {'daemon':<11} {'survivor answers':>17} {'client outage':>15} {'both held / kept':>17}")
    for mode in ROWS:
        for daemon in daemons:
            if (daemon, mode) not in results:
                if mode in MODES and MODES[mode][daemon] is None:
                    print(f"{mode:<36} {daemon:<11} {'(no such operation)':>17}")
                continue
            t, o, b = results[(daemon, mode)]
            print(f"{mode:<36} {daemon:<11} {fmt(t):>17} {fmt(o):>15} {fmt(b):>17}")


def print_three(results, takers):
    print(f"\nagent on 3 nodes (lab {LAB3}, fault on node1), {REPS} repetitions per mode; ms; median / max;"
          " both held: two or more nodes")
    print(f"{'mode':<36} {'daemon':<11} {'survivor answers':>17} {'client outage':>15} {'both held / kept':>17}"
          "  survivor")
    for mode in ROWS:
        if ("agent3", mode) not in results:
            continue
        t, o, b = results[("agent3", mode)]
        took = takers.get(("agent3", mode))
        who = ", ".join(f"{n} {took.count(n)}×" for n in sorted(set(took))) if took else ""
        print(f"{mode:<36} {'agent ×3':<11} {fmt(t):>17} {fmt(o):>15} {fmt(b):>17}  {who}".rstrip())


def print_comparison(results):
    print(f"\nthe agent on 2 nodes next to 3 nodes, same run, {REPS} repetitions; ms; median / max;"
          " Δ = 3 nodes − 2 nodes")
    print(f"{'mode':<36} {'figure':<17} {'2 nodes':>15} {'3 nodes':>15} {'Δ':>15}"
          f"  outage within one keepalive ({KEEPALIVE_MS} ms)")
    within, beyond = [], []
    for mode in ROWS:
        two, three = results.get(("agent", mode)), results.get(("agent3", mode))
        if two is None or three is None:
            continue
        label = mode
        for figure, i in (("survivor answers", 0), ("client outage", 1), ("both held / kept", 2)):
            a, b = two[i], three[i]
            if a is None and b is None:
                continue
            verdict = ""
            if i == 1:
                d = statistics.median(b) - statistics.median(a)
                ok = math.isfinite(d) and d <= KEEPALIVE_MS
                verdict = "yes" if ok else "no"
                (within if ok else beyond).append(f"{mode} ({d:+.0f} ms)")
            if i == 2 and mode.startswith("SIGKILL:"):
                figure = "kept"
            print(f"{label:<36} {figure:<17} {fmt(a):>15} {fmt(b):>15} {fmt_diff(a, b):>15}  {verdict}".rstrip())
            label = ""
    print(f"\n3-node client-outage median at most one keepalive ({KEEPALIVE_MS} ms) above the pair's: "
          f"{len(within)} of {len(within) + len(beyond)} modes"
          + (f"; beyond it: {', '.join(beyond)}" if beyond else ""))


if __name__ == "__main__":
    main()
