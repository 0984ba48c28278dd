#!/usr/bin/env bash
# The README demo: build hadeploy, bring up a 2-node lab in Docker (building the node image on
# first use), validate and render the lab's inventory, apply it, then drill a failover and
# write its HTML report. Rerunnable; `hadeploy lab down` removes the lab.
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
ssh_config=$(dirname "$inventory")/ssh_config
echo "== hadeploy apply (a second run would change nothing)"
"$bin" apply --ssh-config "$ssh_config" "$inventory"
sleep 6 # past the agents' start-up grace, so the drill is judged on the configured deadtime
echo "== drill: stop node1's agent, watch the VIP move to node2 and back"
"$bin" drill "$inventory" --ssh-config "$ssh_config" --pull node1 --mode stop --report "$out/drill.html"
echo "== HTML report: $out/drill.html"
