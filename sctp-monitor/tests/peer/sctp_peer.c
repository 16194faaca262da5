/*
 * sctp_peer: one end of ONE multihomed SCTP association over usrsctp
 * (the FreeBSD SCTP stack in user space; Debian package libusrsctp-dev).
 *
 * The kernel of the test machine has no SCTP, so this is the real SCTP
 * stack the sctp-monitor tests and the lab drive.  Everything it learns from
 * the stack is printed on stdout as JSON Lines (one object per line, flushed
 * at once), so scripts can compare the monitor's view with the stack's own.
 *
 *   sctp_peer server --bind 10.201.1.2,10.201.2.2 --port 5000
 *   sctp_peer client --bind 10.201.1.1,10.201.2.1 \
 *       --connect 10.201.1.2,10.201.2.2 --port 5000 --rate 50 --duration 30 \
 *       --hb-interval 200 --rto-min 100 --rto-max 400 --path-max-retrans 2
 *
 * Build: gcc -O2 -Wall -o sctp_peer sctp_peer.c -lusrsctp -lpthread
 * Needs root (CAP_NET_RAW) for raw IP sockets, or --udp-encap L:R for
 * SCTP over UDP (RFC 6951), which still opens the raw sockets if it can.
 *
 * Lines (every line has "ts": Unix time in seconds with microseconds,
 * CLOCK_REALTIME, the same clock tcpdump stamps packets with, and "role"):
 *   {"ev":"start", ...config}
 *   {"ev":"assoc_change","state":"COMM_UP|COMM_LOST|RESTART|SHUTDOWN_COMP|CANT_STR_ASSOC",...}
 *   {"ev":"up","assoc_id":N,"laddrs":[...],"paddrs":[...],"primary":"..."}
 *   {"ev":"peer_addr_change","addr":"...","state":"ADDR_UNREACHABLE|ADDR_AVAILABLE|...","error":N}
 *   {"ev":"primary","addr":"..."}            (primary destination changed, polled)
 *   {"ev":"asconf_request","action":"add|del|peer-primary","addr":"...","error":N}  (--at)
 *   {"ev":"set_primary","addr":"...","error":N}  (--at S:primary:ADDR)
 *   {"ev":"stats","sent":N,"recv":N,...,"paths":[{"addr","state","srtt_ms","rto_ms","cwnd","mtu"}]}
 *   {"ev":"shutdown_event"} {"ev":"remote_error",...} {"ev":"send_failed",...}
 *   {"ev":"exit","code":N,...}
 * Exit codes: 0 ok, 1 usage/setup error, 2 association could not start,
 * 3 connect timeout, 4 association lost (COMM_LOST / abort).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <usrsctp.h>

/* What peer_common.h takes from this peer. */
#define PEER_NAME "sctp_peer"
#define PEER_ADDR_PF 0x0007 /* SCTP_ADDR_PF (RFC 7829) */
#define PEER_AT_PRIMARY 1
#define PEER_THREADED 1 /* usrsctp calls receive_cb from its own threads */
#define PEER_ABORT 1    /* --abort-reason: SCTP_ABORT with the reason as the message */
#define PEER_USAGE_BINDX "usrsctp_bindx"
#define PEER_USAGE_CONNECTX "usrsctp_connectx"
#define PEER_USAGE_AT \
"                           on local ADDR (usrsctp_bindx / SCTP_SET_PEER_PRIMARY_ADDR: ASCONF),\n" \
"                           or primary on peer ADDR (SCTP_PRIMARY_ADDR: the local primary)\n"
#define PEER_USAGE_UDP \
"  --udp-encap L:R          SCTP over UDP (RFC 6951): local UDP port L, remote UDP port R\n"
#define PEER_USAGE_DEBUG \
"  --debug                  usrsctp debug output on stderr\n"
/* The stack's calls under the names peer_common.h uses. */
#define stack_getsockopt usrsctp_getsockopt
#define stack_setsockopt usrsctp_setsockopt
#define stack_getladdrs usrsctp_getladdrs
#define stack_freeladdrs usrsctp_freeladdrs
#define stack_getpaddrs usrsctp_getpaddrs
#define stack_freepaddrs usrsctp_freepaddrs
#define stack_prim sctp_setprim

static struct socket *sock;
#include "peer_common.h"

/* ---------- stack state ---------- */
static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;

static void debug_printf(const char *format, ...)
{
	va_list ap;
	if (!cfg.debug)
		return;
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
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
		pthread_mutex_lock(&st_lock);
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
		pthread_mutex_unlock(&st_lock);
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
		     n->sn_remote_error.sre_error, (unsigned)n->sn_remote_error.sre_assoc_id);
		break;
	case SCTP_SHUTDOWN_EVENT:
		emit("shutdown_event", "\"assoc_id\":%u", (unsigned)n->sn_shutdown_event.sse_assoc_id);
		break;
	case SCTP_SEND_FAILED_EVENT:
		emit("send_failed", "\"error\":%u,\"flags\":%u,\"assoc_id\":%u",
		     n->sn_send_failed_event.ssfe_error, n->sn_send_failed_event.ssfe_flags,
		     (unsigned)n->sn_send_failed_event.ssfe_assoc_id);
		break;
	case SCTP_ADAPTATION_INDICATION:
		emit("adaptation_indication", "\"ind\":%u", n->sn_adaptation_event.sai_adaptation_ind);
		break;
	default:
		emit("notification", "\"type\":%u", n->sn_header.sn_type);
		break;
	}
}

static int receive_cb(struct socket *so, union sctp_sockstore addr, void *data,
                      size_t datalen, struct sctp_rcvinfo rcv, int flags, void *ulp_info)
{
	(void)addr;
	(void)ulp_info;
	if (data == NULL) {
		/* socket closed under us */
		return 1;
	}
	if (flags & MSG_NOTIFICATION) {
		handle_notification((union sctp_notification *)data, datalen);
	} else {
		uint32_t seq = 0;
		if (datalen >= 4) {
			memcpy(&seq, data, 4);
			seq = ntohl(seq);
		}
		pthread_mutex_lock(&st_lock);
		st.recv_msgs++;
		st.recv_bytes += datalen;
		st.last_recv_seq = seq;
		pthread_mutex_unlock(&st_lock);
		if (cfg.is_server && cfg.echo && (flags & MSG_EOR)) {
			struct sctp_sndinfo snd;
			memset(&snd, 0, sizeof(snd));
			snd.snd_sid = rcv.rcv_sid;
			snd.snd_ppid = rcv.rcv_ppid; /* already network byte order */
			snd.snd_assoc_id = rcv.rcv_assoc_id;
			if (usrsctp_sendv(so, data, datalen, NULL, 0, &snd, sizeof(snd),
			                  SCTP_SENDV_SNDINFO, 0) < 0) {
				pthread_mutex_lock(&st_lock);
				st.echo_errors++;
				pthread_mutex_unlock(&st_lock);
			} else {
				pthread_mutex_lock(&st_lock);
				st.echo_msgs++;
				pthread_mutex_unlock(&st_lock);
			}
		}
	}
	free(data);
	return 1;
}

/* ---------- stack queries (called from the main thread only) ---------- */
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
		np = usrsctp_getpaddrs(sock, id, &pa);
		const char *p = (const char *)pa;
		for (int i = 0; i < np; i++) {
			const struct sockaddr *sa = (const struct sockaddr *)p;
			struct sctp_paddrinfo pi;
			socklen_t l = sizeof(pi);
			memset(&pi, 0, sizeof(pi));
			memcpy(&pi.spinfo_address, sa, sa_len(sa));
			pi.spinfo_assoc_id = id;
			const char *state = "?";
			if (usrsctp_getsockopt(sock, IPPROTO_SCTP, SCTP_GET_PEER_ADDR_INFO, &pi, &l) == 0) {
				if (pi.spinfo_state & SCTP_UNCONFIRMED)
					state = "unconfirmed";
				else if (pi.spinfo_state & SCTP_ACTIVE)
					state = "active";
				else if (pi.spinfo_state & SCTP_INACTIVE)
					state = "inactive";
				else if (pi.spinfo_state == 0x0004 /* SCTP_PF */)
					state = "potentially_failed";
				else
					state = "unknown";
			}
			off += snprintf(paths + off, sizeof(paths) - off,
			                "%s{\"addr\":\"%s\",\"state\":\"%s\",\"srtt_ms\":%u,\"rto_ms\":%u,\"cwnd\":%u,\"mtu\":%u}",
			                i ? "," : "", addr_str(sa, a, sizeof(a)), state,
			                pi.spinfo_srtt, pi.spinfo_rto, pi.spinfo_cwnd, pi.spinfo_mtu);
			if (off >= sizeof(paths))
				break;
			p += sa_len(sa);
		}
		if (np > 0)
			usrsctp_freepaddrs(pa);
		primary_addr(id, prim, sizeof(prim));
	}
	if (off < sizeof(paths))
		snprintf(paths + off, sizeof(paths) - off, "]");
	pthread_mutex_lock(&st_lock);
	uint64_t sm = st.sent_msgs, sb = st.sent_bytes, se = st.send_errors, sa_ = st.send_eagain;
	uint64_t rm = st.recv_msgs, rb = st.recv_bytes, em = st.echo_msgs, ee = st.echo_errors;
	pthread_mutex_unlock(&st_lock);
	emit("stats", "\"sent\":%llu,\"sent_bytes\":%llu,\"send_errors\":%llu,\"send_eagain\":%llu,"
	     "\"recv\":%llu,\"recv_bytes\":%llu,\"echoed\":%llu,\"echo_errors\":%llu,\"primary\":\"%s\",\"paths\":%s",
	     (unsigned long long)sm, (unsigned long long)sb, (unsigned long long)se, (unsigned long long)sa_,
	     (unsigned long long)rm, (unsigned long long)rb, (unsigned long long)em, (unsigned long long)ee,
	     prim, paths);
}

static void sleep_until(double mono)
{
	double d = mono - now_mono();
	if (d <= 0)
		return;
	struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
	nanosleep(&ts, NULL); /* interrupted by signals: fine, the loop re-checks */
}

int main(int argc, char **argv)
{
	int family, code = 0;
	char buf[MAX_ADDRS * sizeof(struct sockaddr_in6)];
	char *payload;
	int setup = peer_setup(argc, argv, &family);

	if (setup >= 0)
		return setup;

	if (!cfg.udp_local) {
		/* usrsctp silently runs without its raw sockets when it may not
		 * open them; then nothing is ever sent. Say so up front. */
		int fam = cfg.bind[0].ss_family;
		int fd = socket(fam, SOCK_RAW, IPPROTO_SCTP);
		if (fd < 0) {
			logerr("cannot open a raw %s SCTP socket (%s): raw mode needs root or CAP_NET_RAW; "
			       "use --udp-encap 9899:9899 to run unprivileged", fam == AF_INET6 ? "IPv6" : "IPv4",
			       strerror(errno));
			return 1;
		}
		close(fd);
	}

	/* Stack-wide defaults too, so the INIT itself already uses them. */
	usrsctp_init(cfg.udp_local, NULL, debug_printf);
	usrsctp_sysctl_set_sctp_rto_min_default(cfg.rto_min);
	usrsctp_sysctl_set_sctp_rto_max_default(cfg.rto_max);
	usrsctp_sysctl_set_sctp_rto_initial_default(cfg.rto_initial);
	usrsctp_sysctl_set_sctp_init_rto_max_default(cfg.rto_max);
	usrsctp_sysctl_set_sctp_heartbeat_interval_default(cfg.hb_interval);
	usrsctp_sysctl_set_sctp_path_rtx_max_default(cfg.path_max_retrans);
	usrsctp_sysctl_set_sctp_assoc_rtx_max_default(cfg.assoc_max_retrans);
	/* Real checksums on the wire: the monitor and tshark verify them. */
	usrsctp_sysctl_set_sctp_no_csum_on_loopback(0);
	/* ADD-IP (RFC 5061): on by default in usrsctp; said explicitly for --at */
	usrsctp_sysctl_set_sctp_asconf_enable(1);
	usrsctp_sysctl_set_sctp_auto_asconf(1);

	{
		char bj[1024], cj[1024] = "[]";
		char tmp[MAX_ADDRS * sizeof(struct sockaddr_in6)];
		addrs_json((struct sockaddr *)tmp, 0, bj, sizeof(bj));
		pack_addrs(cfg.bind, cfg.nbind, tmp);
		addrs_json((struct sockaddr *)tmp, cfg.nbind, bj, sizeof(bj));
		if (cfg.nconn) {
			pack_addrs(cfg.conn, cfg.nconn, tmp);
			addrs_json((struct sockaddr *)tmp, cfg.nconn, cj, sizeof(cj));
		}
		emit("start", "\"pid\":%d,\"mode\":\"%s\",\"udp_local\":%u,\"udp_remote\":%u,\"port\":%u,"
		     "\"bind\":%s,\"connect\":%s,\"rate\":%g,\"duration\":%g,\"size\":%u,\"ppid\":%u,"
		     "\"hb_interval_ms\":%u,\"rto_min_ms\":%u,\"rto_max_ms\":%u,\"rto_initial_ms\":%u,"
		     "\"path_max_retrans\":%u,\"assoc_max_retrans\":%u,\"echo\":%s",
		     (int)getpid(), mode_name(), cfg.udp_local, cfg.udp_remote, cfg.port, bj, cj,
		     cfg.rate, cfg.duration, cfg.size, cfg.ppid, cfg.hb_interval, cfg.rto_min, cfg.rto_max,
		     cfg.rto_initial, cfg.path_max_retrans, cfg.assoc_max_retrans,
		     cfg.echo && cfg.is_server ? "true" : "false");
	}

	sock = usrsctp_socket(family, SOCK_SEQPACKET, IPPROTO_SCTP, receive_cb, NULL, 0, NULL);
	if (sock == NULL) {
		logerr("usrsctp_socket: %s (raw IP sockets need root / CAP_NET_RAW)", strerror(errno));
		return 1;
	}
	configure_socket(family);

	size_t blen = pack_addrs(cfg.bind, cfg.nbind, buf);
	(void)blen;
	if (usrsctp_bindx(sock, (struct sockaddr *)buf, cfg.nbind, SCTP_BINDX_ADD_ADDR) < 0) {
		logerr("usrsctp_bindx: %s (are the addresses configured in this namespace? "
		       "usrsctp reads interface addresses only at start-up)", strerror(errno));
		usrsctp_close(sock);
		return 1;
	}

	if (cfg.is_server) {
		if (usrsctp_listen(sock, 1) < 0) {
			logerr("usrsctp_listen: %s", strerror(errno));
			return 1;
		}
		emit("listening", NULL);
	} else {
		sctp_assoc_t id = 0;
		if (cfg.listen_too && usrsctp_listen(sock, 1) < 0) {
			logerr("usrsctp_listen: %s", strerror(errno));
			return 1;
		}
		pack_addrs(cfg.conn, cfg.nconn, buf);
		if (usrsctp_set_non_blocking(sock, 1) < 0)
			logerr("usrsctp_set_non_blocking: %s", strerror(errno));
		if (usrsctp_connectx(sock, (struct sockaddr *)buf, cfg.nconn, &id) < 0 &&
		    errno != EINPROGRESS) {
			logerr("usrsctp_connectx: %s", strerror(errno));
			usrsctp_close(sock);
			return 2;
		}
		emit("connecting", "\"assoc_id\":%u", (unsigned)id);
	}
	usrsctp_set_non_blocking(sock, 1);

	payload = calloc(1, cfg.size);
	memset(payload + 4, 'x', cfg.size - 4);

	double t0 = now_mono();
	double next_stats = t0 + cfg.stats_interval;
	double next_send = 0, send_start = 0;
	uint32_t seq = 0;
	int shutting_down = 0;
	double shutdown_deadline = 0;
	char prev_primary[INET6_ADDRSTRLEN] = "";

	for (;;) {
		double now = now_mono();
		pthread_mutex_lock(&st_lock);
		int up_pending = st.up_pending;
		st.up_pending = 0;
		int established = st.established;
		int ended = st.ended;
		int have_assoc = st.have_assoc;
		sctp_assoc_t id = st.assoc_id;
		int end_code = st.end_code;
		pthread_mutex_unlock(&st_lock);

		if (up_pending) {
			configure_assoc(id);
			print_up(id);
			primary_addr(id, prev_primary, sizeof(prev_primary));
			if (!cfg.is_server && send_start == 0) {
				send_start = now;
				next_send = now;
			}
		}

		if (ended) {
			if (cfg.is_server && !cfg.once && !shutting_down) {
				/* keep listening for the next association */
				pthread_mutex_lock(&st_lock);
				st.ended = 0;
				st.have_assoc = 0;
				st.end_code = 0;
				pthread_mutex_unlock(&st_lock);
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
				struct sctp_sndinfo snd;
				memset(&snd, 0, sizeof(snd));
				snd.snd_flags = SCTP_EOF;
				snd.snd_assoc_id = id;
				/* a zero-length message with SCTP_EOF starts the SHUTDOWN
				 * of this association (one-to-many socket); the buffer
				 * pointer must not be NULL */
				if (usrsctp_sendv(sock, payload, 0, NULL, 0, &snd, sizeof(snd), SCTP_SENDV_SNDINFO, 0) < 0)
					logerr("graceful shutdown (SCTP_EOF): %s", strerror(errno));
			} else {
				break;
			}
		}
		if (!cfg.is_server && !shutting_down && send_start > 0 && cfg.duration > 0 &&
		    now - send_start >= cfg.duration) {
			if (cfg.abort_reason && established) {
				/* SCTP_ABORT: the message is the Upper Layer Abort Reason
				 * of a User-Initiated Abort cause (RFC 9260 3.3.10.12) */
				struct sctp_sndinfo snd;
				memset(&snd, 0, sizeof(snd));
				snd.snd_flags = SCTP_ABORT;
				snd.snd_assoc_id = id;
				if (usrsctp_sendv(sock, cfg.abort_reason, strlen(cfg.abort_reason), NULL, 0, &snd,
						  sizeof(snd), SCTP_SENDV_SNDINFO, 0) < 0)
					logerr("abort (SCTP_ABORT): %s", strerror(errno));
				emit("aborted", "\"reason_bytes\":%zu", strlen(cfg.abort_reason));
				code = 0;
				break;
			}
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

		/* client: scheduled address changes (ASCONF) and primary choices */
		for (int i = 0; i < cfg.nat && !cfg.is_server && established && !shutting_down; i++) {
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
				r = usrsctp_setsockopt(sock, IPPROTO_SCTP, SCTP_SET_PEER_PRIMARY_ADDR, &sp, sizeof(sp));
			} else if (cfg.at[i].action == AT_PRIM) {
				struct sctp_setprim sp;
				memset(&sp, 0, sizeof(sp));
				sp.ssp_assoc_id = id;
				memcpy(&sp.ssp_addr, &cfg.at[i].addr, sa_len((struct sockaddr *)&cfg.at[i].addr));
				r = usrsctp_setsockopt(sock, IPPROTO_SCTP, SCTP_PRIMARY_ADDR, &sp, sizeof(sp));
			} else {
				r = usrsctp_bindx(sock, (struct sockaddr *)&cfg.at[i].addr, 1,
				                  cfg.at[i].action == AT_ADD ? SCTP_BINDX_ADD_ADDR : SCTP_BINDX_REM_ADDR);
			}
			if (cfg.at[i].action == AT_PRIM)
				emit("set_primary", "\"addr\":\"%s\",\"error\":%d", a, r < 0 ? errno : 0);
			else
				emit("asconf_request", "\"action\":\"%s\",\"addr\":\"%s\",\"error\":%d",
				     cfg.at[i].action == AT_ADD ? "add" : cfg.at[i].action == AT_DEL ? "del" : "peer-primary",
				     a, r < 0 ? errno : 0);
		}

		/* client: paced DATA */
		if (!cfg.is_server && established && !shutting_down && cfg.rate > 0) {
			int burst = 0;
			while (now >= next_send && burst < 100) {
				struct sctp_sndinfo snd;
				uint32_t nseq = htonl(seq);
				memcpy(payload, &nseq, 4);
				memset(&snd, 0, sizeof(snd));
				snd.snd_sid = cfg.sid;
				snd.snd_ppid = htonl(cfg.ppid);
				snd.snd_assoc_id = id;
				ssize_t r = usrsctp_sendv(sock, payload, cfg.size, NULL, 0, &snd, sizeof(snd),
				                          SCTP_SENDV_SNDINFO, 0);
				pthread_mutex_lock(&st_lock);
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
				pthread_mutex_unlock(&st_lock);
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
		sleep_until(wake);
	}

	if (cfg.stats_interval > 0) {
		pthread_mutex_lock(&st_lock);
		int ha = st.have_assoc && !st.ended;
		sctp_assoc_t id = st.assoc_id;
		pthread_mutex_unlock(&st_lock);
		print_stats(id, ha);
	}
	usrsctp_close(sock);
	for (int i = 0; i < 30 && usrsctp_finish() != 0; i++)
		usleep(100000);
	pthread_mutex_lock(&st_lock);
	emit("exit", "\"code\":%d,\"sent\":%llu,\"recv\":%llu,\"shutdown_complete\":%s", code,
	     (unsigned long long)st.sent_msgs, (unsigned long long)st.recv_msgs,
	     st.shutdown_comp ? "true" : "false");
	pthread_mutex_unlock(&st_lock);
	free(payload);
	return code;
}
