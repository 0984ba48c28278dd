#!/usr/bin/env bash
# `hadeploy diff` and `hadeploy status` next to a no-op `hadeploy apply`, on converged lab
# clusters of two nodes each (2, 10 and 30 nodes: 1, 5 and 15 clusters in one inventory), in
# one run: 5 interleaved repetitions of each, medians in seconds, the ratios, and the cost per
# added host between sizes. Then, on 2 and 10 nodes (one cluster, the lab's own inventory),
# the same drift made by hand for both tools — a line appended to haresources on node2, the
# authkeys secret changed on node1 — found by `hadeploy diff` and by
# `ansible-playbook --check --diff` (bench/ansible/playbook.yml, its desired files taken from
# what hadeploy renders, so both tools want the same bytes): seconds (median of 3), what each
# found, and whether the old or new secret appears in its output. Ansible is installed into a
# throw-away venv from PyPI; it is not a dependency of hadeploy.
# A lab holds at most 16 nodes, so 30 nodes are two labs (16 + 14) in one inventory.
# Rerun: bash bench/diff-status.sh [sizes...]   (even; default: 2 10 30; the drift part: 2, 10)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-2 10 30}")
read -r -a sizes <<<"${sizes[*]}"
reps=5
drift_reps=3
# Every lab node runs systemd, which takes inotify instances; Debian's default of 128 per user
# stops containers from booting past about 20 nodes.
for n in "${sizes[@]}"; do
    if ((n > 16)) && (($(sysctl -n fs.inotify.max_user_instances) < 512)); then
        echo "$n nodes need more inotify instances than this host allows: sysctl -w fs.inotify.max_user_instances=1024" >&2
        exit 1
    fi
done
cargo build --release -q
bin=$PWD/target/release/hadeploy
work=$(mktemp -d)
labs=()
# A lab's teardown can race Docker's own endpoint cleanup; one retry, and a lab left behind is
# removed by the trap at the end rather than losing the run's figures.
down() {
    "$bin" lab down --name "$1" >/dev/null 2>&1 || { sleep 3; "$bin" lab down --name "$1" >/dev/null 2>&1; } || true
}
cleanup() {
    for l in "${labs[@]}"; do "$bin" lab down --name "$l" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Runs a command, prints its wall time in seconds; an exit code outside the allowed ones
# (default 0) stops the bench with its output. The output stays in $work/last.log.
timed() {
    local ok=0 log=$work/last.log s e rc
    if [[ $1 == --ok=* ]]; then ok=${1#--ok=}; shift; fi
    s=$(date +%s%N)
    rc=0
    "$@" >"$log" 2>&1 || rc=$?
    e=$(date +%s%N)
    if [[ ",$ok," != *",$rc,"* ]]; then
        echo "failed (exit $rc): $*" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
    awk -v n=$((e - s)) 'BEGIN {printf "%.3f", n / 1e9}'
}

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

up() { # lab name, size -> inventory path (called in $(…): the caller records the name)
    "$bin" lab up --name "$1" --nodes "$2" | tail -n 1
}

# Labs hold at most 16 nodes: a size above that is split into labs of 16 and the rest.
lab_sizes() {
    local n=$1
    while ((n > 16)); do echo 16; n=$((n - 16)); done
    echo "$n"
}

# The labs' nodes as clusters of two, each with its own group, VIP from its lab's VIP range,
# UDP port (clusters on one heartbeat link must not share one; `check` refuses it) and its first
# node preferred; every other variable of the lab's own inventory is kept. Nodes of the second
# and later labs are named LAB-nodeK in the inventory, with ha_node_name nodeK (their uname -n).
pairs_inventory() { # output path, lab inventories...
    python3 - "$@" <<'EOF'
import ipaddress, json, os, re, sys
out, labs = sys.argv[1], sys.argv[2:]
lines = ["# clusters of two on lab(s) %s, written by bench/diff-status.sh" % ", ".join(
    os.path.basename(os.path.dirname(l)) for l in labs), "all:", "  children:"]
cluster = 0
for j, lab_inv in enumerate(labs):
    lab = json.load(open(os.path.join(os.path.dirname(lab_inv), "lab.json")))
    text = open(lab_inv).read()
    top = re.search(r"^all:\n  vars:\n((?:    \S.*\n)+)", text, re.M).group(1)
    group = re.search(r"^      vars:\n((?:        \S.*\n)+)", text, re.M).group(1)
    keep = ["    " + l for l in top.splitlines()]
    keep += [l for l in group.splitlines() if not re.match(r"\s*(ha_vips|ha_preferred_node):", l)]
    bits = re.search(r"ha_vips: \[[\d.]+/(\d+)\]", group).group(1)
    lo, hi = (ipaddress.IPv4Address(a) for a in lab["vip_range"])
    nodes = lab["nodes"]
    assert len(nodes) % 2 == 0, "an even number of nodes"
    assert len(nodes) // 2 <= int(hi) - int(lo) + 1, "more clusters than VIPs in the lab's range"
    host = (lambda n: n) if j == 0 else (lambda n, p=lab["name"]: "%s-%s" % (p, n))
    for i in range(len(nodes) // 2):
        pair = nodes[2 * i:2 * i + 2]
        lines += ["    pair%d:" % (cluster + 1), "      hosts:"]
        for n in pair:
            extra = "" if j == 0 else ", ha_node_name: %s" % n["name"]
            lines.append("        %s: {ansible_host: %s, ha_heartbeat_address: %s/24%s}"
                         % (host(n["name"]), n["service_addr"], n["heartbeat_addr"], extra))
        lines += ["      vars:",
                  "        ha_vips: [%s/%s]" % (lo + i, bits),
                  "        ha_preferred_node: %s" % host(pair[0]["name"]),
                  "        ha_udpport: %d" % (694 + cluster)] + keep
        cluster += 1
open(out, "w").write("\n".join(lines) + "\n")
EOF
}

converge() { # inventory, ssh_config
    local i
    for i in 1 2 3 4 5; do
        "$bin" apply --ssh-config "$2" "$1" >"$work/apply.log" 2>&1 || true
        if "$bin" apply --check --ssh-config "$2" "$1" >"$work/check.log" 2>&1; then
            break
        fi
        if ((i == 5)); then
            echo "apply did not converge on $1:" >&2
            tail -n 40 "$work/apply.log" "$work/check.log" >&2
            exit 1
        fi
    done
    for i in $(seq 1 60); do
        if "$bin" status --ssh-config "$2" "$1" >"$work/status.log" 2>&1; then
            return 0
        fi
        sleep 1
    done
    echo "hadeploy status not healthy after 60 s on $1:" >&2
    tail -n 40 "$work/status.log" >&2
    exit 1
}

# Part 1: no-op apply, diff and status on converged clusters of two.
declare -A t
for n in "${sizes[@]}"; do
    echo "size $n: lab up…" >&2
    names=() lab_inventories=()
    for m in $(lab_sizes "$n"); do
        name=bench-ds$n${names[0]:+-${#names[@]}}
        labs+=("$name")
        names+=("$name")
        lab_inventories+=("$(up "$name" "$m")")
    done
    if ((n == 2)); then
        inventory=${lab_inventories[0]}
        cfg=$(dirname "$inventory")/ssh_config
    else
        inventory=$work/pairs$n/inventory.yml
        cfg=$work/pairs$n/ssh_config
        mkdir -p "$(dirname "$inventory")"
        pairs_inventory "$inventory" "${lab_inventories[@]}"
        # Every lab's ssh_config names its nodes by address too, so together they reach all.
        for l in "${lab_inventories[@]}"; do cat "$(dirname "$l")/ssh_config"; done >"$cfg"
    fi
    "$bin" check "$inventory" >/dev/null
    echo "size $n: converging…" >&2
    converge "$inventory" "$cfg"
    a=() d=() s=()
    for _ in $(seq "$reps"); do
        a+=("$(timed "$bin" apply --ssh-config "$cfg" "$inventory")")
        d+=("$(timed "$bin" diff --ssh-config "$cfg" "$inventory")")
        s+=("$(timed "$bin" status --ssh-config "$cfg" "$inventory")")
    done
    echo "size $n: apply ${a[*]} / diff ${d[*]} / status ${s[*]}" >&2
    t[$n,apply]=$(median "${a[@]}")
    t[$n,diff]=$(median "${d[@]}")
    t[$n,status]=$(median "${s[@]}")
    t[$n,clusters]=$((n == 2 ? 1 : n / 2))
    if ((n != 2)); then
        for name in "${names[@]}"; do down "$name"; done
    fi
done

# Part 2: the same drift for hadeploy diff and ansible-playbook --check --diff.
drift_sizes=()
for n in "${sizes[@]}"; do if ((n == 2 || n == 10)); then drift_sizes+=("$n"); fi; done
if ((${#drift_sizes[@]})); then
    echo "installing ansible-core into a venv…" >&2
    python3 -m venv "$work/venv"
    "$work/venv/bin/pip" install -q ansible-core >&2
    export PATH="$work/venv/bin:$PATH"
    export AGENT_BINARY=$PWD/target/release/hadeploy-agent
    # The playbook's own templates write other bytes than hadeploy (a header, timers), so
    # against nodes hadeploy converged it would report every file as changed. This copy takes
    # each host's files from `hadeploy render` of the same inventory (and the sysctl drop-in
    # from a converged node), so the only differences either tool can see are the drift.
    mkdir -p "$work/ansible"
    sed -e 's#template: {src: templates/\([a-z.]*\)\.j2,#copy: {src: "{{ want }}/{{ inventory_hostname }}/etc/ha.d/\1",#' \
        -e 's#content: "net.ipv4.ip_nonlocal_bind = 1\\n"#src: "{{ want }}/sysctl.conf"#' \
        bench/ansible/playbook.yml >"$work/ansible/playbook.yml"
    if grep -q 'template:\|content:' "$work/ansible/playbook.yml"; then
        echo "bench/ansible/playbook.yml changed shape; update the sed in $0" >&2
        exit 1
    fi
fi
declare -A r
for n in "${drift_sizes[@]}"; do
    name=bench-ds$n
    if ((n != 2)); then
        labs+=("bench-dd$n")
        name=bench-dd$n
        echo "drift $n: lab up…" >&2
        up "$name" "$n" >/dev/null
    fi
    inventory=$("$bin" lab status --name "$name" | sed -n 's/^inventory: //p')
    cfg=$(dirname "$inventory")/ssh_config
    echo "drift $n: converging…" >&2
    converge "$inventory" "$cfg"
    want=$work/want$n
    "$bin" render "$inventory" --out "$want" >/dev/null
    ssh -F "$cfg" node1 cat /etc/sysctl.d/90-hadeploy.conf >"$want/sysctl.conf"

    # The drift, the same for both tools. The secret is read without being printed.
    old=$(ssh -F "$cfg" node1 "awk '\$1 == 1 && NF == 3 {print \$3}' /etc/ha.d/authkeys")
    new=$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')
    [[ $old =~ ^[A-Za-z0-9+/=_-]+$ ]] || { echo "unexpected authkeys line on node1" >&2; exit 1; }
    ssh -F "$cfg" node2 "echo '# hand edit' >> /etc/ha.d/haresources"
    ssh -F "$cfg" node1 "sed -i 's|$old|$new|' /etc/ha.d/authkeys"
    ssh -F "$cfg" node1 "grep -qF '$new' /etc/ha.d/authkeys"

    export ANSIBLE_PIPELINING=True ANSIBLE_FORKS=$n ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
    export ANSIBLE_SSH_ARGS="-F $cfg -o ControlMaster=auto -o ControlPersist=60s"
    export ANSIBLE_CONTROL_PATH_DIR=$work/cp$n ANSIBLE_HOST_KEY_CHECKING=True
    play=(ansible-playbook -i "$inventory" "$work/ansible/playbook.yml" -e "want=$want" --check --diff)
    h=() an=()
    for i in $(seq "$drift_reps"); do
        h+=("$(timed --ok=0,2,10 "$bin" diff --ssh-config "$cfg" "$inventory")")
        cp "$work/last.log" "$work/h$n.$i.log"
        an+=("$(timed "${play[@]}")")
        cp "$work/last.log" "$work/a$n.$i.log"
    done
    r[$n,h,s]=$(median "${h[@]}")
    r[$n,a,s]=$(median "${an[@]}")

    hl=$work/h$n.1.log al=$work/a$n.1.log
    # hadeploy: a file finding for haresources under node2's heading; a "between nodes" finding.
    r[$n,h,hares]=$(awk '/^[^ ].*\):$/ {place = $1} place == "node2" && /\[file\] \/etc\/ha.d\/haresources/ {f = 1} END {print f ? "yes" : "no"}' "$hl")
    nodes=$(grep -o 'NODES DISAGREE \[same-[a-z-]*\]' "$hl" | sed 's/.*same-//; s/\]//' | sort -u | paste -sd, || true)
    r[$n,h,nodes]=$([[ -n $nodes ]] && echo "yes ($nodes)" || echo no)
    # Ansible: node2 changed in the haresources task. It compares each host with the playbook
    # only, never hosts with each other.
    r[$n,a,hares]=$(awk '/^TASK \[/ {task = $0} task ~ /^TASK \[haresources\]/ && /^changed: \[node2\]/ {f = 1} END {print f ? "yes" : "no"}' "$al")
    r[$n,a,nodes]="no (no such check)"
    for tool in h a; do
        log=$work/$tool$n.1.log
        leaked=()
        grep -qF -- "$old" "$log" && leaked+=(old)
        grep -qF -- "$new" "$log" && leaked+=(new)
        r[$n,$tool,secret]=$( ((${#leaked[@]})) && (IFS=+; echo "yes (${leaked[*]})") || echo no)
    done
    {
        echo "drift $n: hadeploy diff ${h[*]} / ansible ${an[*]}"
        echo "drift $n: hadeploy found:"
        grep -o '^  [A-Z ]* \[[a-z-]*\] [^:]*' "$hl" | sed 's/^/    /' || true
        echo "drift $n: ansible changed:"
        awk '/^TASK \[/ {task = $0} /^changed: / {print "    " task " " $2}' "$al"
    } >&2
    down "$name"
done

printf '\n%-6s %-9s %12s %9s %9s %12s %14s\n' hosts clusters "no-op apply" diff status \
    "diff/apply" "status/apply"
for n in "${sizes[@]}"; do
    awk -v n="$n" -v c="${t[$n,clusters]}" -v a="${t[$n,apply]}" -v d="${t[$n,diff]}" \
        -v s="${t[$n,status]}" \
        'BEGIN {printf "%-6s %-9s %12.3f %9.3f %9.3f %12.2f %14.2f\n", n, c, a, d, s, d / a, s / a}'
done
if ((${#sizes[@]} > 1)); then
    printf '\ncost per added host, ms\n%-10s %12s %9s %9s\n' hosts "no-op apply" diff status
    for ((i = 1; i < ${#sizes[@]}; i++)); do
        p=${sizes[i - 1]} n=${sizes[i]}
        awk -v p="$p" -v n="$n" -v a0="${t[$p,apply]}" -v a1="${t[$n,apply]}" \
            -v d0="${t[$p,diff]}" -v d1="${t[$n,diff]}" -v s0="${t[$p,status]}" -v s1="${t[$n,status]}" \
            'BEGIN {k = 1000 / (n - p); printf "%-10s %12.1f %9.1f %9.1f\n", p "->" n, (a1 - a0) * k, (d1 - d0) * k, (s1 - s0) * k}'
    done
fi
if ((${#drift_sizes[@]})); then
    printf '\nsame drift (haresources edited on node2, authkeys secret changed on node1), median of %d\n' "$drift_reps"
    printf '%-6s %-26s %9s %12s %22s %14s\n' hosts tool seconds haresources "node vs node" "secret shown"
    for n in "${drift_sizes[@]}"; do
        for tool in h a; do
            label="hadeploy diff"
            [[ $tool == a ]] && label="ansible --check --diff"
            printf '%-6s %-26s %9.2f %12s %22s %14s\n' "$n" "$label" "${r[$n,$tool,s]}" \
                "${r[$n,$tool,hares]}" "${r[$n,$tool,nodes]}" "${r[$n,$tool,secret]}"
        done
        awk -v h="${r[$n,h,s]}" -v a="${r[$n,a,s]}" -v n="$n" \
            'BEGIN {printf "%-6s %-26s %8.1fx\n", n, "ansible / hadeploy", a / h}'
    done
fi
