#!/usr/bin/env bash
# One fidelity run on usrsctp: the lab (lab.sh) with a multihomed association,
# the agent live on the server's two interfaces (ns b: smB1, smB2), a capture
# of the same interfaces, a failure of path 1 (or a primary change), and the
# artifact directory the fidelity comparer reads:
#
#   OUT/client.jsonl OUT/server.jsonl  the peers' own view (sctp_peer.c)
#   OUT/agent.jsonl                    the live agent's JSON events (every
#                                      instance of the run, appended)
#   OUT/agent.log                      the agent's log
#   OUT/capture.pcap                   tcpdump -i any in ns b (Linux cooked
#                                      SLL2: the interface of every packet;
#                                      ns b has only lo, smB1 and smB2), so a
#                                      link going down does not end it
#   OUT/client-sent.pcap               every SCTP packet the client's stack
#   OUT/server-sent.pcap               handed to IP (nflog at postrouting in
#                                      its namespace), in order; its times are
#                                      when tcpdump read them, not when they
#                                      were sent. The comparer takes the order
#                                      of first transmissions from these (a
#                                      link that is down drops what is sent
#                                      into it before any capture sees it)
#   OUT/meta.json                      stack, family, encap, cut, pf, cut_ts,
#                                      restore_ts, ifaces, and agents (start,
#                                      attached, end of each agent instance),
#                                      capture_dropped / sent_dropped (packets
#                                      the captures lost: then the truth and
#                                      the replay are incomplete), agent_opts
#
# Usage (root): fidelity_run.sh OUT MODE CUT
#   MODE  raw4 | udp4 | raw6 | udp6
#   CUT   blackhole        path 1 dropped on input in both namespaces for
#                          CUT_SECS (packets cross the veths, captured, and
#                          seen by the agent; the stacks never get them)
#         linkdown         `ip link set down` of smB1 for CUT_SECS
#         asconf           no failure: the client sets its primary to the
#                          server's path-2 address (SCTP_PRIMARY_ADDR), then
#                          asks the server (ASCONF Set Primary) to send to the
#                          client's path-2 address
#         midflight-start  blackhole, the agent started after the handshake
#         midflight-kill   blackhole, the agent SIGKILLed KILL_AFTER s into
#                          the cut and started again RESTART_AFTER s later
# Environment: SCTP_MONITOR (the agent binary, default <repo>/target/debug/
# sctp-monitor), SCTP_PEER (default <repo>/target/sctp-peer/sctp_peer, built
# if missing), SCTPMON_NS_A / SCTPMON_NS_B (default fid-a / fid-b),
# AGENT_OPTS (more `run` options, default none: the agent's defaults),
# CUT_SECS (4), HB_MS (500), RTO_MIN_MS (100), RTO_MAX_MS (500), PMR (2),
# RATE (10 messages/s), KILL_AFTER (1.3), RESTART_AFTER (1.5).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../../.." && pwd)
LAB="$SCRIPT_DIR/lab.sh"
OUT=${1:?usage: fidelity_run.sh OUT MODE CUT}
MODE=${2:?usage: fidelity_run.sh OUT MODE CUT}
CUT=${3:?usage: fidelity_run.sh OUT MODE CUT}
export SCTPMON_NS_A=${SCTPMON_NS_A:-fid-a}
export SCTPMON_NS_B=${SCTPMON_NS_B:-fid-b}
NS_B=$SCTPMON_NS_B
BIN=${SCTP_MONITOR:-$REPO_ROOT/target/debug/sctp-monitor}
export SCTP_PEER=${SCTP_PEER:-$REPO_ROOT/target/sctp-peer/sctp_peer}
CUT_SECS=${CUT_SECS:-4}
HB_MS=${HB_MS:-500}
RTO_MIN_MS=${RTO_MIN_MS:-100}
RTO_MAX_MS=${RTO_MAX_MS:-500}
PMR=${PMR:-2}
RATE=${RATE:-10}
KILL_AFTER=${KILL_AFTER:-1.3}
RESTART_AFTER=${RESTART_AFTER:-1.5}
read -r -a AGENT_EXTRA <<<"${AGENT_OPTS:-}"

say() { echo "fidelity_run: $*" >&2; }
die() { echo "fidelity_run: error: $*" >&2; exit 1; }
now() { date +%s.%N | cut -c1-17; }

case "$MODE" in
	raw4) FAMILY=ipv4 ENCAP=raw C2=10.201.2.1 S2=10.201.2.2;;
	udp4) FAMILY=ipv4 ENCAP=udp C2=10.201.2.1 S2=10.201.2.2;;
	raw6) FAMILY=ipv6 ENCAP=raw C2=fd00:201:2::1 S2=fd00:201:2::2;;
	udp6) FAMILY=ipv6 ENCAP=udp C2=fd00:201:2::1 S2=fd00:201:2::2;;
	*) die "MODE must be raw4, udp4, raw6 or udp6";;
esac
case "$CUT" in
	blackhole|linkdown|asconf|midflight-start|midflight-kill) ;;
	*) die "CUT must be blackhole, linkdown, asconf, midflight-start or midflight-kill";;
esac
[ -x "$BIN" ] || die "no agent binary $BIN (cargo build -p sctp-monitor, or set SCTP_MONITOR)"
[ -x "$SCTP_PEER" ] || "$LAB" build "$SCTP_PEER" >&2

rm -rf "$OUT"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
: >"$OUT/agent.jsonl"
: >"$OUT/agent.log"

TCPDUMP= AGENT= AGENTS=() SENT=()
cleanup() {
	[ -n "$AGENT" ] && kill -KILL "$AGENT" 2>/dev/null || true
	[ -n "$TCPDUMP" ] && kill -INT "$TCPDUMP" 2>/dev/null || true
	[ ${#SENT[@]} -gt 0 ] && kill -INT "${SENT[@]}" 2>/dev/null || true
	"$LAB" stop "$OUT" >/dev/null 2>&1 || true
	"$LAB" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Blackhole: input drops of path 1 in both namespaces, so what each stack
# sends on path 1 still leaves it, crosses the veth and is seen by the capture
# and the agent on the way (the stacks only never receive it).
blackhole() {
	local ns
	for ns in "$SCTPMON_NS_A" "$SCTPMON_NS_B"; do
		ip netns exec "$ns" nft -f - <<EOF
table inet fidelity_cut {
  chain in {
    type filter hook prerouting priority -300; policy accept;
    iifname { "smA1", "smB1" } counter drop
  }
}
EOF
	done
}
unblackhole() {
	local ns
	for ns in "$SCTPMON_NS_A" "$SCTPMON_NS_B"; do
		ip netns exec "$ns" nft delete table inet fidelity_cut
	done
}

# The agent in ns b, on both server interfaces; returns when it attached to
# both. One "agents" entry per instance in meta.json.
agent_start() {
	local start attached
	start=$(now)
	echo "=== agent start $start" >>"$OUT/agent.log"
	# The agent is told the stacks' Path.Max.Retrans, as the README asks.
	ip netns exec "$NS_B" "$BIN" run -i smB1 -i smB2 --metrics off --events "$OUT/agent.jsonl" \
		--path-max-retrans "$PMR" "${AGENT_EXTRA[@]}" </dev/null >/dev/null 2>>"$OUT/agent.log" &
	AGENT=$!
	for _ in $(seq 1 300); do
		if [ "$(grep -c -E 'attached to smB[12] ' <(sed -n "/=== agent start $start/,\$p" "$OUT/agent.log"))" -ge 2 ]; then
			attached=$(now)
			AGENTS+=("{\"start_ts\":$start,\"attached_ts\":$attached")
			return 0
		fi
		kill -0 "$AGENT" 2>/dev/null || die "the agent exited; see $OUT/agent.log"
		sleep 0.05
	done
	die "the agent did not attach to smB1 and smB2 within 15 s; see $OUT/agent.log"
}
agent_end() { # $1 = TERM | KILL
	local last=$((${#AGENTS[@]} - 1)) end
	kill "-$1" "$AGENT"
	end=$(now)
	wait "$AGENT" 2>/dev/null || true
	AGENTS[$last]="${AGENTS[$last]},\"end_ts\":$end,\"killed\":$([ "$1" = KILL ] && echo true || echo false)}"
	AGENT=
}

"$LAB" up >/dev/null
# What each stack sends, in order, after the lab's source rewrite (priority 100)
for side in client server; do
	ns=$SCTPMON_NS_A
	[ $side = server ] && ns=$SCTPMON_NS_B
	ip netns exec "$ns" nft -f - <<EOF
table inet fidelity_sent {
  chain post {
    type filter hook postrouting priority 200; policy accept;
    meta l4proto sctp log group 5
    udp dport 9899 log group 5
  }
}
EOF
	# (nflog: libpcap's defaults; a snap length or buffer size set here lost
	# a third of the packets)
	ip netns exec "$ns" tcpdump -i nflog:5 -U -w "$OUT/$side-sent.pcap" 2>"$OUT/$side-sent.log" &
	SENT+=($!)
done
# A snap length of a packet (not tcpdump's default 256 KiB) and a 16 MiB
# buffer: immediate mode gives a ring of frames of the snap length, and a
# ring of eight frames drops the bursts of a failover.
ip netns exec "$NS_B" tcpdump -i any -y LINUX_SLL2 -s 2048 -B 16384 -U --immediate-mode -w "$OUT/capture.pcap" \
	2>"$OUT/tcpdump.log" &
TCPDUMP=$!
for _ in $(seq 1 100); do grep -q 'listening on' "$OUT/tcpdump.log" && break; sleep 0.05; done
grep -q 'listening on' "$OUT/tcpdump.log" || die "tcpdump did not start: $(cat "$OUT/tcpdump.log")"
for side in client server; do
	for _ in $(seq 1 100); do grep -q 'listening on' "$OUT/$side-sent.log" && break; sleep 0.05; done
	grep -q 'listening on' "$OUT/$side-sent.log" || die "tcpdump nflog did not start: $(cat "$OUT/$side-sent.log")"
done

[ "$CUT" = midflight-start ] || agent_start

CLIENT_OPTS=(--rate "$RATE")
[ "$CUT" = asconf ] && CLIENT_OPTS+=(--at "2:primary:$S2" --at "5:peer-primary:$C2")
"$LAB" start "$MODE" "$OUT" --hb-interval "$HB_MS" --rto-min "$RTO_MIN_MS" --rto-max "$RTO_MAX_MS" \
	--path-max-retrans "$PMR" --stats-interval 0.25 --client "${CLIENT_OPTS[@]}" >/dev/null
say "$MODE $CUT: association up"
sleep 2
if [ "$CUT" = midflight-start ]; then
	agent_start
	sleep 1.5
fi

CUT_TS=null RESTORE_TS=null
case "$CUT" in
	blackhole|midflight-start|midflight-kill)
		blackhole
		CUT_TS=$(now)
		if [ "$CUT" = midflight-kill ]; then
			sleep "$KILL_AFTER"
			agent_end KILL
			sleep "$RESTART_AFTER"
			agent_start
			# the rest of the cut, if any
			python3 -c "import time,sys; t=$CUT_TS+$CUT_SECS-time.time(); time.sleep(max(t,0))"
		else
			sleep "$CUT_SECS"
		fi
		unblackhole
		RESTORE_TS=$(now);;
	linkdown)
		"$LAB" linkdown 1 b >/dev/null
		CUT_TS=$(now)
		sleep "$CUT_SECS"
		"$LAB" linkup 1 b >/dev/null
		RESTORE_TS=$(now);;
	asconf)
		# the two primary changes happen at +2 s and +5 s of the client's
		# sending; their times are the peers' set_primary / asconf_request lines
		sleep 5.5
		CUT_TS=$(grep -m1 '"ev":"set_primary"' "$OUT/client.jsonl" | sed 's/.*"ts":\([0-9.]*\).*/\1/')
		RESTORE_TS=$(grep -m1 '"ev":"asconf_request"' "$OUT/client.jsonl" | sed 's/.*"ts":\([0-9.]*\).*/\1/')
		[ -n "$CUT_TS" ] && [ -n "$RESTORE_TS" ] || die "the client did not change primaries; see $OUT/client.jsonl";;
esac
say "$MODE $CUT: cut $CUT_TS restore $RESTORE_TS"
sleep 4

"$LAB" stop "$OUT" >/dev/null
sleep 0.5
agent_end TERM
kill -INT "$TCPDUMP" "${SENT[@]}"
wait "$TCPDUMP" "${SENT[@]}" 2>/dev/null || true
TCPDUMP= SENT=()

ifaces='["smB1","smB2"]'
agents=$(IFS=,; echo "[${AGENTS[*]}]")
# packets the captures lost (tcpdump's count when it stopped)
dropped() { sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel$/\1/p' "$1" | head -1; }
cap_drop=$(dropped "$OUT/tcpdump.log")
sent_drop=$(( $(dropped "$OUT/client-sent.log") + $(dropped "$OUT/server-sent.log") ))
cat >"$OUT/meta.json" <<EOF
{"stack":"usrsctp","family":"$FAMILY","encap":"$ENCAP","cut":"$CUT","pf":null,"cut_ts":$CUT_TS,"restore_ts":$RESTORE_TS,"ifaces":$ifaces,"cut_ifaces":["smB1"],"hb_interval_ms":$HB_MS,"path_max_retrans":$PMR,"rto_min_ms":$RTO_MIN_MS,"rto_max_ms":$RTO_MAX_MS,"agents":$agents,"capture_dropped":${cap_drop:-null},"sent_dropped":$sent_drop,"agent_opts":"${AGENT_OPTS:-}"}
EOF
say "$MODE $CUT: artifacts in $OUT"
