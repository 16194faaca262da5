#!/usr/bin/env bash
# End-to-end self test of the usrsctp peer and the two-namespace lab:
# a multihomed association, the primary path cut and restored, captures on
# both veths of ns sctpmon-a, then checks with tshark. Optionally writes a
# fixture capture plus a JSON sidecar with what the SCTP stack itself said.
#
# Usage: selftest.sh [--mode raw4|raw6|udp4|udp6|mixed] [--out DIR]
#                    [--fixture PATH_WITHOUT_EXTENSION] [--no-src-fix] [--no-pcapng]
#                    [--rate N] [--size N] [--hb-interval MS] [--rto-min MS]
#                    [--rto-max MS] [--path-max-retrans N] [--settle S]
#
#   raw4   SCTP directly over IPv4 (raw sockets), two IPv4 paths (default)
#   raw6   SCTP directly over IPv6, two IPv6 paths
#   udp4   SCTP over UDP/IPv4 (RFC 6951, port 9899 both ends)
#   udp6   SCTP over UDP/IPv6
#   mixed  raw, path 1 IPv4 + path 2 IPv6 in ONE association
#
# Needs root, gcc, libusrsctp-dev, tcpdump, tshark (mergecap), nftables, python3.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../../.." && pwd)
LAB="$SCRIPT_DIR/lab.sh"

MODE=raw4
OUT=""
FIXTURE=""
SRC_FIX=1
WANT_PCAPNG=1
RATE=20
SIZE=64
HB=200
RTO_MIN=100
RTO_MAX=400
PMR=2
SETTLE=2
PORT=5000
UDP_PORT=9899

while [ $# -gt 0 ]; do
	case "$1" in
		--mode) MODE=$2; shift 2;;
		--out) OUT=$2; shift 2;;
		--fixture) FIXTURE=$2; shift 2;;
		--no-src-fix) SRC_FIX=0; shift;;
		--no-pcapng) WANT_PCAPNG=0; shift;;
		--rate) RATE=$2; shift 2;;
		--size) SIZE=$2; shift 2;;
		--hb-interval) HB=$2; shift 2;;
		--rto-min) RTO_MIN=$2; shift 2;;
		--rto-max) RTO_MAX=$2; shift 2;;
		--path-max-retrans) PMR=$2; shift 2;;
		--settle) SETTLE=$2; shift 2;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0;;
		*) echo "selftest: unknown argument $1" >&2; exit 1;;
	esac
done

case "$MODE" in
	raw4) A_ADDRS=10.201.1.1,10.201.2.1; B_ADDRS=10.201.1.2,10.201.2.2; ENCAP=();;
	raw6) A_ADDRS=fd00:201:1::1,fd00:201:2::1; B_ADDRS=fd00:201:1::2,fd00:201:2::2; ENCAP=();;
	udp4) A_ADDRS=10.201.1.1,10.201.2.1; B_ADDRS=10.201.1.2,10.201.2.2; ENCAP=(--udp-encap "$UDP_PORT:$UDP_PORT");;
	udp6) A_ADDRS=fd00:201:1::1,fd00:201:2::1; B_ADDRS=fd00:201:1::2,fd00:201:2::2; ENCAP=(--udp-encap "$UDP_PORT:$UDP_PORT");;
	mixed) A_ADDRS=10.201.1.1,fd00:201:2::1; B_ADDRS=10.201.1.2,fd00:201:2::2; ENCAP=();;
	*) echo "selftest: unknown mode $MODE" >&2; exit 1;;
esac

[ "$(id -u)" -eq 0 ] || { echo "selftest: must run as root" >&2; exit 1; }
for t in gcc tcpdump tshark mergecap nft python3; do
	command -v $t >/dev/null || { echo "selftest: $t missing (apt-get install -y gcc libusrsctp-dev tcpdump tshark nftables python3)" >&2; exit 1; }
done

[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/sctpmon-selftest.XXXXXX)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PEER="$OUT/sctp_peer"
log() { printf '%s selftest: %s\n' "$(date +%T.%3N)" "$*"; }
now() { date +%s.%6N; }

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	sleep 0.3
	for p in "${PIDS[@]}"; do
		kill -KILL "$p" 2>/dev/null || true
	done
	"$LAB" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$LAB" build "$PEER"
SCTPMON_SRC_FIX=$SRC_FIX "$LAB" up

# captures on both veths of ns a
for p in 1 2; do
	ip netns exec sctpmon-a tcpdump -i "smA$p" --immediate-mode -U -s 0 -w "$OUT/a$p.pcap" 2>"$OUT/tcpdump$p.err" &
	PIDS+=($!)
	eval "TD$p=$!"
done
# the same two interfaces into one pcapng (one interface block per veth, with
# names), for readers that must handle several interfaces in one file
DC=""
if command -v dumpcap >/dev/null; then
	ip netns exec sctpmon-a dumpcap -q -i smA1 -i smA2 -w "$OUT/both.pcapng" 2>"$OUT/dumpcap.err" &
	DC=$!; PIDS+=($DC)
fi
for _ in $(seq 1 50); do
	grep -q listening "$OUT/tcpdump1.err" 2>/dev/null && grep -q listening "$OUT/tcpdump2.err" 2>/dev/null && break
	sleep 0.1
done
grep -q listening "$OUT/tcpdump1.err" && grep -q listening "$OUT/tcpdump2.err" || { echo "selftest: tcpdump did not start" >&2; cat "$OUT"/tcpdump*.err >&2; exit 1; }

COMMON=(--port "$PORT" --hb-interval "$HB" --rto-min "$RTO_MIN" --rto-max "$RTO_MAX"
        --path-max-retrans "$PMR" --size "$SIZE" --stats-interval 1 "${ENCAP[@]}")
ip netns exec sctpmon-b "$PEER" server --bind "$B_ADDRS" --once "${COMMON[@]}" \
	>"$OUT/server.jsonl" 2>"$OUT/server.err" &
SRV=$!; PIDS+=($SRV)
sleep 0.3
ip netns exec sctpmon-a "$PEER" client --bind "$A_ADDRS" --connect "$B_ADDRS" --rate "$RATE" \
	"${COMMON[@]}" >"$OUT/client.jsonl" 2>"$OUT/client.err" &
CLI=$!; PIDS+=($CLI)

# wait_for FILE REGEX TIMEOUT_S -> prints the first matching line
wait_for() {
	local f=$1 re=$2 t=$3 end line
	end=$(( $(date +%s%N) + ${t%.*} * 1000000000 ))
	while [ "$(date +%s%N)" -lt $end ]; do
		line=$(grep -m1 -E "$re" "$f" 2>/dev/null || true)
		if [ -n "$line" ]; then echo "$line"; return 0; fi
		sleep 0.02
	done
	return 1
}
jget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]] if not isinstance(d[sys.argv[2]], list) else ",".join(d[sys.argv[2]]))' "$1" "$2"; }

UP_C=$(wait_for "$OUT/client.jsonl" '"ev":"up"' 10) || { echo "selftest: client never up" >&2; cat "$OUT/client.err" "$OUT/server.err" >&2; exit 1; }
UP_S=$(wait_for "$OUT/server.jsonl" '"ev":"up"' 10) || { echo "selftest: server never up" >&2; cat "$OUT/server.err" >&2; exit 1; }
log "client up: laddrs=$(jget "$UP_C" laddrs) paddrs=$(jget "$UP_C" paddrs) primary=$(jget "$UP_C" primary)"
log "server up: laddrs=$(jget "$UP_S" laddrs) paddrs=$(jget "$UP_S" paddrs) primary=$(jget "$UP_S" primary)"
PRIMARY=$(jget "$UP_C" primary)
case "$PRIMARY" in
	10.201.1.*|fd00:201:1::*) CUT=1;;
	10.201.2.*|fd00:201:2::*) CUT=2;;
	*) echo "selftest: unexpected primary $PRIMARY" >&2; exit 1;;
esac
SRV_PRIMARY=$(jget "$UP_S" primary)
# Is the server's primary on the path we cut? Normally yes (the INIT came in
# on it). Without the source rewrite (raw IPv4) the INIT can carry the other
# path's source address, the server then takes THAT as its primary and its
# direction does not fail over at all.
case "$SRV_PRIMARY" in
	10.201.$CUT.*|fd00:201:$CUT::*) SRV_CUT=1;;
	*) SRV_CUT=0; log "server primary $SRV_PRIMARY is not on path $CUT: only the client direction fails over";;
esac

sleep "$SETTLE"
T_CUT=$(now)
"$LAB" cut "$CUT"
log "cut path $CUT (client primary $PRIMARY) at $T_CUT"
L=$(wait_for "$OUT/client.jsonl" "\"ev\":\"peer_addr_change\",\"addr\":\"$PRIMARY\",\"state\":\"ADDR_UNREACHABLE\"" 20) \
	|| { echo "selftest: client never reported $PRIMARY unreachable" >&2; exit 1; }
T_UNREACH_C=$(jget "$L" ts)
log "ADDR_UNREACHABLE (client) $(python3 -c "print(f'{$T_UNREACH_C-$T_CUT:.3f}')") s after the cut"
if [ "$SRV_CUT" = 1 ]; then
	L=$(wait_for "$OUT/server.jsonl" "\"ev\":\"peer_addr_change\",\"addr\":\"$SRV_PRIMARY\",\"state\":\"ADDR_UNREACHABLE\"" 20) \
		|| { echo "selftest: server never reported $SRV_PRIMARY unreachable" >&2; exit 1; }
	log "ADDR_UNREACHABLE (server) $(python3 -c "print(f'{$(jget "$L" ts)-$T_CUT:.3f}')") s after the cut"
fi
sleep "$SETTLE"
T_RESTORE=$(now)
"$LAB" restore "$CUT"
log "restored path $CUT at $T_RESTORE"
L=$(wait_for "$OUT/client.jsonl" "\"ev\":\"peer_addr_change\",\"addr\":\"$PRIMARY\",\"state\":\"ADDR_AVAILABLE\"" 20) \
	|| { echo "selftest: client never reported $PRIMARY available again" >&2; exit 1; }
log "ADDR_AVAILABLE (client) $(python3 -c "print(f'{$(jget "$L" ts)-$T_RESTORE:.3f}')") s after the restore"
if [ "$SRV_CUT" = 1 ]; then
	wait_for "$OUT/server.jsonl" "\"ev\":\"peer_addr_change\",\"addr\":\"$SRV_PRIMARY\",\"state\":\"ADDR_AVAILABLE\"" 20 >/dev/null \
		|| { echo "selftest: server never reported $SRV_PRIMARY available again" >&2; exit 1; }
fi
sleep "$SETTLE"

# graceful stop: client SIGTERM -> SHUTDOWN; the server (--once) exits after it
kill -TERM "$CLI"
wait "$CLI" && CRC=0 || CRC=$?
for _ in $(seq 1 50); do kill -0 "$SRV" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$SRV" 2>/dev/null || true
wait "$SRV" && SRC=0 || SRC=$?
log "client exit $CRC, server exit $SRC"
sleep 1 # let tcpdump drain its ring buffer before it is stopped
kill -INT "$TD1" "$TD2" $DC 2>/dev/null || true
wait "$TD1" "$TD2" $DC 2>/dev/null || true
"$LAB" down
PIDS=()

mergecap -F pcap -w "$OUT/merged.pcap" "$OUT/a1.pcap" "$OUT/a2.pcap"

PCAPNG=()
if [ "$WANT_PCAPNG" = 1 ] && [ -n "$DC" ] && [ -s "$OUT/both.pcapng" ]; then
	n1=$(tshark -r "$OUT/merged.pcap" -Y sctp 2>/dev/null | wc -l)
	n2=$(tshark -r "$OUT/both.pcapng" -Y sctp 2>/dev/null | wc -l)
	log "SCTP packets: $n1 in merged.pcap (tcpdump), $n2 in both.pcapng (dumpcap)"
	[ "$n1" = "$n2" ] && PCAPNG=(--pcapng "$OUT/both.pcapng") || log "warning: dumpcap and tcpdump disagree; pcapng not used"
fi

python3 "$SCRIPT_DIR/analyze.py" "${PCAPNG[@]}" --mode "$MODE" --pcap "$OUT/merged.pcap" \
	--client "$OUT/client.jsonl" --server "$OUT/server.jsonl" \
	--cut-path "$CUT" --t-cut "$T_CUT" --t-restore "$T_RESTORE" --src-fix "$SRC_FIX" \
	--udp-port "$UDP_PORT" --server-cut "$SRV_CUT" --summary "$OUT/summary.json" \
	${FIXTURE:+--fixture "$FIXTURE"} || { echo "selftest: FAILED (outputs in $OUT)" >&2; exit 1; }
[ "$CRC" -eq 0 ] && [ "$SRC" -eq 0 ] || { echo "selftest: FAILED: peer exit codes $CRC/$SRC (outputs in $OUT)" >&2; exit 1; }
log "PASS ($MODE). Outputs in $OUT"
