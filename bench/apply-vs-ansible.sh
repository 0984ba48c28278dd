#!/usr/bin/env bash
# `hadeploy apply` next to `ansible-playbook` doing the same job (bench/ansible/playbook.yml),
# on fresh lab nodes, 2 and 10 hosts, in one run: first run, no-op run and check mode, in
# seconds, with Ansible's pipelining and ControlPersist on and forks = hosts. Ansible is
# installed into a throw-away venv from PyPI; it is not a dependency of hadeploy.
# Rerun: bash bench/apply-vs-ansible.sh [sizes...]   (default: 2 10)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-2 10}")
read -r -a sizes <<<"${sizes[*]}"
cargo build --release -q
bin=$PWD/target/release/hadeploy
work=$(mktemp -d)
labs=()
cleanup() {
    for l in "${labs[@]}"; do "$bin" lab down --name "$l" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
echo "installing ansible-core into a venv…" >&2
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q ansible-core >&2
export PATH="$work/venv/bin:$PATH"
export AGENT_BINARY=$PWD/target/release/hadeploy-agent
export BENCH_SECRET=$(head -c 30 /dev/urandom | base64)

# Runs a command, prints its wall time in seconds; a failure stops the bench with its output.
timed() {
    local log=$work/last.log s e
    s=$(date +%s%N)
    if ! "$@" >"$log" 2>&1; then
        echo "failed: $*" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    e=$(date +%s%N)
    awk -v n=$((e - s)) 'BEGIN {printf "%.2f", n / 1e9}'
}

up() { # lab name, size -> inventory path (called in $(…): the caller records the name)
    "$bin" lab up --name "$1" --nodes "$2" | tail -n 1
}

declare -A t
for n in "${sizes[@]}"; do
    labs+=("bench-h$n")
    inventory=$(up "bench-h$n" "$n")
    cfg=$(dirname "$inventory")/ssh_config
    t[h,$n,first]=$(timed "$bin" apply --ssh-config "$cfg" "$inventory")
    t[h,$n,noop]=$(timed "$bin" apply --ssh-config "$cfg" "$inventory")
    t[h,$n,check]=$(timed "$bin" apply --check --ssh-config "$cfg" "$inventory")
    "$bin" lab down --name "bench-h$n" >/dev/null

    labs+=("bench-a$n")
    inventory=$(up "bench-a$n" "$n")
    cfg=$(dirname "$inventory")/ssh_config
    export ANSIBLE_PIPELINING=True ANSIBLE_FORKS=$n ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
    export ANSIBLE_SSH_ARGS="-F $cfg -o ControlMaster=auto -o ControlPersist=60s"
    export ANSIBLE_CONTROL_PATH_DIR=$work/cp ANSIBLE_HOST_KEY_CHECKING=True
    play=(ansible-playbook -i "$inventory" bench/ansible/playbook.yml)
    t[a,$n,first]=$(timed "${play[@]}")
    t[a,$n,noop]=$(timed "${play[@]}")
    t[a,$n,check]=$(timed "${play[@]}" --check)
    "$bin" lab down --name "bench-a$n" >/dev/null
done

printf '\n%-6s %-7s %12s %12s %10s\n' hosts run "hadeploy s" "ansible s" "speed-up"
for n in "${sizes[@]}"; do
    for run in first noop check; do
        awk -v n="$n" -v r="$run" -v h="${t[h,$n,$run]}" -v a="${t[a,$n,$run]}" \
            'BEGIN {printf "%-6s %-7s %12.2f %12.2f %9.1fx\n", n, r, h, a, a / h}'
    done
done
