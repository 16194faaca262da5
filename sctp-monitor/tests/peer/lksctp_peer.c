/*
 * lksctp_peer: one end of ONE multihomed SCTP association over the Linux
 * kernel's own SCTP (the stack most signalling software uses), through
 * lksctp (Debian package libsctp-dev: sctp_bindx, sctp_connectx,
 * sctp_getpaddrs).
 *
 * Same command line and the same JSON Lines as the usrsctp peer
 * (sctp_peer.c), so one comparer reads both:
 *
 *   lksctp_peer server --bind 10.201.1.2,10.201.2.2 --port 5000
 *   lksctp_peer client --bind 10.201.1.1,10.201.2.1 \
 *       --connect 10.201.1.2,10.201.2.2 --port 5000 --rate 10 --duration 30 \
 *       --hb-interval 500 --rto-min 200 --rto-max 1000 --path-max-retrans 2 \
 *       --stats-interval 0.25
 *
 * Build: gcc -O2 -Wall -o lksctp_peer lksctp_peer.c -lsctp
 * Needs a kernel with SCTP (modprobe sctp). The stack's potentially-failed
 * state (RFC 7829) is visible only with net.sctp.pf_expose=2 in the
 * network namespace (then SCTP_PEER_ADDR_CHANGE reports
 * ADDR_POTENTIALLY_FAILED and SCTP_GET_PEER_ADDR_INFO the PF state).
 *
 * Lines (every line has "ts": Unix time in seconds with microseconds,
 * CLOCK_REALTIME, the same clock tcpdump stamps packets with, and "role"):
 *   {"ev":"start", ...config, "stack":"linux", "kernel":"...", "sysctl":{...}}
 *   {"ev":"assoc_change","state":"COMM_UP|COMM_LOST|RESTART|SHUTDOWN_COMP|CANT_STR_ASSOC",...}
 *   {"ev":"up","assoc_id":N,"laddrs":[...],"paddrs":[...],"primary":"..."}
 *   {"ev":"peer_addr_change","addr":"...","state":"ADDR_UNREACHABLE|ADDR_AVAILABLE|ADDR_POTENTIALLY_FAILED|...","error":N}
 *   {"ev":"primary","addr":"...","previous":"..."}   (SCTP_PRIMARY_ADDR changed, polled)
 *   {"ev":"stats","sent":N,"recv":N,...,"primary":"...",
 *    "paths":[{"addr","state","srtt_ms","rto_ms","cwnd","mtu","state_raw"}]}
 *      state: active | potentially_failed | inactive | unconfirmed
 *      (SCTP_GET_PEER_ADDR_INFO's SCTP_ACTIVE / SCTP_PF / SCTP_INACTIVE /
 *      SCTP_UNCONFIRMED; the same names as sctp_peer.c)
 *   {"ev":"shutdown_event"} {"ev":"remote_error",...} {"ev":"send_failed",...}
 *   {"ev":"rcvbuf","requested":N,"sk_rcvbuf":N}    (--rcvbuf: SO_RCVBUF asked for, and
 *      what the kernel set, twice it: the receive window starts at half of that)
 *   {"ev":"pause_read","after_s":S,"for_s":D}   (--pause-read: the peer stops calling recvmsg)
 *   {"ev":"resume_read","paused_s":S}          (and reads again: after D s, or when stopped)
 *   {"ev":"exit","code":N,...}
 * Exit codes: 0 ok, 1 usage/setup error, 2 association could not start,
 * 3 connect timeout, 4 association lost (COMM_LOST / abort).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/sctp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* What peer_common.h takes from this peer. */
#define PEER_NAME "lksctp_peer"
#define PEER_ADDR_PF SCTP_ADDR_POTENTIALLY_FAILED
#define PEER_AT_PRIMARY 0
#define PEER_THREADED 0 /* one thread: no locks */
#define PEER_USAGE_BINDX "sctp_bindx"
#define PEER_USAGE_CONNECTX "sctp_connectx"
#define PEER_USAGE_AT \
"                           on local ADDR (sctp_bindx / SCTP_SET_PEER_PRIMARY_ADDR: ASCONF;\n" \
"                           needs net.sctp.addip_enable=1)\n"
#define PEER_USAGE_UDP \
"  --udp-encap L:R          SCTP over UDP (RFC 6951): sets net.sctp.udp_port=L of this network\n" \
"                           namespace and the remote UDP port R (SCTP_REMOTE_UDP_ENCAPS_PORT, 5.11+)\n"
#define PEER_USAGE_DEBUG \
"  --debug                  accepted for sctp_peer compatibility (no effect)\n"
#define PEER_PAUSE_READ 1 /* --rcvbuf, --pause-read */
/* The stack's calls under the names peer_common.h uses. */
#define stack_getsockopt getsockopt
#define stack_setsockopt setsockopt
#define stack_getladdrs sctp_getladdrs
#define stack_freeladdrs sctp_freeladdrs
#define stack_getpaddrs sctp_getpaddrs
#define stack_freepaddrs sctp_freepaddrs
#define stack_prim sctp_prim

static int sock = -1;
/* --pause-read: the socket is not read (nor polled) while set. */
static int reading_paused;

/* Sets net.sctp.udp_port of this network namespace (configure_socket
 * calls it before it asks for UDP encapsulation). */
static void set_udp_port(void);
#define PEER_UDP_ENCAP_SETUP set_udp_port

#include "peer_common.h"

/* spinfo_state of SCTP_GET_PEER_ADDR_INFO: an enum on Linux (usrsctp has
 * flags); named as sctp_peer.c names usrsctp's. */
static const char *path_state_name(int32_t s)
{
	switch (s) {
	case SCTP_INACTIVE: return "inactive";
	case SCTP_PF: return "potentially_failed";
	case SCTP_ACTIVE: return "active";
	case SCTP_UNCONFIRMED: return "unconfirmed";
	default: return "unknown";
	}
}

/* ---------- notifications ---------- */
static void handle_notification(union sctp_notification *n, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (len < sizeof(n->sn_header))
		return;
	switch (n->sn_header.sn_type) {
	case SCTP_ASSOC_CHANGE: {
		struct sctp_assoc_change *sac = &n->sn_assoc_change;
		emit("assoc_change", "\"state\":\"%s\",\"error\":%u,\"assoc_id\":%u,\"outbound_streams\":%u,\"inbound_streams\":%u",
		     assoc_state_name(sac->sac_state), sac->sac_error, (unsigned)sac->sac_assoc_id,
		     sac->sac_outbound_streams, sac->sac_inbound_streams);
		switch (sac->sac_state) {
		case SCTP_COMM_UP:
		case SCTP_RESTART:
			st.assoc_id = sac->sac_assoc_id;
			st.have_assoc = 1;
			st.up_pending = 1;
			st.established = 1;
			st.ended = 0;
			break;
		case SCTP_SHUTDOWN_COMP:
			st.shutdown_comp = 1;
			st.ended = 1;
			st.established = 0;
			break;
		case SCTP_COMM_LOST:
			st.ended = 1;
			st.established = 0;
			st.end_code = 4;
			break;
		case SCTP_CANT_STR_ASSOC:
			st.ended = 1;
			st.established = 0;
			st.end_code = 2;
			break;
		}
		break;
	}
	case SCTP_PEER_ADDR_CHANGE: {
		struct sctp_paddr_change *spc = &n->sn_paddr_change;
		emit("peer_addr_change", "\"addr\":\"%s\",\"state\":\"%s\",\"error\":%u,\"assoc_id\":%u",
		     addr_str((struct sockaddr *)&spc->spc_aaddr, a, sizeof(a)),
		     paddr_state_name(spc->spc_state), spc->spc_error, (unsigned)spc->spc_assoc_id);
		break;
	}
	case SCTP_REMOTE_ERROR:
		emit("remote_error", "\"error\":%u,\"assoc_id\":%u",
		     ntohs(n->sn_remote_error.sre_error), (unsigned)n->sn_remote_error.sre_assoc_id);
		break;
	case SCTP_SHUTDOWN_EVENT:
		emit("shutdown_event", "\"assoc_id\":%u", (unsigned)n->sn_shutdown_event.sse_assoc_id);
		break;
	case SCTP_SEND_FAILED_EVENT:
		emit("send_failed", "\"error\":%u,\"flags\":%u,\"assoc_id\":%u",
		     n->sn_send_failed_event.ssf_error, n->sn_send_failed_event.ssf_flags,
		     (unsigned)n->sn_send_failed_event.ssf_assoc_id);
		break;
	case SCTP_ADAPTATION_INDICATION:
		emit("adaptation_indication", "\"ind\":%u", n->sn_adaptation_event.sai_adaptation_ind);
		break;
	default:
		emit("notification", "\"type\":%u", n->sn_header.sn_type);
		break;
	}
}

/* sendmsg with an SCTP_SNDINFO control message (RFC 6458 5.3.4). */
static ssize_t send_msg(const void *data, size_t len, sctp_assoc_t id, uint16_t sid, uint32_t ppid_net,
                        uint16_t flags)
{
	char cbuf[CMSG_SPACE(sizeof(struct sctp_sndinfo))];
	struct iovec iov = { (void *)data, len };
	struct msghdr msg;
	struct cmsghdr *c;
	struct sctp_sndinfo snd;

	memset(&msg, 0, sizeof(msg));
	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = cbuf;
	msg.msg_controllen = sizeof(cbuf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = IPPROTO_SCTP;
	c->cmsg_type = SCTP_SNDINFO;
	c->cmsg_len = CMSG_LEN(sizeof(snd));
	memset(&snd, 0, sizeof(snd));
	snd.snd_sid = sid;
	snd.snd_flags = flags;
	snd.snd_ppid = ppid_net;
	snd.snd_assoc_id = id;
	memcpy(CMSG_DATA(c), &snd, sizeof(snd));
	return sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Reads everything queued on the socket: DATA (counted, echoed by the
 * server) and notifications. */
static void drain_socket(void)
{
	static char data[MAX_MSG];
	char cbuf[CMSG_SPACE(sizeof(struct sctp_rcvinfo)) + 64];

	for (;;) {
		struct iovec iov = { data, sizeof(data) };
		struct sockaddr_storage from;
		struct msghdr msg;
		struct sctp_rcvinfo rcv;
		int have_rcv = 0;

		memset(&msg, 0, sizeof(msg));
		msg.msg_name = &from;
		msg.msg_namelen = sizeof(from);
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		ssize_t n = recvmsg(sock, &msg, MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				logerr("recvmsg: %s", strerror(errno));
			return;
		}
		if (msg.msg_flags & MSG_NOTIFICATION) {
			handle_notification((union sctp_notification *)data, (size_t)n);
			continue;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == IPPROTO_SCTP && c->cmsg_type == SCTP_RCVINFO) {
				memcpy(&rcv, CMSG_DATA(c), sizeof(rcv));
				have_rcv = 1;
			}
		}
		uint32_t seq = 0;
		if (n >= 4) {
			memcpy(&seq, data, 4);
			seq = ntohl(seq);
		}
		st.recv_msgs++;
		st.recv_bytes += (uint64_t)n;
		st.last_recv_seq = seq;
		if (cfg.is_server && cfg.echo && have_rcv && (msg.msg_flags & MSG_EOR)) {
			if (send_msg(data, (size_t)n, rcv.rcv_assoc_id, rcv.rcv_sid, rcv.rcv_ppid, 0) < 0)
				st.echo_errors++;
			else
				st.echo_msgs++;
		}
	}
}

/* ---------- stack queries ---------- */
static void print_stats(sctp_assoc_t id, int have_assoc)
{
	char paths[4096];
	char a[INET6_ADDRSTRLEN];
	char prim[INET6_ADDRSTRLEN] = "";
	size_t off = 0;
	struct sockaddr *pa = NULL;
	int np = 0;

	paths[0] = '\0';
	off += snprintf(paths + off, sizeof(paths) - off, "[");
	if (have_assoc) {
		np = sctp_getpaddrs(sock, id, &pa);
		const char *p = (const char *)pa;
		for (int i = 0; i < np; i++) {
			const struct sockaddr *sa = (const struct sockaddr *)p;
			struct sctp_paddrinfo pi;
			socklen_t l = sizeof(pi);
			memset(&pi, 0, sizeof(pi));
			memcpy(&pi.spinfo_address, sa, sa_len(sa));
			pi.spinfo_assoc_id = id;
			const char *state = "?";
			int raw = -1;
			if (getsockopt(sock, IPPROTO_SCTP, SCTP_GET_PEER_ADDR_INFO, &pi, &l) == 0) {
				state = path_state_name(pi.spinfo_state);
				raw = pi.spinfo_state;
			}
			off += snprintf(paths + off, sizeof(paths) - off,
			                "%s{\"addr\":\"%s\",\"state\":\"%s\",\"srtt_ms\":%u,\"rto_ms\":%u,\"cwnd\":%u,\"mtu\":%u,\"state_raw\":%d}",
			                i ? "," : "", addr_str(sa, a, sizeof(a)), state,
			                pi.spinfo_srtt, pi.spinfo_rto, pi.spinfo_cwnd, pi.spinfo_mtu, raw);
			if (off >= sizeof(paths))
				break;
			p += sa_len(sa);
		}
		if (np > 0)
			sctp_freepaddrs(pa);
		primary_addr(id, prim, sizeof(prim));
	}
	if (off < sizeof(paths))
		snprintf(paths + off, sizeof(paths) - off, "]");
	emit("stats", "\"sent\":%llu,\"sent_bytes\":%llu,\"send_errors\":%llu,\"send_eagain\":%llu,"
	     "\"recv\":%llu,\"recv_bytes\":%llu,\"echoed\":%llu,\"echo_errors\":%llu,\"primary\":\"%s\",\"paths\":%s",
	     (unsigned long long)st.sent_msgs, (unsigned long long)st.sent_bytes,
	     (unsigned long long)st.send_errors, (unsigned long long)st.send_eagain,
	     (unsigned long long)st.recv_msgs, (unsigned long long)st.recv_bytes,
	     (unsigned long long)st.echo_msgs, (unsigned long long)st.echo_errors, prim, paths);
}

/* ---------- sysctls ---------- */
/* A net.sctp sysctl of this network namespace, -1 when unreadable. */
static long sysctl_sctp(const char *name)
{
	char path[128], buf[64];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/sys/net/sctp/%s", name);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	if (fgets(buf, sizeof(buf), f))
		v = strtol(buf, NULL, 10);
	fclose(f);
	return v;
}

static int write_sysctl_sctp(const char *name, unsigned v)
{
	char path[128];
	snprintf(path, sizeof(path), "/proc/sys/net/sctp/%s", name);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return -1;
	int r = fprintf(f, "%u\n", v) < 0 ? -1 : 0;
	if (fclose(f) != 0)
		r = -1;
	return r;
}

static void set_udp_port(void)
{
	if (write_sysctl_sctp("udp_port", cfg.udp_local) < 0) {
		logerr("cannot set net.sctp.udp_port=%u (%s): UDP encapsulation needs Linux 5.11+ and root",
		       cfg.udp_local, strerror(errno));
		exit(1);
	}
}

/* Waits for the socket to be readable, at most until `mono`; only until
 * `mono` while reading is paused (what is queued stays unread). */
static void wait_until(double mono)
{
	double d = mono - now_mono();
	int ms = d <= 0 ? 0 : (int)(d * 1000.0 + 0.999);
	struct pollfd pfd = { reading_paused ? -1 : sock, POLLIN, 0 };
	(void)poll(&pfd, 1, ms); /* EINTR from a signal: fine, the loop re-checks */
}

int main(int argc, char **argv)
{
	int family, code = 0;
	char buf[MAX_ADDRS * sizeof(struct sockaddr_in6)];
	char *payload;
	int setup = peer_setup(argc, argv, &family);

	if (setup >= 0)
		return setup;

	{
		char bj[1024], cj[1024] = "[]";
		char tmp[MAX_ADDRS * sizeof(struct sockaddr_in6)];
		struct utsname u;
		if (uname(&u) < 0)
			strcpy(u.release, "?");
		pack_addrs(cfg.bind, cfg.nbind, tmp);
		addrs_json((struct sockaddr *)tmp, cfg.nbind, bj, sizeof(bj));
		if (cfg.nconn) {
			pack_addrs(cfg.conn, cfg.nconn, tmp);
			addrs_json((struct sockaddr *)tmp, cfg.nconn, cj, sizeof(cj));
		}
		emit("start", "\"pid\":%d,\"mode\":\"%s\",\"udp_local\":%u,\"udp_remote\":%u,\"port\":%u,"
		     "\"bind\":%s,\"connect\":%s,\"rate\":%g,\"duration\":%g,\"size\":%u,\"ppid\":%u,"
		     "\"hb_interval_ms\":%u,\"rto_min_ms\":%u,\"rto_max_ms\":%u,\"rto_initial_ms\":%u,"
		     "\"path_max_retrans\":%u,\"assoc_max_retrans\":%u,\"echo\":%s,"
		     "\"stack\":\"linux\",\"kernel\":\"%s\",\"sysctl\":{\"pf_enable\":%ld,\"pf_retrans\":%ld,"
		     "\"ps_retrans\":%ld,\"pf_expose\":%ld,\"addip_enable\":%ld}",
		     (int)getpid(), mode_name(), cfg.udp_local, cfg.udp_remote, cfg.port, bj, cj,
		     cfg.rate, cfg.duration, cfg.size, cfg.ppid, cfg.hb_interval, cfg.rto_min, cfg.rto_max,
		     cfg.rto_initial, cfg.path_max_retrans, cfg.assoc_max_retrans,
		     cfg.echo && cfg.is_server ? "true" : "false", u.release,
		     sysctl_sctp("pf_enable"), sysctl_sctp("pf_retrans"), sysctl_sctp("ps_retrans"),
		     sysctl_sctp("pf_expose"), sysctl_sctp("addip_enable"));
	}

	sock = socket(family, SOCK_SEQPACKET, IPPROTO_SCTP);
	if (sock < 0) {
		logerr("socket(IPPROTO_SCTP): %s%s", strerror(errno),
		       errno == EPROTONOSUPPORT || errno == ESOCKTNOSUPPORT
		               ? " (this kernel has no SCTP: modprobe sctp)" : "");
		return 1;
	}
	configure_socket(family);
	if (cfg.rcvbuf) {
		/* Before listen/connect: an association takes its receive
		 * window from the socket's buffer when it is created. */
		int v = (int)cfg.rcvbuf;
		socklen_t l = sizeof(v);
		if (setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) < 0) {
			logerr("setsockopt SO_RCVBUF %u: %s", cfg.rcvbuf, strerror(errno));
			return 1;
		}
		if (getsockopt(sock, SOL_SOCKET, SO_RCVBUF, &v, &l) < 0)
			v = -1;
		emit("rcvbuf", "\"requested\":%u,\"sk_rcvbuf\":%d", cfg.rcvbuf, v);
	}

	pack_addrs(cfg.bind, cfg.nbind, buf);
	if (sctp_bindx(sock, (struct sockaddr *)buf, cfg.nbind, SCTP_BINDX_ADD_ADDR) < 0) {
		logerr("sctp_bindx: %s (are the addresses configured in this namespace?)", strerror(errno));
		close(sock);
		return 1;
	}
	if (fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK) < 0)
		logerr("O_NONBLOCK: %s", strerror(errno));

	if (cfg.is_server) {
		if (listen(sock, 1) < 0) {
			logerr("listen: %s", strerror(errno));
			return 1;
		}
		emit("listening", NULL);
	} else {
		sctp_assoc_t id = 0;
		if (cfg.listen_too && listen(sock, 1) < 0) {
			logerr("listen: %s", strerror(errno));
			return 1;
		}
		pack_addrs(cfg.conn, cfg.nconn, buf);
		if (sctp_connectx(sock, (struct sockaddr *)buf, cfg.nconn, &id) < 0 && errno != EINPROGRESS) {
			logerr("sctp_connectx: %s", strerror(errno));
			close(sock);
			return 2;
		}
		emit("connecting", "\"assoc_id\":%u", (unsigned)id);
	}

	payload = calloc(1, cfg.size);
	memset(payload + 4, 'x', cfg.size - 4);

	double t0 = now_mono();
	double next_stats = t0 + cfg.stats_interval;
	double next_send = 0, send_start = 0;
	uint32_t seq = 0;
	int shutting_down = 0;
	double shutdown_deadline = 0;
	char prev_primary[INET6_ADDRSTRLEN] = "";
	/* --pause-read: when reading stops (0: not yet scheduled) and starts again */
	double pause_at = 0, resume_at = 0;

	for (;;) {
		if (reading_paused && (now_mono() >= resume_at || stop_signal)) {
			/* a stop reads again: the SHUTDOWN's notifications are queued behind the DATA */
			reading_paused = 0;
			emit("resume_read", "\"paused_s\":%.3f", now_mono() - pause_at);
		}
		if (!reading_paused)
			drain_socket();
		double now = now_mono();
		int up_pending = st.up_pending;
		st.up_pending = 0;
		int established = st.established;
		int ended = st.ended;
		int have_assoc = st.have_assoc;
		sctp_assoc_t id = st.assoc_id;
		int end_code = st.end_code;

		if (up_pending) {
			configure_assoc(id);
			print_up(id);
			primary_addr(id, prev_primary, sizeof(prev_primary));
			if (!cfg.is_server && send_start == 0) {
				send_start = now;
				next_send = now;
			}
			if (cfg.pause_for > 0 && pause_at == 0)
				pause_at = now + cfg.pause_after;
		}
		if (pause_at > 0 && resume_at == 0 && now >= pause_at && !stop_signal) {
			/* once: the receive window fills with what is not read */
			reading_paused = 1;
			pause_at = now;
			resume_at = now + cfg.pause_for;
			emit("pause_read", "\"after_s\":%g,\"for_s\":%g", cfg.pause_after, cfg.pause_for);
		}

		if (ended) {
			if (cfg.is_server && !cfg.once && !shutting_down) {
				/* keep listening for the next association */
				st.ended = 0;
				st.have_assoc = 0;
				st.end_code = 0;
				have_assoc = 0;
				ended = 0;
			} else {
				code = shutting_down ? 0 : end_code;
				break;
			}
		}

		if (stop_signal && !shutting_down) {
			shutting_down = 1;
			shutdown_deadline = now + 5;
			emit("stopping", "\"signal\":%d", (int)stop_signal);
			if (established) {
				/* a zero-length message with SCTP_EOF starts the SHUTDOWN
				 * of this association (one-to-many socket) */
				if (send_msg(payload, 0, id, 0, 0, SCTP_EOF) < 0)
					logerr("graceful shutdown (SCTP_EOF): %s", strerror(errno));
			} else {
				break;
			}
		}
		if (!cfg.is_server && !shutting_down && send_start > 0 && cfg.duration > 0 &&
		    now - send_start >= cfg.duration) {
			stop_signal = SIGTERM; /* same path as a signal: graceful SHUTDOWN */
			continue;
		}
		if (shutting_down && now > shutdown_deadline) {
			logerr("graceful shutdown did not complete within 5 s, closing (ABORT)");
			code = 4;
			break;
		}
		if (!cfg.is_server && !have_assoc && !shutting_down && now - t0 > cfg.connect_timeout) {
			logerr("association not up after %g s", cfg.connect_timeout);
			emit("connect_timeout", "\"after_s\":%g", cfg.connect_timeout);
			code = 3;
			break;
		}

		/* client: scheduled address changes (ASCONF) */
		for (int i = 0; i < cfg.nat && established && !shutting_down; i++) {
			char a[INET6_ADDRSTRLEN];
			int r;
			if (cfg.at[i].done || now - send_start < cfg.at[i].t)
				continue;
			cfg.at[i].done = 1;
			addr_str((struct sockaddr *)&cfg.at[i].addr, a, sizeof(a));
			if (cfg.at[i].action == AT_PEERPRIM) {
				struct sctp_setpeerprim sp;
				memset(&sp, 0, sizeof(sp));
				sp.sspp_assoc_id = id;
				memcpy(&sp.sspp_addr, &cfg.at[i].addr, sa_len((struct sockaddr *)&cfg.at[i].addr));
				r = setsockopt(sock, IPPROTO_SCTP, SCTP_SET_PEER_PRIMARY_ADDR, &sp, sizeof(sp));
			} else {
				r = sctp_bindx(sock, (struct sockaddr *)&cfg.at[i].addr, 1,
				               cfg.at[i].action == AT_ADD ? SCTP_BINDX_ADD_ADDR : SCTP_BINDX_REM_ADDR);
			}
			emit("asconf_request", "\"action\":\"%s\",\"addr\":\"%s\",\"error\":%d",
			     cfg.at[i].action == AT_ADD ? "add" : cfg.at[i].action == AT_DEL ? "del" : "peer-primary",
			     a, r < 0 ? errno : 0);
		}

		/* client: paced DATA */
		if (!cfg.is_server && established && !shutting_down && cfg.rate > 0) {
			int burst = 0;
			while (now >= next_send && burst < 100) {
				uint32_t nseq = htonl(seq);
				memcpy(payload, &nseq, 4);
				ssize_t r = send_msg(payload, cfg.size, id, cfg.sid, htonl(cfg.ppid), 0);
				if (r < 0) {
					if (errno == EAGAIN || errno == EWOULDBLOCK)
						st.send_eagain++;
					else
						st.send_errors++;
				} else {
					st.sent_msgs++;
					st.sent_bytes += (uint64_t)r;
					seq++;
				}
				next_send += 1.0 / cfg.rate;
				burst++;
			}
			if (burst == 100)
				next_send = now + 1.0 / cfg.rate; /* fell far behind: do not flood */
		}

		if (have_assoc && !ended) {
			char prim[INET6_ADDRSTRLEN];
			if (primary_addr(id, prim, sizeof(prim)) == 0 && strcmp(prim, prev_primary)) {
				emit("primary", "\"addr\":\"%s\",\"previous\":\"%s\"", prim, prev_primary);
				strcpy(prev_primary, prim);
			}
		}

		if (cfg.stats_interval > 0 && now >= next_stats) {
			print_stats(id, have_assoc && !ended);
			next_stats += cfg.stats_interval;
			if (next_stats < now)
				next_stats = now + cfg.stats_interval;
		}

		double wake = now + 0.01;
		if (!cfg.is_server && established && !shutting_down && cfg.rate > 0 && next_send < wake)
			wake = next_send;
		wait_until(wake);
	}

	drain_socket();
	if (cfg.stats_interval > 0)
		print_stats(st.assoc_id, st.have_assoc && !st.ended);
	close(sock);
	emit("exit", "\"code\":%d,\"sent\":%llu,\"recv\":%llu,\"shutdown_complete\":%s", code,
	     (unsigned long long)st.sent_msgs, (unsigned long long)st.recv_msgs,
	     st.shutdown_comp ? "true" : "false");
	free(payload);
	return code;
}
