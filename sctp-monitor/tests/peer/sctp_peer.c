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

#define MAX_ADDRS 16
#define MAX_MSG 65536

/* ---------- configuration ---------- */
static struct {
	int is_server;
	struct sockaddr_storage bind[MAX_ADDRS];
	int nbind;
	struct sockaddr_storage conn[MAX_ADDRS];
	int nconn;
	uint16_t port;
	double rate;          /* messages per second (client) */
	double duration;      /* seconds of sending, 0 = until signal */
	uint32_t size;        /* payload bytes */
	uint32_t ppid;
	uint16_t sid;
	uint32_t hb_interval; /* ms */
	uint32_t rto_min, rto_max, rto_initial; /* ms */
	uint32_t path_max_retrans;
	uint32_t assoc_max_retrans;
	uint32_t init_max_attempts;
	uint16_t udp_local, udp_remote;
	int echo;
	int once;
	double stats_interval; /* s, 0 = off */
	double connect_timeout;
	int debug;
	struct sockaddr_storage primary;
	int have_primary;
	int listen_too;       /* client: also listen (simultaneous open, INIT collision) */
	struct {              /* client: --at S:ACTION:ADDR, S seconds after COMM_UP */
		double t;
		int action;   /* AT_ADD, AT_DEL, AT_PEERPRIM, AT_PRIM */
		struct sockaddr_storage addr;
		int done;
	} at[8];
	int nat;
} cfg;

enum { AT_ADD = 1, AT_DEL, AT_PEERPRIM, AT_PRIM };

/* ---------- shared state ---------- */
static volatile sig_atomic_t stop_signal = 0;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	sctp_assoc_t assoc_id;
	int have_assoc;
	int up_pending;    /* COMM_UP / RESTART seen, "up" line not yet printed */
	int established;
	int ended;         /* SHUTDOWN_COMP, COMM_LOST, CANT_STR_ASSOC */
	int end_code;
	int shutdown_comp;
	uint64_t sent_msgs, sent_bytes, send_errors, send_eagain;
	uint64_t recv_msgs, recv_bytes, echo_msgs, echo_errors;
	uint32_t last_recv_seq;
} st;

static struct socket *sock;

/* ---------- output helpers ---------- */
static double now_real(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Emit one JSON line; fmt is the body after "ts" and "role" (no braces). */
static void emit(const char *ev, const char *fmt, ...)
{
	char body[8192];
	va_list ap;

	body[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(body, sizeof(body), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_lock(&out_lock);
	fprintf(stdout, "{\"ts\":%.6f,\"role\":\"%s\",\"ev\":\"%s\"%s%s}\n",
	        now_real(), cfg.is_server ? "server" : "client", ev,
	        body[0] ? "," : "", body);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static void logerr(const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&out_lock);
	fprintf(stderr, "sctp_peer: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	fflush(stderr);
	pthread_mutex_unlock(&out_lock);
}

static void debug_printf(const char *format, ...)
{
	va_list ap;
	if (!cfg.debug)
		return;
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
}

static const char *addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	switch (sa->sa_family) {
	case AF_INET:
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, len);
	case AF_INET6: {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			return inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, len);
		return inet_ntop(AF_INET6, &s6->sin6_addr, buf, len);
	}
	default:
		snprintf(buf, len, "af%d", sa->sa_family);
		return buf;
	}
}

static socklen_t sa_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Append a JSON array of addresses to buf. Returns number of addresses. */
static int addrs_json(const struct sockaddr *addrs, int n, char *buf, size_t len)
{
	const char *p = (const char *)addrs;
	size_t off = 0;
	char a[INET6_ADDRSTRLEN];
	int i;

	off += snprintf(buf + off, len - off, "[");
	for (i = 0; i < n && off < len; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)p;
		off += snprintf(buf + off, len - off, "%s\"%s\"", i ? "," : "", addr_str(sa, a, sizeof(a)));
		p += sa_len(sa);
	}
	if (off < len)
		snprintf(buf + off, len - off, "]");
	return n;
}

static const char *paddr_state_name(uint32_t s)
{
	switch (s) {
	case SCTP_ADDR_AVAILABLE: return "ADDR_AVAILABLE";
	case SCTP_ADDR_UNREACHABLE: return "ADDR_UNREACHABLE";
	case SCTP_ADDR_REMOVED: return "ADDR_REMOVED";
	case SCTP_ADDR_ADDED: return "ADDR_ADDED";
	case SCTP_ADDR_MADE_PRIM: return "ADDR_MADE_PRIM";
	case SCTP_ADDR_CONFIRMED: return "ADDR_CONFIRMED";
	case 0x0007: return "ADDR_POTENTIALLY_FAILED"; /* SCTP_ADDR_PF (RFC 7829) */
	default: return "UNKNOWN";
	}
}

static const char *assoc_state_name(uint16_t s)
{
	switch (s) {
	case SCTP_COMM_UP: return "COMM_UP";
	case SCTP_COMM_LOST: return "COMM_LOST";
	case SCTP_RESTART: return "RESTART";
	case SCTP_SHUTDOWN_COMP: return "SHUTDOWN_COMP";
	case SCTP_CANT_STR_ASSOC: return "CANT_STR_ASSOC";
	default: return "UNKNOWN";
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

/* ---------- parsing ---------- */
static void usage(FILE *f)
{
	fprintf(f,
"usage: sctp_peer server|client [options]\n"
"  --bind A[,B...]          local addresses (IPv4 and/or IPv6), bound with usrsctp_bindx (required)\n"
"  --connect A[,B...]       client: peer addresses, given to usrsctp_connectx; the first is primary\n"
"  --port N                 SCTP port of both ends (default 5000)\n"
"  --rate N                 client: DATA messages per second (default 50)\n"
"  --duration S             client: seconds to send, then graceful SHUTDOWN (default 0 = until signal)\n"
"  --size N                 payload bytes per message (default 100, min 8)\n"
"  --ppid N                 payload protocol id (default 60 = NGAP)\n"
"  --stream N               stream id (default 0)\n"
"  --hb-interval MS         heartbeat interval on every path (default 1000)\n"
"  --rto-min MS --rto-max MS --rto-initial MS   (defaults 100 / 400 / rto-max)\n"
"  --path-max-retrans N     Path.Max.Retrans (default 2)\n"
"  --assoc-max-retrans N    Association.Max.Retrans (default 10)\n"
"  --init-max-attempts N    INIT retransmissions before giving up (default 8)\n"
"  --primary ADDR           client: set this peer address as primary after COMM_UP\n"
"  --listen                 client: also listen (simultaneous open: INIT collision)\n"
"  --at S:ACTION:ADDR       client, repeatable: S s after COMM_UP, ACTION add|del|peer-primary\n"
"                           on local ADDR (usrsctp_bindx / SCTP_SET_PEER_PRIMARY_ADDR: ASCONF),\n"
"                           or primary on peer ADDR (SCTP_PRIMARY_ADDR: the local primary)\n"
"  --udp-encap L:R          SCTP over UDP (RFC 6951): local UDP port L, remote UDP port R\n"
"  --no-echo                server: do not echo DATA back (default: echo)\n"
"  --once                   server: exit when the association ends\n"
"  --stats-interval S       seconds between \"stats\" lines (default 1, 0 = off)\n"
"  --connect-timeout S      client: give up if not up after S seconds (default 15)\n"
"  --debug                  usrsctp debug output on stderr\n");
}

static int parse_addr(const char *s, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	struct sockaddr_in *s4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return 0;
	}
	return -1;
}

static int parse_list(const char *arg, struct sockaddr_storage *out, int max)
{
	char *dup = strdup(arg), *save = NULL, *tok;
	int n = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == max || parse_addr(tok, &out[n]) < 0) {
			fprintf(stderr, "sctp_peer: bad or too many addresses: '%s'\n", tok);
			free(dup);
			return -1;
		}
		n++;
	}
	free(dup);
	return n;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* Pack addresses back to back (as bindx/connectx want). */
static size_t pack_addrs(struct sockaddr_storage *in, int n, char *buf)
{
	size_t off = 0;
	for (int i = 0; i < n; i++) {
		socklen_t l = sa_len((struct sockaddr *)&in[i]);
		memcpy(buf + off, &in[i], l);
		off += l;
	}
	return off;
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

static double parse_num(const char *opt, const char *v)
{
	char *end;
	double d = strtod(v, &end);
	if (end == v || *end != '\0' || d < 0) {
		fprintf(stderr, "sctp_peer: bad value for %s: '%s'\n", opt, v);
		exit(1);
	}
	return d;
}

/* ---------- stack queries (called from the main thread only) ---------- */
static int primary_addr(sctp_assoc_t id, char *buf, size_t len)
{
	struct sctp_setprim sp;
	socklen_t l = sizeof(sp);
	memset(&sp, 0, sizeof(sp));
	sp.ssp_assoc_id = id;
	if (usrsctp_getsockopt(sock, IPPROTO_SCTP, SCTP_PRIMARY_ADDR, &sp, &l) < 0) {
		snprintf(buf, len, "?");
		return -1;
	}
	addr_str((struct sockaddr *)&sp.ssp_addr, buf, len);
	return 0;
}

static void print_up(sctp_assoc_t id)
{
	struct sockaddr *la = NULL, *pa = NULL;
	char lj[2048] = "[]", pj[2048] = "[]", prim[INET6_ADDRSTRLEN];
	int nl, np;

	nl = usrsctp_getladdrs(sock, id, &la);
	np = usrsctp_getpaddrs(sock, id, &pa);
	if (nl > 0)
		addrs_json(la, nl, lj, sizeof(lj));
	if (np > 0)
		addrs_json(pa, np, pj, sizeof(pj));
	primary_addr(id, prim, sizeof(prim));
	emit("up", "\"assoc_id\":%u,\"port\":%u,\"laddrs\":%s,\"paddrs\":%s,\"primary\":\"%s\"",
	     (unsigned)id, cfg.port, lj, pj, prim);
	if (nl > 0)
		usrsctp_freeladdrs(la);
	if (np > 0)
		usrsctp_freepaddrs(pa);
}

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

/* ---------- socket set-up ---------- */
static void sockopt(int opt, const void *v, socklen_t l, const char *name)
{
	if (usrsctp_setsockopt(sock, IPPROTO_SCTP, opt, v, l) < 0) {
		logerr("setsockopt %s: %s", name, strerror(errno));
		exit(1);
	}
}

static void configure_socket(int family)
{
	const int on = 1;
	uint16_t events[] = { SCTP_ASSOC_CHANGE, SCTP_PEER_ADDR_CHANGE, SCTP_REMOTE_ERROR,
	                      SCTP_SHUTDOWN_EVENT, SCTP_SEND_FAILED_EVENT, SCTP_ADAPTATION_INDICATION };
	struct sctp_event ev;
	struct sctp_rtoinfo rto;
	struct sctp_paddrparams pp;
	struct sctp_assocparams ap;
	struct sctp_initmsg im;

	sockopt(SCTP_RECVRCVINFO, &on, sizeof(on), "SCTP_RECVRCVINFO");
	sockopt(SCTP_NODELAY, &on, sizeof(on), "SCTP_NODELAY");

	memset(&ev, 0, sizeof(ev));
	ev.se_assoc_id = SCTP_FUTURE_ASSOC;
	ev.se_on = 1;
	for (unsigned i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		ev.se_type = events[i];
		sockopt(SCTP_EVENT, &ev, sizeof(ev), "SCTP_EVENT");
	}

	memset(&rto, 0, sizeof(rto));
	rto.srto_assoc_id = SCTP_FUTURE_ASSOC;
	rto.srto_initial = cfg.rto_initial;
	rto.srto_min = cfg.rto_min;
	rto.srto_max = cfg.rto_max;
	sockopt(SCTP_RTOINFO, &rto, sizeof(rto), "SCTP_RTOINFO");

	memset(&ap, 0, sizeof(ap));
	ap.sasoc_assoc_id = SCTP_FUTURE_ASSOC;
	ap.sasoc_asocmaxrxt = (uint16_t)cfg.assoc_max_retrans;
	sockopt(SCTP_ASSOCINFO, &ap, sizeof(ap), "SCTP_ASSOCINFO");

	memset(&im, 0, sizeof(im));
	im.sinit_num_ostreams = 4;
	im.sinit_max_instreams = 4;
	im.sinit_max_attempts = (uint16_t)cfg.init_max_attempts;
	im.sinit_max_init_timeo = (uint16_t)(cfg.rto_max > 65535 ? 65535 : cfg.rto_max);
	sockopt(SCTP_INITMSG, &im, sizeof(im), "SCTP_INITMSG");

	memset(&pp, 0, sizeof(pp));
	pp.spp_address.ss_family = (sa_family_t)family; /* wildcard: every path */
	pp.spp_assoc_id = SCTP_FUTURE_ASSOC;
	pp.spp_hbinterval = cfg.hb_interval;
	pp.spp_pathmaxrxt = (uint16_t)cfg.path_max_retrans;
	pp.spp_flags = SPP_HB_ENABLE;
	sockopt(SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp), "SCTP_PEER_ADDR_PARAMS");

	if (cfg.udp_local) {
		struct sctp_udpencaps enc;
		memset(&enc, 0, sizeof(enc));
		enc.sue_address.ss_family = (sa_family_t)family; /* wildcard */
		enc.sue_assoc_id = SCTP_FUTURE_ASSOC;
		enc.sue_port = htons(cfg.udp_remote);
		sockopt(SCTP_REMOTE_UDP_ENCAPS_PORT, &enc, sizeof(enc), "SCTP_REMOTE_UDP_ENCAPS_PORT");
	}
}

/* Apply per-association parameters again after COMM_UP: SCTP_FUTURE_ASSOC
 * values are inherited, but the heartbeat/path settings of each peer address
 * are re-applied explicitly so every path certainly has them. */
static void configure_assoc(sctp_assoc_t id)
{
	struct sockaddr *pa = NULL;
	int np = usrsctp_getpaddrs(sock, id, &pa);
	const char *p = (const char *)pa;
	for (int i = 0; i < np; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)p;
		struct sctp_paddrparams pp;
		memset(&pp, 0, sizeof(pp));
		memcpy(&pp.spp_address, sa, sa_len(sa));
		pp.spp_assoc_id = id;
		pp.spp_hbinterval = cfg.hb_interval;
		pp.spp_pathmaxrxt = (uint16_t)cfg.path_max_retrans;
		pp.spp_flags = SPP_HB_ENABLE;
		if (usrsctp_setsockopt(sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp)) < 0)
			logerr("SCTP_PEER_ADDR_PARAMS for path %d: %s", i, strerror(errno));
		p += sa_len(sa);
	}
	if (np > 0)
		usrsctp_freepaddrs(pa);
	if (cfg.have_primary && !cfg.is_server) {
		struct sctp_setprim sp;
		memset(&sp, 0, sizeof(sp));
		memcpy(&sp.ssp_addr, &cfg.primary, sa_len((struct sockaddr *)&cfg.primary));
		sp.ssp_assoc_id = id;
		if (usrsctp_setsockopt(sock, IPPROTO_SCTP, SCTP_PRIMARY_ADDR, &sp, sizeof(sp)) < 0)
			logerr("SCTP_PRIMARY_ADDR: %s", strerror(errno));
	}
}

static void sleep_until(double mono)
{
	double d = mono - now_mono();
	if (d <= 0)
		return;
	struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
	nanosleep(&ts, NULL); /* interrupted by signals: fine, the loop re-checks */
}

static const char *mode_name(void)
{
	return cfg.udp_local ? "udp" : "raw";
}

int main(int argc, char **argv)
{
	enum { O_BIND = 1, O_CONNECT, O_PORT, O_RATE, O_DURATION, O_SIZE, O_PPID, O_STREAM,
	       O_HB, O_RTOMIN, O_RTOMAX, O_RTOINIT, O_PMR, O_AMR, O_INITMAX, O_PRIMARY, O_UDP,
	       O_NOECHO, O_ONCE, O_STATS, O_CTIMEOUT, O_DEBUG, O_HELP, O_LISTEN, O_AT };
	static const struct option opts[] = {
		{ "bind", required_argument, 0, O_BIND },
		{ "connect", required_argument, 0, O_CONNECT },
		{ "port", required_argument, 0, O_PORT },
		{ "rate", required_argument, 0, O_RATE },
		{ "duration", required_argument, 0, O_DURATION },
		{ "size", required_argument, 0, O_SIZE },
		{ "ppid", required_argument, 0, O_PPID },
		{ "stream", required_argument, 0, O_STREAM },
		{ "hb-interval", required_argument, 0, O_HB },
		{ "rto-min", required_argument, 0, O_RTOMIN },
		{ "rto-max", required_argument, 0, O_RTOMAX },
		{ "rto-initial", required_argument, 0, O_RTOINIT },
		{ "path-max-retrans", required_argument, 0, O_PMR },
		{ "assoc-max-retrans", required_argument, 0, O_AMR },
		{ "init-max-attempts", required_argument, 0, O_INITMAX },
		{ "primary", required_argument, 0, O_PRIMARY },
		{ "udp-encap", required_argument, 0, O_UDP },
		{ "no-echo", no_argument, 0, O_NOECHO },
		{ "once", no_argument, 0, O_ONCE },
		{ "stats-interval", required_argument, 0, O_STATS },
		{ "connect-timeout", required_argument, 0, O_CTIMEOUT },
		{ "debug", no_argument, 0, O_DEBUG },
		{ "listen", no_argument, 0, O_LISTEN },
		{ "at", required_argument, 0, O_AT },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 }
	};
	int c, family, code = 0;
	char buf[MAX_ADDRS * sizeof(struct sockaddr_in6)];
	char *payload;

	if (argc < 2 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
		usage(argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? stdout : stderr);
		return argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) ? 0 : 1;
	}
	cfg.is_server = !strcmp(argv[1], "server");
	cfg.port = 5000;
	cfg.rate = 50;
	cfg.size = 100;
	cfg.ppid = 60;
	cfg.hb_interval = 1000;
	cfg.rto_min = 100;
	cfg.rto_max = 400;
	cfg.path_max_retrans = 2;
	cfg.assoc_max_retrans = 10;
	cfg.init_max_attempts = 8;
	cfg.echo = 1;
	cfg.stats_interval = 1;
	cfg.connect_timeout = 15;

	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_BIND:
			if ((cfg.nbind = parse_list(optarg, cfg.bind, MAX_ADDRS)) < 0)
				return 1;
			break;
		case O_CONNECT:
			if ((cfg.nconn = parse_list(optarg, cfg.conn, MAX_ADDRS)) < 0)
				return 1;
			break;
		case O_PORT: cfg.port = (uint16_t)parse_num("--port", optarg); break;
		case O_RATE: cfg.rate = parse_num("--rate", optarg); break;
		case O_DURATION: cfg.duration = parse_num("--duration", optarg); break;
		case O_SIZE: cfg.size = (uint32_t)parse_num("--size", optarg); break;
		case O_PPID: cfg.ppid = (uint32_t)parse_num("--ppid", optarg); break;
		case O_STREAM: cfg.sid = (uint16_t)parse_num("--stream", optarg); break;
		case O_HB: cfg.hb_interval = (uint32_t)parse_num("--hb-interval", optarg); break;
		case O_RTOMIN: cfg.rto_min = (uint32_t)parse_num("--rto-min", optarg); break;
		case O_RTOMAX: cfg.rto_max = (uint32_t)parse_num("--rto-max", optarg); break;
		case O_RTOINIT: cfg.rto_initial = (uint32_t)parse_num("--rto-initial", optarg); break;
		case O_PMR: cfg.path_max_retrans = (uint32_t)parse_num("--path-max-retrans", optarg); break;
		case O_AMR: cfg.assoc_max_retrans = (uint32_t)parse_num("--assoc-max-retrans", optarg); break;
		case O_INITMAX: cfg.init_max_attempts = (uint32_t)parse_num("--init-max-attempts", optarg); break;
		case O_PRIMARY:
			if (parse_addr(optarg, &cfg.primary) < 0) {
				fprintf(stderr, "sctp_peer: bad --primary '%s'\n", optarg);
				return 1;
			}
			cfg.have_primary = 1;
			break;
		case O_UDP: {
			unsigned l, r;
			if (sscanf(optarg, "%u:%u", &l, &r) != 2 || !l || !r || l > 65535 || r > 65535) {
				fprintf(stderr, "sctp_peer: --udp-encap wants LOCALPORT:REMOTEPORT, e.g. 9899:9899\n");
				return 1;
			}
			cfg.udp_local = (uint16_t)l;
			cfg.udp_remote = (uint16_t)r;
			break;
		}
		case O_NOECHO: cfg.echo = 0; break;
		case O_ONCE: cfg.once = 1; break;
		case O_STATS: cfg.stats_interval = parse_num("--stats-interval", optarg); break;
		case O_CTIMEOUT: cfg.connect_timeout = parse_num("--connect-timeout", optarg); break;
		case O_DEBUG: cfg.debug = 1; break;
		case O_LISTEN: cfg.listen_too = 1; break;
		case O_AT: {
			char *c1 = strchr(optarg, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			if (cfg.nat == 8 || !c1 || !c2) {
				fprintf(stderr, "sctp_peer: --at wants S:add|del|peer-primary|primary:ADDR (at most 8)\n");
				return 1;
			}
			*c1 = *c2 = '\0';
			cfg.at[cfg.nat].t = parse_num("--at", optarg);
			if (!strcmp(c1 + 1, "add"))
				cfg.at[cfg.nat].action = AT_ADD;
			else if (!strcmp(c1 + 1, "del"))
				cfg.at[cfg.nat].action = AT_DEL;
			else if (!strcmp(c1 + 1, "peer-primary"))
				cfg.at[cfg.nat].action = AT_PEERPRIM;
			else if (!strcmp(c1 + 1, "primary"))
				cfg.at[cfg.nat].action = AT_PRIM;
			if (!cfg.at[cfg.nat].action || parse_addr(c2 + 1, &cfg.at[cfg.nat].addr) < 0) {
				fprintf(stderr, "sctp_peer: bad --at action or address\n");
				return 1;
			}
			cfg.nat++;
			break;
		}
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "sctp_peer: unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (cfg.nbind == 0) {
		fprintf(stderr, "sctp_peer: --bind is required\n");
		return 1;
	}
	if (!cfg.is_server && cfg.nconn == 0) {
		fprintf(stderr, "sctp_peer: client needs --connect\n");
		return 1;
	}
	if (cfg.rto_initial == 0)
		cfg.rto_initial = cfg.rto_max;
	if (cfg.rto_min > cfg.rto_max || cfg.rto_initial < cfg.rto_min || cfg.rto_initial > cfg.rto_max) {
		fprintf(stderr, "sctp_peer: need rto-min <= rto-initial <= rto-max\n");
		return 1;
	}
	if (cfg.size < 8)
		cfg.size = 8;
	if (cfg.size > MAX_MSG)
		cfg.size = MAX_MSG;

	family = AF_INET;
	for (int i = 0; i < cfg.nbind; i++)
		if (cfg.bind[i].ss_family == AF_INET6)
			family = AF_INET6;
	for (int i = 0; i < cfg.nconn; i++)
		if (cfg.conn[i].ss_family == AF_INET6)
			family = AF_INET6;
	for (int i = 0; i < cfg.nbind; i++)
		set_port(&cfg.bind[i], cfg.port);
	for (int i = 0; i < cfg.nconn; i++)
		set_port(&cfg.conn[i], cfg.port);
	for (int i = 0; i < cfg.nat; i++)
		set_port(&cfg.at[i].addr, cfg.port);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

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
