#!/usr/bin/env bash
# Makes the two fixtures of tests/replay_collision_asconf.rs with the real
# usrsctp stack in the lab's namespaces (lab.sh), captured with tcpdump -i any
# in ns a (Linux cooked capture: both veths, before nftables, so a packet the
# lab drops on input is still on the capture):
#
#   collision: both ends run `sctp_peer client --listen` and connect to each
#     other at once; an nftables drop on input in both namespaces for the
#     first 0.3 s eats both first INITs, so each end is in COOKIE-WAIT when the
#     other's retransmitted INIT arrives: an INIT collision (RFC 9260 5.2.1)
#     that must end in ONE association.
#   asconf: the client binds 10.201.1.1 only, then (seconds after COMM_UP,
#     DATA flowing at 20/s) adds 10.201.2.1 (ASCONF Add IP), asks the server
#     to send to it (Set Primary Address), deletes it again (Delete IP; so
#     the server's DATA moves back to 10.201.1.1). Deleting 10.201.1.1
#     instead made usrsctp 0.9.5 drop the association on both ends at once
#     (COMM_LOST right after the bindx).
#
# Usage (root): make_collide_asconf.sh OUTDIR   -> OUTDIR/{usrsctp-init-collision,usrsctp-asconf}.pcap
# and the peers' JSON Lines next to them. Run under /tmp/sctpmon-kernel.lock
# with the lab's default names, or give private ones (the fixtures were made
# with SCTPMON_NS_A=collide-a SCTPMON_NS_B=collide-b). ONLY=collision or
# ONLY=asconf makes one of the two.
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../../.." && pwd)
LAB="$SCRIPT_DIR/lab.sh"
OUT=${1:?usage: make_collide_asconf.sh OUTDIR}
PEER=${SCTP_PEER:-$REPO_ROOT/target/sctp-peer/sctp_peer}
[ -x "$PEER" ] || "$LAB" build "$PEER"
mkdir -p "$OUT"
NS_A=${SCTPMON_NS_A:-sctpmon-a}
NS_B=${SCTPMON_NS_B:-sctpmon-b}
OPTS=(--port 5000 --hb-interval 500 --rto-min 100 --rto-max 400 --path-max-retrans 2 --stats-interval 0 --size 64)

capture_start() { # $1 = file
	ip netns exec "$NS_A" tcpdump -i any -s 1500 -U --immediate-mode -w "$1" sctp 2>"$1.tcpdump.err" &
	TCPDUMP=$!
	sleep 1
}
capture_stop() {
	sleep 1
	kill -INT "$TCPDUMP"; wait "$TCPDUMP" || true
}
trap '"$LAB" down >/dev/null 2>&1 || true' EXIT

if [ "${ONLY:-collision}" = collision ]; then
# --- INIT collision ---
"$LAB" up >/dev/null
capture_start "$OUT/usrsctp-init-collision.pcap"
for ns in "$NS_A" "$NS_B"; do
	ip netns exec "$ns" nft -f - <<'NFT'
table inet collide {
  chain in {
    type filter hook prerouting priority -300; policy accept;
    meta l4proto sctp counter drop
  }
}
NFT
done
ip netns exec "$NS_B" "$PEER" client --listen --bind 10.201.1.2,10.201.2.2 --connect 10.201.1.1,10.201.2.1 \
	--rate 10 --duration 3 "${OPTS[@]}" >"$OUT/collision-b.jsonl" 2>"$OUT/collision-b.err" &
PB=$!
ip netns exec "$NS_A" "$PEER" client --listen --bind 10.201.1.1,10.201.2.1 --connect 10.201.1.2,10.201.2.2 \
	--rate 10 --duration 2 "${OPTS[@]}" >"$OUT/collision-a.jsonl" 2>"$OUT/collision-a.err" &
PA=$!
sleep 0.3
for ns in "$NS_A" "$NS_B"; do ip netns exec "$ns" nft delete table inet collide; done
wait "$PA" || echo "collision: a exited $?"
wait "$PB" || echo "collision: b exited $?"
capture_stop
fi

[ "${ONLY:-asconf}" = asconf ] || exit 0
# --- ADD-IP / ASCONF ---
"$LAB" up >/dev/null
capture_start "$OUT/usrsctp-asconf.pcap"
ip netns exec "$NS_B" "$PEER" server --once --bind 10.201.1.2,10.201.2.2 "${OPTS[@]}" \
	>"$OUT/asconf-server.jsonl" 2>"$OUT/asconf-server.err" &
PS=$!
sleep 0.3
ip netns exec "$NS_A" "$PEER" client --bind 10.201.1.1 --connect 10.201.1.2,10.201.2.2 --rate 20 --duration 5 \
	--at 1:add:10.201.2.1 --at 2:peer-primary:10.201.2.1 --at 3:del:10.201.2.1 "${OPTS[@]}" \
	>"$OUT/asconf-client.jsonl" 2>"$OUT/asconf-client.err" || echo "asconf: client exited $?"
for _ in $(seq 1 50); do kill -0 "$PS" 2>/dev/null || break; sleep 0.1; done
kill "$PS" 2>/dev/null || true # no association (client failed): do not wait forever
wait "$PS" || echo "asconf: server exited $?"
capture_stop
