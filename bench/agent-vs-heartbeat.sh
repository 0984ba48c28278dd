#!/usr/bin/env bash
# The agent's memory and CPU next to the real Heartbeat 3.0.6 daemon's, same lab, same run:
# a 2-node lab with keepalive 100 ms, each daemon measured on node1 over 60 s (RSS summed over
# all of the daemon's processes; CPU = user + system time consumed during the window, including
# the commands it ran, such as `ip` refreshing the VIP).
# Rerun: bash bench/agent-vs-heartbeat.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-60}
cargo build --release -q
bin=target/release/hadeploy
lab=bench-agent
trap '"$bin" lab down --name "$lab" >/dev/null 2>&1 || true' EXIT
inventory=$("$bin" lab up --name "$lab" --nodes 2 | tail -n 1)
"$bin" apply --ssh-config "$(dirname "$inventory")/ssh_config" "$inventory" >/dev/null
node() { docker exec "hadeploy-$lab-$1" sh -c "$2"; }
for n in node1 node2; do
    node "$n" "sed -i -e 's/^keepalive.*/keepalive       100ms/' -e 's/^warntime.*/warntime        300ms/' -e 's/^deadtime.*/deadtime        1/' /etc/ha.d/ha.cf"
done

# RSS (kB, summed) and CPU ticks (utime + stime, summed) of the processes named $2 on node1.
sample() {
    node node1 "for p in \$(pgrep -x $1); do
        rss=\$(awk '/VmRSS/ {print \$2}' /proc/\$p/status)
        cpu=\$(awk '{print \$14 + \$15 + \$16 + \$17}' /proc/\$p/stat)
        echo \$rss \$cpu
    done" | awk '{r += $1; c += $2} END {print r, c}'
}
measure() { # name process -> "rss_kb cpu_seconds"
    sleep 5
    read -r _ c0 < <(sample "$2")
    sleep "$window"
    read -r r1 c1 < <(sample "$2")
    local hz
    hz=$(node node1 "getconf CLK_TCK")
    echo "$r1 $(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')"
}

for n in node1 node2; do node "$n" "systemctl restart hadeploy-agent"; done
read -r agent_rss agent_cpu < <(measure agent hadeploy-agent)
for n in node1 node2; do node "$n" "systemctl stop hadeploy-agent"; done
for n in node1 node2; do node "$n" "systemctl start heartbeat"; done
read -r hb_rss hb_cpu < <(measure heartbeat heartbeat)
for n in node1 node2; do node "$n" "systemctl stop heartbeat"; done

printf '\nkeepalive 100 ms, %s s window, node1 of a 2-node lab\n' "$window"
printf '%-22s %12s %14s\n' daemon "RSS (kB)" "CPU (s)"
printf '%-22s %12s %14s\n' "hadeploy-agent" "$agent_rss" "$agent_cpu"
printf '%-22s %12s %14s\n' "heartbeat 3.0.6" "$hb_rss" "$hb_cpu"
awk -v ar="$agent_rss" -v hr="$hb_rss" -v ac="$agent_cpu" -v hc="$hb_cpu" 'BEGIN {
    printf "agent / heartbeat:     RSS %.2fx, CPU %s\n", ar / hr,
        (hc > 0 ? sprintf("%.2fx", ac / hc) : "n/a (heartbeat used no measurable CPU)")
}'
