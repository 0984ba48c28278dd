#!/usr/bin/env bash
# How long `hadeploy check` takes on ordinary and hostile inventories (release build), as
# ratios to the 4-node example, measured side by side in one run. Rerun: bash bench/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=target/release/hadeploy
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import sys, os
w = sys.argv[1]
open(f"{w}/deep.yml", "w").write("[" * 100000 + "]" * 100000)
bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98+i)}: &{chr(98+i)} [" + ", ".join([f"*{chr(97+i)}"] * 10) + "]\n" for i in range(12))
open(f"{w}/bomb.yml", "w").write(bomb)
open(f"{w}/big.yml", "w").write("k: v\n" * 2_500_000)
hosts = "".join(f"        n{i}: {{ansible_host: 10.1.{i//250}.{i%250+1}, ha_heartbeat_address: 10.2.{i//250}.{i%250+1}/16}}\n" for i in range(2000))
open(f"{w}/wide.yml", "w").write("all:\n  children:\n    big:\n      hosts:\n" + hosts + "      vars:\n        ha_vips: [10.1.200.1/16]\n        ha_heartbeat_interface: eth1\n")
os.urandom  # binary input
open(f"{w}/binary.yml", "wb").write(os.urandom(1 << 20))
PY
time_of() { # median of 5 runs, milliseconds
    local t=()
    for _ in 1 2 3 4 5; do
        local s e
        s=$(date +%s%N); "$bin" check "$1" >/dev/null 2>&1 || true; e=$(date +%s%N)
        t+=($(( (e - s) / 1000000 )))
    done
    printf '%s\n' "${t[@]}" | sort -n | sed -n 3p
}
base=$(time_of inventories/three-node/inventory.yml)
printf '%-34s %8s %8s\n' input "ms" "x base"
for f in inventories/three-node/inventory.yml "$work/wide.yml" "$work/deep.yml" "$work/bomb.yml" "$work/big.yml" "$work/binary.yml"; do
    ms=$(time_of "$f")
    printf '%-34s %8s %8s\n' "$(basename "$f")" "$ms" "$(python3 -c "print(f'{max($ms,1)/max($base,1):.1f}')")"
done
