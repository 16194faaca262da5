#!/usr/bin/env bash
# Two-namespace multihomed SCTP lab for sctp-monitor.
#
#   ns sctpmon-a                                   ns sctpmon-b
#   smA1 10.201.1.1/24 fd00:201:1::1/64  <-path 1->  smB1 10.201.1.2/24 fd00:201:1::2/64
#   smA2 10.201.2.1/24 fd00:201:2::1/64  <-path 2->  smB2 10.201.2.2/24 fd00:201:2::2/64
#
# Everything lives inside the two namespaces (the veths are created directly
# in them); no address outside them is ever used.  The kernel needs no SCTP:
# the peers run usrsctp (see sctp_peer.c) over raw IP sockets or UDP.
#
# Usage: lab.sh up | down | cut N [a|b] | restore N | linkdown N [a|b] | linkup N [a|b]
#               | status | build [OUTPUT] | start [MODE] [DIR] [PEER_OPTS...] [--client OPTS...]
#               | stop [DIR] | exec a|b CMD...
#
#   up          create (or re-create) namespaces, veths, addresses and the
#               nftables source-address rule; idempotent (tears down first)
#   down        remove everything, including leftovers of a killed run
#               (kills processes still running inside the namespaces)
#   cut N       black-hole path N (1 or 2) with nftables: by default in ns b
#               (drop everything in and out of smBN), so captures and the
#               monitor in ns a still see a's retransmissions and unanswered
#               heartbeats on the dead path.  `cut N a` drops in ns a instead.
#   restore N   remove the drop rules of path N (both namespaces)
#   linkdown N [a|b]  `ip link set down` of path N's veth in ns b (default) or
#               a: the other end loses its carrier, nothing crosses the path,
#               the connected routes go (addresses stay: keep_addr_on_down)
#   linkup N [a|b]    bring it up again and wait for the carrier of both ends
#   status      namespaces, links, addresses, nftables rules, processes
#   build [OUT] compile sctp_peer.c (default OUT: <repo>/target/sctp-peer/sctp_peer)
#   start [MODE] [DIR] [OPTS] [--client COPTS]  run a server (ns b) and client
#               (ns a) sctp_peer in the background, MODE mixed (default: path 1
#               IPv4, path 2 IPv6, one association) | raw4 | raw6 | udp4 | udp6;
#               OPTS go to both peers (after the lab's defaults, so they win),
#               COPTS to the client only (--primary, --at, --rate); their
#               JSON Lines go to DIR (default /tmp/sctpmon-lab)/{client,server}.jsonl;
#               binary from $SCTP_PEER or <repo>/target/sctp-peer/sctp_peer (built if missing)
#   stop [DIR]  graceful stop of the peers started by `start`
#   exec a|b    run a command in ns sctpmon-a / sctpmon-b
#
# Environment: SCTPMON_SRC_FIX=0 skips the source-rewrite rule (to reproduce
# usrsctp's raw-IPv4 wrong-source-address behaviour, issues sctplab/usrsctp
# #151 and #657).
#
# Why nftables drop and not `ip link set down` for the usual cut (`linkdown`
# is there for the runs that test link down itself): link down makes
# tcpdump on that interface exit ("interface went down"), removes the
# connected routes (and, by default, the IPv6 addresses) so sends fail locally
# instead of getting lost in the network, and usrsctp, which read the
# interface list at start-up, never notices either way.  A drop keeps links,
# addresses, routes and captures intact: the path silently black-holes, like a
# failure in the middle of a network, and usrsctp detects it the way SCTP is
# meant to (T3-rtx timeouts and unanswered HEARTBEATs, Path.Max.Retrans).
set -euo pipefail

NS_A=${SCTPMON_NS_A:-sctpmon-a}
NS_B=${SCTPMON_NS_B:-sctpmon-b}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../../.." && pwd)

# path -> interface / addresses
ifa() { echo "smA$1"; }
ifb() { echo "smB$1"; }
v4a() { echo "10.201.$1.1"; }
v4b() { echo "10.201.$1.2"; }
v6a() { echo "fd00:201:$1::1"; }
v6b() { echo "fd00:201:$1::2"; }

say() { echo "lab: $*"; }
die() { echo "lab: error: $*" >&2; exit 1; }

need_root() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, raw sockets)"
	command -v ip >/dev/null || die "iproute2 (ip) not found"
	command -v nft >/dev/null || die "nft not found: apt-get install -y nftables"
}

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }
inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

kill_ns_procs() {
	local ns=$1 pids
	ns_exists "$ns" || return 0
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[ -n "$pids" ] || return 0
	say "stopping processes in $ns: $(echo $pids)"
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null || true
	for _ in $(seq 1 30); do
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -z "$pids" ] && return 0
		sleep 0.1
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null || true
	sleep 0.2
}

cmd_down() {
	need_root
	local did=0 ns l
	for ns in "$NS_A" "$NS_B"; do
		if ns_exists "$ns"; then
			kill_ns_procs "$ns"
			ip netns del "$ns"
			say "deleted namespace $ns (and its veths)"
			did=1
		fi
	done
	# leftovers in the root namespace (never created there by us, but a
	# half-finished manual run might have): only our exact names
	for l in smA1 smA2 smB1 smB2; do
		if ip link show "$l" >/dev/null 2>&1; then
			ip link del "$l" 2>/dev/null || true
			say "deleted stray link $l in the root namespace"
			did=1
		fi
	done
	[ $did -eq 1 ] || say "nothing to remove (already down)"
}

src_fix_rules() {
	# $1 = a|b. Stateless: rewrite the IPv4 source of SCTP (raw mode) packets
	# to the address of the outgoing interface. usrsctp's raw IPv4 output does
	# not choose the source by route, so without this a packet to path 2 can
	# carry the path-1 address. UDP encapsulation and IPv6 are not affected
	# (the kernel chooses their source address).
	local side=$1 p addr
	echo "table ip sctpmon_src {"
	echo "  chain post {"
	echo "    type filter hook postrouting priority 100; policy accept;"
	for p in 1 2; do
		if [ "$side" = a ]; then addr=$(v4a $p); else addr=$(v4b $p); fi
		echo "    oifname \"sm${side^^}$p\" ip protocol sctp ip saddr != $addr ip saddr set $addr counter"
	done
	echo "  }"
	echo "}"
}

wait_up() {
	# $1 $2 = ns and interface of one end, $3 $4 of the other: both UP
	# within 5 s
	for _ in $(seq 1 100); do
		if inns "$1" ip -br link show "$2" | grep -qw UP &&
		   inns "$3" ip -br link show "$4" | grep -qw UP; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

cmd_up() {
	need_root
	if ns_exists "$NS_A" || ns_exists "$NS_B"; then
		say "previous lab found: tearing it down first"
		cmd_down
	fi
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	say "created namespaces $NS_A $NS_B"
	local ns
	for ns in "$NS_A" "$NS_B"; do
		inns "$ns" ip link set lo up
		inns "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
			net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
			net.ipv6.conf.all.keep_addr_on_down=1 net.ipv6.conf.default.keep_addr_on_down=1 \
			net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 >/dev/null
	done
	local p
	for p in 1 2; do
		ip link add "$(ifa $p)" netns "$NS_A" type veth peer name "$(ifb $p)" netns "$NS_B"
		inns "$NS_A" ip addr add "$(v4a $p)/24" dev "$(ifa $p)"
		inns "$NS_A" ip -6 addr add "$(v6a $p)/64" dev "$(ifa $p)" nodad
		inns "$NS_B" ip addr add "$(v4b $p)/24" dev "$(ifb $p)"
		inns "$NS_B" ip -6 addr add "$(v6b $p)/64" dev "$(ifb $p)" nodad
		inns "$NS_A" ip link set "$(ifa $p)" up
		inns "$NS_B" ip link set "$(ifb $p)" up
		say "path $p: $NS_A/$(ifa $p) $(v4a $p) $(v6a $p)  <->  $NS_B/$(ifb $p) $(v4b $p) $(v6b $p)"
	done
	if [ "${SCTPMON_SRC_FIX:-1}" != 0 ]; then
		src_fix_rules a | inns "$NS_A" nft -f -
		src_fix_rules b | inns "$NS_B" nft -f -
		say "nftables: SCTP IPv4 source address rewritten to the outgoing interface's address (table ip sctpmon_src)"
	else
		say "nftables: source rewrite NOT installed (SCTPMON_SRC_FIX=0)"
	fi
	# wait until both ends of each veth are up (carrier)
	for p in 1 2; do
		wait_up "$NS_A" "$(ifa $p)" "$NS_B" "$(ifb $p)" || die "path $p: veth did not come up"
	done
	if command -v ping >/dev/null; then
		# reachability inside the lab only (addresses of ns b, from ns a)
		for p in 1 2; do
			inns "$NS_A" ping -c1 -W2 -q "$(v4b $p)" >/dev/null 2>&1 || die "path $p: no IPv4 ping"
			inns "$NS_A" ping -6 -c1 -W2 -q "$(v6b $p)" >/dev/null 2>&1 || die "path $p: no IPv6 ping"
		done
		say "both paths answer ping (IPv4 and IPv6)"
	else
		say "both paths are up (no ping installed: reachability not checked)"
	fi
	say "up. Start peers with: $0 start [mixed|raw4|raw6|udp4|udp6], or e.g.:"
	say "  ip netns exec $NS_B <sctp_peer> server --bind $(v4b 1),$(v6b 2) --port 5000"
	say "  ip netns exec $NS_A <sctp_peer> client --bind $(v4a 1),$(v6a 2) --connect $(v4b 1),$(v6b 2) --port 5000"
}

check_path() {
	case "${1:-}" in 1|2) ;; *) die "path must be 1 or 2";; esac
}

cut_table() { echo "sctpmon_cut$1"; }

cmd_cut() {
	need_root
	local p=${1:-} side=${2:-b} ns ifn
	check_path "$p"
	ns_exists "$NS_A" && ns_exists "$NS_B" || die "lab is not up (run: $0 up)"
	case "$side" in
		a) ns=$NS_A; ifn=$(ifa "$p");;
		b) ns=$NS_B; ifn=$(ifb "$p");;
		*) die "side must be a or b";;
	esac
	if inns "$ns" nft list table inet "$(cut_table "$p")" >/dev/null 2>&1; then
		say "path $p already cut in $ns"
		return 0
	fi
	inns "$ns" nft -f - <<EOF
table inet $(cut_table "$p") {
  chain in {
    type filter hook prerouting priority -300; policy accept;
    iifname "$ifn" counter drop
  }
  chain out {
    type filter hook postrouting priority -300; policy accept;
    oifname "$ifn" counter drop
  }
}
EOF
	say "cut path $p: nftables drops all IP traffic in and out of $ns/$ifn (link stays up)"
}

cmd_restore() {
	need_root
	local p=${1:-} ns did=0
	check_path "$p"
	for ns in "$NS_A" "$NS_B"; do
		ns_exists "$ns" || continue
		if inns "$ns" nft list table inet "$(cut_table "$p")" >/dev/null 2>&1; then
			inns "$ns" nft delete table inet "$(cut_table "$p")"
			say "restored path $p: removed drop rules in $ns"
			did=1
		fi
	done
	[ $did -eq 1 ] || say "path $p was not cut"
}

link_side() {
	# $1 = path, $2 = a|b -> "NS IFACE PEER_NS PEER_IFACE"
	case "${2:-b}" in
		a) echo "$NS_A $(ifa "$1") $NS_B $(ifb "$1")";;
		b) echo "$NS_B $(ifb "$1") $NS_A $(ifa "$1")";;
		*) die "side must be a or b";;
	esac
}

cmd_link() {
	# $1 = up | down, $2 = path, $3 = a | b
	need_root
	local state=$1 p=${2:-} ns ifn pns pifn
	check_path "$p"
	ns_exists "$NS_A" && ns_exists "$NS_B" || die "lab is not up (run: $0 up)"
	read -r ns ifn pns pifn < <(link_side "$p" "${3:-b}")
	inns "$ns" ip link set "$ifn" "$state"
	if [ "$state" = up ]; then
		wait_up "$ns" "$ifn" "$pns" "$pifn" || die "path $p: $ns/$ifn did not come up"
	fi
	say "link $state: $ns/$ifn (path $p; carrier of $pns/$pifn follows)"
}

cmd_status() {
	need_root
	local ns p any=0
	for ns in "$NS_A" "$NS_B"; do
		if ! ns_exists "$ns"; then
			echo "== $ns: absent"
			continue
		fi
		any=1
		echo "== $ns"
		inns "$ns" ip -br link show | grep -E '^sm' || true
		inns "$ns" ip -br addr show | grep -E '^sm' || true
		for p in 1 2; do
			if inns "$ns" nft list table inet "$(cut_table "$p")" >/dev/null 2>&1; then
				echo "   path $p: CUT here (table inet $(cut_table "$p"))"
			fi
		done
		if inns "$ns" nft list table ip sctpmon_src >/dev/null 2>&1; then
			echo "   source rewrite: on"
			inns "$ns" nft list table ip sctpmon_src | grep -E 'saddr set' | sed 's/^\s*/     /'
		else
			echo "   source rewrite: off"
		fi
		local pids
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		if [ -n "$pids" ]; then
			echo "   processes:"
			# shellcheck disable=SC2086
			ps -o pid=,args= -p $(echo $pids | tr ' ' ',') | sed 's/^/     /'
		fi
	done
	[ $any -eq 1 ] || say "lab is down"
}

cmd_build() {
	local out=${1:-$REPO_ROOT/target/sctp-peer/sctp_peer}
	command -v gcc >/dev/null || die "gcc not found: apt-get install -y gcc"
	[ -f /usr/include/usrsctp.h ] || die "usrsctp.h not found: apt-get install -y libusrsctp-dev"
	mkdir -p "$(dirname "$out")"
	gcc -O2 -g -Wall -Wextra -o "$out" "$SCRIPT_DIR/sctp_peer.c" -lusrsctp -lpthread
	say "built $out"
}

mode_addrs() {
	# $1 = mode -> "A_ADDRS B_ADDRS ENCAP"
	case "$1" in
		raw4) echo "10.201.1.1,10.201.2.1 10.201.1.2,10.201.2.2 -";;
		raw6) echo "fd00:201:1::1,fd00:201:2::1 fd00:201:1::2,fd00:201:2::2 -";;
		udp4) echo "10.201.1.1,10.201.2.1 10.201.1.2,10.201.2.2 9899:9899";;
		udp6) echo "fd00:201:1::1,fd00:201:2::1 fd00:201:1::2,fd00:201:2::2 9899:9899";;
		mixed) echo "10.201.1.1,fd00:201:2::1 10.201.1.2,fd00:201:2::2 -";;
		*) die "mode must be raw4, raw6, udp4, udp6 or mixed";;
	esac
}

cmd_start() {
	# start [MODE] [DIR] [extra sctp_peer options...]: server in ns b, client in ns a,
	# sending until `stop`. JSON Lines in DIR/server.jsonl and DIR/client.jsonl.
	need_root
	local mode=${1:-mixed} dir=${2:-/tmp/sctpmon-lab}
	shift 2 2>/dev/null || shift $#
	local both=() client_only=()
	while [ $# -gt 0 ]; do
		if [ "$1" = --client ]; then
			shift
			client_only=("$@")
			break
		fi
		both+=("$1")
		shift
	done
	ns_exists "$NS_A" && ns_exists "$NS_B" || die "lab is not up (run: $0 up)"
	local peer=${SCTP_PEER:-$REPO_ROOT/target/sctp-peer/sctp_peer}
	[ -x "$peer" ] || cmd_build "$peer"
	local a b e
	read -r a b e < <(mode_addrs "$mode")
	local enc=()
	[ "$e" = - ] || enc=(--udp-encap "$e")
	mkdir -p "$dir"
	local opts=(--port 5000 --hb-interval 200 --rto-min 100 --rto-max 400 --path-max-retrans 2 "${enc[@]}" "${both[@]}")
	ip netns exec "$NS_B" "$peer" server --bind "$b" "${opts[@]}" >"$dir/server.jsonl" 2>"$dir/server.err" &
	echo $! >"$dir/server.pid"
	sleep 0.3
	ip netns exec "$NS_A" "$peer" client --bind "$a" --connect "$b" --rate 50 "${opts[@]}" "${client_only[@]}" \
		>"$dir/client.jsonl" 2>"$dir/client.err" &
	echo $! >"$dir/client.pid"
	for _ in $(seq 1 100); do
		grep -q '"ev":"up"' "$dir/client.jsonl" 2>/dev/null && break
		sleep 0.05
	done
	grep -q '"ev":"up"' "$dir/client.jsonl" || die "association did not come up; see $dir/*.err"
	say "association up ($mode): client pid $(cat "$dir/client.pid") in $NS_A, server pid $(cat "$dir/server.pid") in $NS_B"
	say "  $(grep -m1 '"ev":"up"' "$dir/client.jsonl")"
	say "stack output: $dir/client.jsonl $dir/server.jsonl; stop with: $0 stop $dir"
}

cmd_stop() {
	need_root
	local dir=${1:-/tmp/sctpmon-lab} r pid
	for r in client server; do
		[ -f "$dir/$r.pid" ] || continue
		pid=$(cat "$dir/$r.pid")
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"  # graceful SHUTDOWN
			for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
			say "stopped $r (pid $pid)"
		fi
		rm -f "$dir/$r.pid"
	done
}

cmd=${1:-}
shift || true
case "$cmd" in
	up) cmd_up "$@";;
	down) cmd_down "$@";;
	cut) cmd_cut "$@";;
	restore) cmd_restore "$@";;
	linkdown) cmd_link down "$@";;
	linkup) cmd_link up "$@";;
	status) cmd_status "$@";;
	build) cmd_build "$@";;
	start) cmd_start "$@";;
	stop) cmd_stop "$@";;
	exec)
		need_root
		case "${1:-}" in a) ns=$NS_A;; b) ns=$NS_B;; *) die "exec a|b CMD...";; esac
		shift
		exec ip netns exec "$ns" "$@";;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 1;;
esac
