#!/usr/bin/env bash
# No false failover with every CPU saturated: a 2-node lab at keepalive 100 ms / deadtime
# 300 ms, one busy loop per CPU plus one per node (all at normal priority, as a runaway
# service would be) for the whole window, default 600 s. Counts what an operator would page
# on: nodes declared dead, VIP moves, late-heartbeat warnings, and the longest heartbeat gap
# the agents logged. Any death or VIP move is a false failover: nothing was pulled.
# Rerun: bash bench/soak.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-600}
cargo build --release -q
bin=target/release/hadeploy
lab=bench-soak
burners=()
cleanup() {
    for p in "${burners[@]}"; do kill "$p" 2>/dev/null || true; done
    "$bin" lab down --name "$lab" >/dev/null 2>&1 || true
}
trap cleanup EXIT
inventory=$("$bin" lab up --name "$lab" --nodes 2 | tail -n 1)
vip=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vip"])' "$(dirname "$inventory")/lab.json")
"$bin" apply --ssh-config "$(dirname "$inventory")/ssh_config" "$inventory" >/dev/null
node() { docker exec "hadeploy-$lab-$1" sh -c "$2"; }
for n in node1 node2; do
    node "$n" "sed -i -e 's/^keepalive.*/keepalive 100ms/' -e 's/^warntime.*/warntime 200ms/' \
        -e 's/^deadtime.*/deadtime 300ms/' -e 's/^initdead.*/initdead 1/' /etc/ha.d/ha.cf
        systemctl restart hadeploy-agent"
done
sleep 8
holder() {
    for n in node1 node2; do
        node "$n" "ip -o -4 addr show | grep -q ' $vip/'" && printf '%s ' "$n"
    done
    echo
}
before=$(holder)
since=$(date '+%Y-%m-%d %H:%M:%S')

cpus=$(nproc)
for _ in $(seq "$cpus"); do
    sh -c 'while :; do :; done' &
    burners+=("$!")
done
for n in node1 node2; do
    docker exec -d "hadeploy-$lab-$n" sh -c 'while :; do :; done'
done
echo "soak: ${window}s, $cpus host busy loops + 1 per node, VIP on: $before" >&2
moves=0
last=$before
end=$((SECONDS + window))
while ((SECONDS < end)); do
    sleep 5
    now=$(holder)
    if [[ $now != "$last" ]]; then
        moves=$((moves + 1))
        echo "soak: VIP holders changed: '$last' -> '$now' at $(date +%T)" >&2
        last=$now
    fi
done
load=$(cut -d' ' -f1 /proc/loadavg)
for p in "${burners[@]}"; do kill "$p" 2>/dev/null || true; done
burners=()
for n in node1 node2; do node "$n" "pkill -f 'while :; do :; done'" || true; done

journal() { node "$1" "journalctl -u hadeploy-agent --since '$since' -o cat"; }
deaths=0 late=0 gap=0
for n in node1 node2; do
    log=$(journal "$n")
    d=$(grep -c '→ dead' <<<"$log" || true)
    l=$(grep -c 'late heartbeat' <<<"$log" || true)
    g=$( (grep -o 'late heartbeat from [a-z0-9]*: [0-9]* ms' <<<"$log" || true) | awk '{print $5}' | sort -n | tail -1)
    deaths=$((deaths + d))
    late=$((late + l))
    ((${g:-0} > gap)) && gap=${g:-0}
    rt=$(node "$n" "chrt -p \$(pgrep -x hadeploy-agent) | head -1 | sed 's/.*: //'" || echo unknown)
    echo "soak: $n scheduling policy: $rt" >&2
done

printf '\nkeepalive 100 ms, deadtime 300 ms, %s s with every CPU busy (load average %s)\n' "$window" "$load"
printf '%-34s %8s\n' "nodes declared dead" "$deaths"
printf '%-34s %8s\n' "VIP moves" "$moves"
printf '%-34s %8s\n' "late-heartbeat warnings (>200 ms)" "$late"
printf '%-34s %8s\n' "longest late heartbeat (ms)" "$gap"
printf '%-34s %8s\n' "VIP holders before / after" "$before/ $(holder)"
((deaths == 0 && moves == 0)) && echo "no false failover" || echo "FALSE FAILOVER"
