#!/usr/bin/env bash
# The README demo: build hadeploy, bring up a 2-node lab in Docker (building the node image on
# first use), then validate, render and apply the lab's inventory. Rerunnable; `hadeploy lab
# down` removes the lab.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release -q
bin=target/release/hadeploy
inventory=$("$bin" lab up --nodes 2 | tail -n 1)
echo "== lab inventory: $inventory"
"$bin" check "$inventory"
out=$(mktemp -d)
"$bin" render "$inventory" --out "$out" >/dev/null
echo "== rendered /etc/ha.d/ha.cf for node1"
cat "$out/node1/etc/ha.d/ha.cf"
echo "== rendered /etc/ha.d/haresources (identical on every node)"
cat "$out/node1/etc/ha.d/haresources"
"$bin" lab status
