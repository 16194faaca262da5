#!/usr/bin/env bash
# Runs inside a guest booted by boot.sh (the vng --exec command): one
# failover run of the Linux kernel's own SCTP, watched by the agent (or,
# with --cut stallread, a receiver that stops reading: no path is cut).
#
#   ns sctpmon-a (client)                           ns sctpmon-b (server, agent)
#   smA1 10.201.1.1/24 fd00:201:1::1/64  <-path 1->  smB1 10.201.1.2/24 fd00:201:1::2/64
#   smA2 10.201.2.1/24 fd00:201:2::1/64  <-path 2->  smB2 10.201.2.2/24 fd00:201:2::2/64
#
# Usage:
#   run.sh failover --out DIR --agent BIN --peer BIN [--stack linux-6.1]
#          [--family ipv4|ipv6] [--cut blackhole|linkdown|stallread] [--pf on|off]
#          [--pre S] [--cut-secs S] [--post S] [--rate N] [--size N] [--rcvbuf BYTES]
#          [--hb-interval MS] [--rto-min MS] [--rto-max MS] [--path-max-retrans N]
#          [--agent-arg ARG]... [--sent-captures]
#   run.sh agent-check --out DIR --agent BIN
#
# failover leaves in DIR exactly: client.jsonl, server.jsonl (the peers'
# JSON Lines, tests/peer/lksctp_peer.c), agent.jsonl (the agent's events),
# capture.pcap (tcpdump -i any in ns sctpmon-b, LINUX_SLL2: the monitored
# interfaces), meta.json and agent.log (the agent's stderr); with
# --sent-captures also client-sent.pcap and server-sent.pcap (every packet
# each stack handed to a device, tcpdump -Q out in its namespace: a link
# that is down takes what is sent into it before the server's side sees
# it). Its own log goes to stdout (the guest's console).
#
# meta.json: {"stack","family","encap":"raw","cut","pf":"pf_retrans0|
# pf_disabled","cut_ts","restore_ts","ifaces"} (times: Unix seconds, the
# guest's CLOCK_REALTIME, which stamps the peers' lines and the capture
# too), then the run's parameters: "cut_ifaces", "kernel" (uname -r),
# "hb_interval_ms", "path_max_retrans", "rto_min_ms", "rto_max_ms", and
# "agents": [{"start_ts","attached_ts","end_ts","killed":false}]; with
# --cut stallread also "rcvbuf", "rate", "size", "pause_after_s" and
# "pause_for_s".
#
# The sequence: the agent is started first and the run waits for its
# "attached to" lines (under TCG it takes ~13 s to load its programs), then
# tcpdump, the server, the client; `--pre` seconds after the client's "up"
# line path 1 is cut for `--cut-secs`, then restored, and `--post` seconds
# later everything stops (client SHUTDOWN first). Under TCG each process
# start costs ~0.2 s, so the cut, the restore and their time stamps come
# from processes that are already running: `nft -i` in both namespaces
# (blackhole: drops at prerouting of both ends of path 1, so every packet
# still crosses the veth where the agent and tcpdump see it, and neither
# stack gets it) or `ip -batch -` in ns sctpmon-b (linkdown: smB1 down,
# which takes the carrier of smA1 with it), and $EPOCHREALTIME.
#
# --cut stallread cuts nothing: the server's socket gets SO_RCVBUF
# --rcvbuf (default 8192: a receive window of 8 KiB) and `--pre` seconds
# after its COMM_UP it stops reading for `--cut-secs` (lksctp_peer
# --pause-read), while the client sends --rate (default 200) messages of
# --size (default 1000) bytes a second: the server's window fills and
# closes (SACKs with a_rwnd 0), and opens when it reads again. cut_ts and
# restore_ts are the server's "pause_read" and "resume_read" lines' times,
# "cut_ifaces" is empty.
#
# agent-check starts the agent on one veth and reports how it ends:
# DIR/agent.log (its stderr) and DIR/agent.rc (its exit code, or
# "attached" when it attached and was stopped).
set -euo pipefail

NS_A=sctpmon-a
NS_B=sctpmon-b

log() { printf 'guest %s: %s\n' "${EPOCHREALTIME}" "$*"; }
die() { printf 'guest: error: %s\n' "$*" >&2; exit 1; }

mode=${1:-}
[ -n "$mode" ] && shift || die "usage: run.sh failover|agent-check --out DIR --agent BIN ..."

out='' agent='' peer='' stack=linux family=ipv4 cut=blackhole pf=on
pre=2 cut_secs=5 post=4 rate='' size='' rcvbuf=8192 hb=500 rto_min=100 rto_max=500 pmr=2
agent_args=()
sent_captures=0
while [ $# -gt 0 ]; do
	case "$1" in
		--out) out=$2; shift 2;;
		--agent) agent=$2; shift 2;;
		--peer) peer=$2; shift 2;;
		--stack) stack=$2; shift 2;;
		--family) family=$2; shift 2;;
		--cut) cut=$2; shift 2;;
		--pf) pf=$2; shift 2;;
		--pre) pre=$2; shift 2;;
		--cut-secs) cut_secs=$2; shift 2;;
		--post) post=$2; shift 2;;
		--rate) rate=$2; shift 2;;
		--size) size=$2; shift 2;;
		--rcvbuf) rcvbuf=$2; shift 2;;
		--hb-interval) hb=$2; shift 2;;
		--rto-min) rto_min=$2; shift 2;;
		--rto-max) rto_max=$2; shift 2;;
		--path-max-retrans) pmr=$2; shift 2;;
		--agent-arg) agent_args+=("$2"); shift 2;;
		--sent-captures) sent_captures=1; shift;;
		*) die "unknown argument $1";;
	esac
done
[ -n "$out" ] && [ -n "$agent" ] || die "--out and --agent are required"
[ -x "$agent" ] || die "agent binary $agent is not executable"
case "$family" in ipv4|ipv6) ;; *) die "--family ipv4|ipv6";; esac
case "$cut" in blackhole|linkdown|stallread) ;; *) die "--cut blackhole|linkdown|stallread";; esac
# The client's pace: enough to fill the stalled receiver's window, or the
# failover runs' gentle one.
if [ "$cut" = stallread ]; then
	rate=${rate:-200} size=${size:-1000}
else
	rate=${rate:-10} size=${size:-100}
fi
case "$pf" in on) pf_name=pf_retrans0;; off) pf_name=pf_disabled;; *) die "--pf on|off";; esac

mkdir -p "$out"
T=$(mktemp -d /tmp/sctpmon-guest.XXXXXX)
# A sleep that starts no process: read with a timeout on a fifo that never
# gets data.
mkfifo "$T/sleep"
exec {sleepfd}<>"$T/sleep"
snooze() { read -r -t "$1" -u "$sleepfd" _ || true; }

pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

addr() { # addr SIDE(a|b) PATH(1|2)
	local n; [ "$1" = a ] && n=1 || n=2
	if [ "$family" = ipv4 ]; then echo "10.201.$2.$n"; else echo "fd00:201:$2::$n"; fi
}

# lines_of FILE: the file's lines in the array `lines` (builtins only).
lines_of() { lines=(); [ -f "$1" ] && mapfile -t lines < "$1" || true; }

# wait_for FILE PATTERN SECONDS PID WHAT: until a line of FILE matches the
# glob PATTERN; fails when PID is gone first or the time is up.
wait_for() {
	local file=$1 pat=$2 secs=$3 pid=$4 what=$5 start=${EPOCHSECONDS} l
	while :; do
		lines_of "$file"
		for l in "${lines[@]}"; do
			# shellcheck disable=SC2053
			[[ $l == $pat ]] && return 0
		done
		kill -0 "$pid" 2>/dev/null || { log "$what exited before: $pat"; return 1; }
		(( EPOCHSECONDS - start < secs )) || { log "timed out after ${secs}s waiting for $what: $pat"; return 1; }
		snooze 0.2
	done
}

make_lab() {
	ip netns add "$NS_A"
	ip netns add "$NS_B"
	ip link add smA1 netns "$NS_A" type veth peer name smB1 netns "$NS_B"
	ip link add smA2 netns "$NS_A" type veth peer name smB2 netns "$NS_B"
	local side ns n p
	for side in a b; do
		if [ $side = a ]; then ns=$NS_A n=1; else ns=$NS_B n=2; fi
		{
			for p in 1 2; do
				echo "addr add 10.201.$p.$n/24 dev sm${side^^}$p"
				echo "addr add fd00:201:$p::$n/64 dev sm${side^^}$p nodad"
				echo "link set sm${side^^}$p up"
			done
			echo "link set lo up"
		} | ip -n "$ns" -batch -
	done
}

# sysctls of one namespace: the lab's (no DAD, addresses kept on link
# down, no reverse-path filter) and the SCTP path-failure ones.
ns_sysctls() {
	local pf_enable=1
	[ "$pf" = off ] && pf_enable=0
	ip netns exec "$1" sysctl -qw \
		net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.keep_addr_on_down=1 net.ipv6.conf.default.keep_addr_on_down=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.sctp.pf_enable=$pf_enable net.sctp.pf_retrans=0 net.sctp.pf_expose=2 >/dev/null
}

# Starts the agent in ns sctpmon-b on IFACES, waits for an "attached to"
# line for each; its pid in agent_pid.
start_agent() {
	local i args=()
	for i in "$@"; do args+=(-i "$i"); done
	# The agent is told the stacks' Path.Max.Retrans, as the README asks.
	ip netns exec "$NS_B" "$agent" run "${args[@]}" --events "$out/agent.jsonl" --metrics off \
		--path-max-retrans "$pmr" "${agent_args[@]}" >/dev/null 2>"$out/agent.log" &
	agent_pid=$!
	pids+=("$agent_pid")
	for i in "$@"; do
		wait_for "$out/agent.log" "*attached to $i *" 240 "$agent_pid" "the agent" || return 1
	done
}

if [ "$mode" = agent-check ]; then
	ip netns add "$NS_B"
	ip link add smB1 netns "$NS_B" type veth peer name smA1 netns "$NS_B"
	ip -n "$NS_B" link set smB1 up
	ip -n "$NS_B" link set smA1 up
	log "starting the agent: $agent"
	if start_agent smB1; then
		kill -TERM "$agent_pid"
		wait "$agent_pid" || true
		echo attached > "$out/agent.rc"
	else
		rc=0
		wait "$agent_pid" || rc=$?
		echo "$rc" > "$out/agent.rc"
	fi
	log "agent: $(<"$out/agent.rc")"
	exit 0
fi

[ -x "$peer" ] || die "peer binary $peer is not executable"
log "kernel $(uname -r), $stack $family $cut $pf_name"
modprobe sctp || die "modprobe sctp failed (the kernel's modules are not reachable?)"
make_lab
ns_sysctls "$NS_A"
ns_sysctls "$NS_B"
rm -f "$out"/{client.jsonl,server.jsonl,agent.jsonl,capture.pcap,meta.json,agent.log,client-sent.pcap,server-sent.pcap}

# The cut's tools, running before anything is cut (stallread has none).
mkfifo "$T/cut-a" "$T/cut-b"
if [ "$cut" = stallread ]; then
	:
elif [ "$cut" = blackhole ]; then
	ip netns exec "$NS_A" nft -i <"$T/cut-a" >"$T/nft-a.log" 2>&1 &
	pids+=($!)
	ip netns exec "$NS_B" nft -i <"$T/cut-b" >"$T/nft-b.log" 2>&1 &
	pids+=($!)
	exec {cut_a}>"$T/cut-a" {cut_b}>"$T/cut-b"
	for fd in "$cut_a" "$cut_b"; do
		echo 'add table inet sctpmon_cut' >&"$fd"
		echo 'add chain inet sctpmon_cut in { type filter hook prerouting priority -300 ; policy accept ; }' >&"$fd"
	done
else
	ip -n "$NS_B" -batch - <"$T/cut-b" >"$T/ip-b.log" 2>&1 &
	pids+=($!)
	exec {cut_b}>"$T/cut-b"
fi

log "starting the agent (under TCG it takes ~13 s to load)"
agent_start_ts=$EPOCHREALTIME
start_agent smB1 smB2 || { cat "$out/agent.log" >&2; die "the agent did not attach"; }
agent_attached_ts=$EPOCHREALTIME
log "agent attached"

# capture NS FILE [TCPDUMP_OPTION...]: tcpdump on every interface of NS,
# started and listening; its pid appended to capture_pids.
capture_pids=()
capture() {
	local ns=$1 file=$2 pid
	shift 2
	ip netns exec "$ns" tcpdump -i any -y LINUX_SLL2 -U -n -Z root "$@" -w "$file" 'sctp or udp port 9899' \
		2>"$T/tcpdump-${file##*/}.log" &
	pid=$!
	pids+=("$pid")
	capture_pids+=("$pid")
	wait_for "$T/tcpdump-${file##*/}.log" "*listening on*" 30 "$pid" tcpdump || die "tcpdump did not start"
}
capture "$NS_B" "$out/capture.pcap"
if [ $sent_captures = 1 ]; then
	capture "$NS_A" "$out/client-sent.pcap" -Q out
	capture "$NS_B" "$out/server-sent.pcap" -Q out
fi

peer_opts=(--port 5000 --hb-interval "$hb" --rto-min "$rto_min" --rto-max "$rto_max"
	--rto-initial "$rto_max" --path-max-retrans "$pmr" --stats-interval 0.25)
server_opts=()
[ "$cut" = stallread ] && server_opts=(--rcvbuf "$rcvbuf" --pause-read "$pre:$cut_secs")
ip netns exec "$NS_B" "$peer" server --bind "$(addr b 1),$(addr b 2)" "${peer_opts[@]}" "${server_opts[@]}" \
	>"$out/server.jsonl" 2>"$T/server.err" &
server_pid=$!
pids+=("$server_pid")
wait_for "$out/server.jsonl" '*"ev":"listening"*' 30 "$server_pid" "the server" ||
	{ cat "$T/server.err" >&2; die "the server did not start"; }
ip netns exec "$NS_A" "$peer" client --bind "$(addr a 1),$(addr a 2)" --connect "$(addr b 1),$(addr b 2)" \
	--rate "$rate" --size "$size" "${peer_opts[@]}" >"$out/client.jsonl" 2>"$T/client.err" &
client_pid=$!
pids+=("$client_pid")
wait_for "$out/client.jsonl" '*"ev":"up"*' 30 "$client_pid" "the client" ||
	{ cat "$T/client.err" >&2; die "the association did not come up"; }
log "association up"

# path1 cut|restore: one line to each running tool; the time stamp just
# before, in `now`.
path1() {
	local a b
	case "$cut-$1" in
		blackhole-cut) a='add rule inet sctpmon_cut in iifname "smA1" drop' b=${a/smA1/smB1};;
		blackhole-restore) a='flush chain inet sctpmon_cut in' b=$a;;
		linkdown-cut) a='' b='link set smB1 down';;
		linkdown-restore) a='' b='link set smB1 up';;
	esac
	now=$EPOCHREALTIME
	[ -z "$a" ] || echo "$a" >&"$cut_a"
	echo "$b" >&"$cut_b"
}
# line_ts FILE PATTERN: the "ts" of FILE's first line matching the glob
# PATTERN, in `now`.
line_ts() {
	local l
	lines_of "$1"
	for l in "${lines[@]}"; do
		# shellcheck disable=SC2053
		if [[ $l == $2 && $l =~ \"ts\":([0-9.]+) ]]; then
			now=${BASH_REMATCH[1]}
			return 0
		fi
	done
	return 1
}
if [ "$cut" = stallread ]; then
	# The server stops reading by itself; its lines say when.
	wait_for "$out/server.jsonl" '*"ev":"pause_read"*' $((pre + 30)) "$server_pid" "the server" ||
		die "the server did not stop reading"
	line_ts "$out/server.jsonl" '*"ev":"pause_read"*'
	cut_ts=$now
	log "the server stopped reading"
	wait_for "$out/server.jsonl" '*"ev":"resume_read"*' $((cut_secs + 30)) "$server_pid" "the server" ||
		die "the server did not read again"
	line_ts "$out/server.jsonl" '*"ev":"resume_read"*'
	restore_ts=$now
	log "the server reads again"
else
	snooze "$pre"
	path1 cut
	cut_ts=$now
	log "path 1 cut ($cut)"
	snooze "$cut_secs"
	path1 restore
	restore_ts=$now
	log "path 1 restored"
fi
snooze "$post"

stop() { # stop PID WHAT: SIGTERM, then wait for its exit code
	local rc=0
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" || rc=$?
	log "$2 exited with $rc"
}
stop "$client_pid" client
stop "$server_pid" server
stop "$agent_pid" agent
agent_end_ts=$EPOCHREALTIME
for p in "${capture_pids[@]}"; do stop "$p" tcpdump; done
[ "$cut" = stallread ] || exec {cut_b}>&-
[ "$cut" = blackhole ] && exec {cut_a}>&-
wait || true
pids=()
for f in server client; do
	[ -s "$T/$f.err" ] && { log "$f stderr:"; cat "$T/$f.err"; }
done
for f in nft-a nft-b ip-b; do
	[ -s "$T/$f.log" ] && { log "$f:"; cat "$T/$f.log"; }
done

# The run's parameters after the keys every run has (stack ... ifaces).
printf '{"stack":"%s","family":"%s","encap":"raw","cut":"%s","pf":"%s","cut_ts":%s,"restore_ts":%s,' \
	"$stack" "$family" "$cut" "$pf_name" "$cut_ts" "$restore_ts" >"$out/meta.json"
cut_ifaces='["smB1"]'
[ "$cut" = stallread ] && cut_ifaces='[]'
printf '"ifaces":["smB1","smB2"],"cut_ifaces":%s,"kernel":"%s","hb_interval_ms":%s,"path_max_retrans":%s,' \
	"$cut_ifaces" "$(uname -r)" "$hb" "$pmr" >>"$out/meta.json"
if [ "$cut" = stallread ]; then
	printf '"rcvbuf":%s,"rate":%s,"size":%s,"pause_after_s":%s,"pause_for_s":%s,' \
		"$rcvbuf" "$rate" "$size" "$pre" "$cut_secs" >>"$out/meta.json"
fi
printf '"rto_min_ms":%s,"rto_max_ms":%s,"agents":[{"start_ts":%s,"attached_ts":%s,"end_ts":%s,"killed":false}]}\n' \
	"$rto_min" "$rto_max" "$agent_start_ts" "$agent_attached_ts" "$agent_end_ts" >>"$out/meta.json"
log "done: $(cd "$out" && echo *)"
