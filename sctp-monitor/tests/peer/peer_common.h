/*
 * peer_common.h: what the usrsctp peer (sctp_peer.c) and the kernel-SCTP
 * peer (lksctp_peer.c) share: the configuration and its command line, the
 * usage text, address parsing, time stamps and the JSON Lines helpers.
 * Each peer is one translation unit and includes this header once, after
 * its stack's own header (usrsctp.h or netinet/sctp.h), having defined:
 *
 *   PEER_NAME          the program's name in messages ("sctp_peer")
 *   PEER_ADDR_PF       the SCTP_PEER_ADDR_CHANGE state "potentially failed"
 *   PEER_AT_PRIMARY    1 when --at takes the action "primary" (usrsctp)
 *   PEER_THREADED      1 when the stack calls back from its own threads:
 *                      then output lines are serialized by out_lock
 *   PEER_USAGE_BINDX, PEER_USAGE_CONNECTX, PEER_USAGE_AT, PEER_USAGE_UDP,
 *   PEER_USAGE_DEBUG   the stack-specific pieces of the usage text
 *   stack_getsockopt, stack_setsockopt, stack_getladdrs, stack_freeladdrs,
 *   stack_getpaddrs, stack_freepaddrs, stack_prim
 *                      the stack's calls and its struct of SCTP_PRIMARY_ADDR
 *   PEER_UDP_ENCAP_SETUP (optional) a function configure_socket calls first
 *                      when it sets up UDP encapsulation
 *   PEER_PAUSE_READ    (optional) 1 when the peer takes --rcvbuf and
 *                      --pause-read (it sets SO_RCVBUF and stops reading
 *                      for a while itself; the lksctp peer)
 *
 * and having declared `sock`, the peer's one SCTP socket.
 */
#ifndef PEER_COMMON_H
#define PEER_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#if PEER_THREADED
#include <pthread.h>
#endif

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
	const char *abort_reason; /* client: end with an ABORT carrying this reason (PEER_ABORT) */
	struct {              /* client: --at S:ACTION:ADDR, S seconds after COMM_UP */
		double t;
		int action;   /* AT_ADD, AT_DEL, AT_PEERPRIM, AT_PRIM (PEER_AT_PRIMARY) */
		struct sockaddr_storage addr;
		int done;
	} at[8];
	int nat;
	uint32_t rcvbuf;      /* --rcvbuf: SO_RCVBUF bytes, 0 = the stack's default (PEER_PAUSE_READ) */
	double pause_after;   /* --pause-read S:D: S s after COMM_UP stop reading for D s (PEER_PAUSE_READ) */
	double pause_for;     /* D, 0 = never pause */
} cfg;

enum { AT_ADD = 1, AT_DEL, AT_PEERPRIM, AT_PRIM };
#if PEER_AT_PRIMARY
#define PEER_AT_ACTIONS "add|del|peer-primary|primary"
#else
#define PEER_AT_ACTIONS "add|del|peer-primary"
#endif

/* ---------- state (the usrsctp peer guards st with its st_lock) ---------- */
static volatile sig_atomic_t stop_signal = 0;
#if PEER_THREADED
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
#define OUT_LOCK() pthread_mutex_lock(&out_lock)
#define OUT_UNLOCK() pthread_mutex_unlock(&out_lock)
#else
#define OUT_LOCK() ((void)0)
#define OUT_UNLOCK() ((void)0)
#endif
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
	OUT_LOCK();
	fprintf(stdout, "{\"ts\":%.6f,\"role\":\"%s\",\"ev\":\"%s\"%s%s}\n",
	        now_real(), cfg.is_server ? "server" : "client", ev,
	        body[0] ? "," : "", body);
	fflush(stdout);
	OUT_UNLOCK();
}

static void logerr(const char *fmt, ...)
{
	va_list ap;
	OUT_LOCK();
	fprintf(stderr, PEER_NAME ": ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	fflush(stderr);
	OUT_UNLOCK();
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

/* Append a JSON array of packed addresses to buf. Returns their number. */
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
	case PEER_ADDR_PF: return "ADDR_POTENTIALLY_FAILED";
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

/* ---------- parsing ---------- */
static void usage(FILE *f)
{
	fprintf(f,
"usage: " PEER_NAME " server|client [options]\n"
"  --bind A[,B...]          local addresses (IPv4 and/or IPv6), bound with " PEER_USAGE_BINDX " (required)\n"
"  --connect A[,B...]       client: peer addresses, given to " PEER_USAGE_CONNECTX "; the first is primary\n"
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
PEER_USAGE_AT
PEER_USAGE_UDP
#ifdef PEER_ABORT
"  --abort-reason TEXT      client: after --duration, ABORT with a User-Initiated Abort cause of TEXT\n"
#endif
#ifdef PEER_PAUSE_READ
"  --rcvbuf BYTES           SO_RCVBUF of the socket, set before listen/connect (the receive window\n"
"                           of every association follows from it)\n"
"  --pause-read S:D         S s after COMM_UP stop reading the socket for D s, then read again\n"
"                           (the receive window fills and closes; \"pause_read\" / \"resume_read\" lines)\n"
#endif
"  --no-echo                server: do not echo DATA back (default: echo)\n"
"  --once                   server: exit when the association ends\n"
"  --stats-interval S       seconds between \"stats\" lines (default 1, 0 = off)\n"
"  --connect-timeout S      client: give up if not up after S seconds (default 15)\n"
PEER_USAGE_DEBUG);
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
			fprintf(stderr, PEER_NAME ": bad or too many addresses: '%s'\n", tok);
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

/* Pack addresses back to back (as the stacks' bindx/connectx want). */
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
		fprintf(stderr, PEER_NAME ": bad value for %s: '%s'\n", opt, v);
		exit(1);
	}
	return d;
}

static const char *mode_name(void)
{
	return cfg.udp_local ? "udp" : "raw";
}

/* Reads the command line into cfg, checks it, sets the port on every
 * address and installs the signal handlers. Returns -1 when the peer goes
 * on, with the address family of its socket in *family; otherwise the exit
 * code (0 after --help). */
static int peer_setup(int argc, char **argv, int *family)
{
	enum { O_BIND = 1, O_CONNECT, O_PORT, O_RATE, O_DURATION, O_SIZE, O_PPID, O_STREAM,
	       O_HB, O_RTOMIN, O_RTOMAX, O_RTOINIT, O_PMR, O_AMR, O_INITMAX, O_PRIMARY, O_UDP,
	       O_NOECHO, O_ONCE, O_STATS, O_CTIMEOUT, O_DEBUG, O_HELP, O_LISTEN, O_AT, O_ABORT,
	       O_RCVBUF, O_PAUSE };
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
		{ "abort-reason", required_argument, 0, O_ABORT },
		{ "listen", no_argument, 0, O_LISTEN },
		{ "at", required_argument, 0, O_AT },
		{ "rcvbuf", required_argument, 0, O_RCVBUF },
		{ "pause-read", required_argument, 0, O_PAUSE },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 }
	};
	int c;

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
				fprintf(stderr, PEER_NAME ": bad --primary '%s'\n", optarg);
				return 1;
			}
			cfg.have_primary = 1;
			break;
		case O_UDP: {
			unsigned l, r;
			if (sscanf(optarg, "%u:%u", &l, &r) != 2 || !l || !r || l > 65535 || r > 65535) {
				fprintf(stderr, PEER_NAME ": --udp-encap wants LOCALPORT:REMOTEPORT, e.g. 9899:9899\n");
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
		case O_ABORT:
#ifdef PEER_ABORT
			cfg.abort_reason = optarg;
			break;
#else
			fprintf(stderr, PEER_NAME ": --abort-reason is not supported by this peer\n");
			return 1;
#endif
		case O_LISTEN: cfg.listen_too = 1; break;
#ifdef PEER_PAUSE_READ
		case O_RCVBUF: cfg.rcvbuf = (uint32_t)parse_num("--rcvbuf", optarg); break;
		case O_PAUSE: {
			char *colon = strchr(optarg, ':');
			if (!colon) {
				fprintf(stderr, PEER_NAME ": --pause-read wants S:D (seconds after COMM_UP, seconds)\n");
				return 1;
			}
			*colon = '\0';
			cfg.pause_after = parse_num("--pause-read", optarg);
			cfg.pause_for = parse_num("--pause-read", colon + 1);
			break;
		}
#else
		case O_RCVBUF:
		case O_PAUSE:
			fprintf(stderr, PEER_NAME ": --rcvbuf and --pause-read are not supported by this peer\n");
			return 1;
#endif
		case O_AT: {
			char *c1 = strchr(optarg, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
			if (cfg.nat == 8 || !c1 || !c2) {
				fprintf(stderr, PEER_NAME ": --at wants S:" PEER_AT_ACTIONS ":ADDR (at most 8)\n");
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
			else if (PEER_AT_PRIMARY && !strcmp(c1 + 1, "primary"))
				cfg.at[cfg.nat].action = AT_PRIM;
			if (!cfg.at[cfg.nat].action || parse_addr(c2 + 1, &cfg.at[cfg.nat].addr) < 0) {
				fprintf(stderr, PEER_NAME ": bad --at action or address\n");
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
		fprintf(stderr, PEER_NAME ": unexpected argument '%s'\n", argv[optind]);
		return 1;
	}
	if (cfg.nbind == 0) {
		fprintf(stderr, PEER_NAME ": --bind is required\n");
		return 1;
	}
	if (!cfg.is_server && cfg.nconn == 0) {
		fprintf(stderr, PEER_NAME ": client needs --connect\n");
		return 1;
	}
	if (cfg.rto_initial == 0)
		cfg.rto_initial = cfg.rto_max;
	if (cfg.rto_min > cfg.rto_max || cfg.rto_initial < cfg.rto_min || cfg.rto_initial > cfg.rto_max) {
		fprintf(stderr, PEER_NAME ": need rto-min <= rto-initial <= rto-max\n");
		return 1;
	}
	if (cfg.size < 8)
		cfg.size = 8;
	if (cfg.size > MAX_MSG)
		cfg.size = MAX_MSG;

	*family = AF_INET;
	for (int i = 0; i < cfg.nbind; i++)
		if (cfg.bind[i].ss_family == AF_INET6)
			*family = AF_INET6;
	for (int i = 0; i < cfg.nconn; i++)
		if (cfg.conn[i].ss_family == AF_INET6)
			*family = AF_INET6;
	for (int i = 0; i < cfg.nbind; i++)
		set_port(&cfg.bind[i], cfg.port);
	for (int i = 0; i < cfg.nconn; i++)
		set_port(&cfg.conn[i], cfg.port);
	for (int i = 0; i < cfg.nat; i++)
		set_port(&cfg.at[i].addr, cfg.port);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	return -1;
}

/* ---------- stack queries and set-up, through the stack_* names ---------- */
static int primary_addr(sctp_assoc_t id, char *buf, size_t len)
{
	struct stack_prim sp;
	socklen_t l = sizeof(sp);
	memset(&sp, 0, sizeof(sp));
	sp.ssp_assoc_id = id;
	if (stack_getsockopt(sock, IPPROTO_SCTP, SCTP_PRIMARY_ADDR, &sp, &l) < 0) {
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

	nl = stack_getladdrs(sock, id, &la);
	np = stack_getpaddrs(sock, id, &pa);
	if (nl > 0)
		addrs_json(la, nl, lj, sizeof(lj));
	if (np > 0)
		addrs_json(pa, np, pj, sizeof(pj));
	primary_addr(id, prim, sizeof(prim));
	emit("up", "\"assoc_id\":%u,\"port\":%u,\"laddrs\":%s,\"paddrs\":%s,\"primary\":\"%s\"",
	     (unsigned)id, cfg.port, lj, pj, prim);
	if (nl > 0)
		stack_freeladdrs(la);
	if (np > 0)
		stack_freepaddrs(pa);
}

static void sockopt(int opt, const void *v, socklen_t l, const char *name)
{
	if (stack_setsockopt(sock, IPPROTO_SCTP, opt, v, l) < 0) {
		logerr("setsockopt %s: %s", name, strerror(errno));
		exit(1);
	}
}

/* Apply the heartbeat/path settings to every peer address of the
 * association after COMM_UP (SCTP_FUTURE_ASSOC values are inherited, but
 * set again explicitly so every path certainly has them). */
static void configure_assoc(sctp_assoc_t id)
{
	struct sockaddr *pa = NULL;
	int np = stack_getpaddrs(sock, id, &pa);
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
		if (stack_setsockopt(sock, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp)) < 0)
			logerr("SCTP_PEER_ADDR_PARAMS for path %d: %s", i, strerror(errno));
		p += sa_len(sa);
	}
	if (np > 0)
		stack_freepaddrs(pa);
	if (cfg.have_primary && !cfg.is_server) {
		struct stack_prim sp;
		memset(&sp, 0, sizeof(sp));
		memcpy(&sp.ssp_addr, &cfg.primary, sa_len((struct sockaddr *)&cfg.primary));
		sp.ssp_assoc_id = id;
		if (stack_setsockopt(sock, IPPROTO_SCTP, SCTP_PRIMARY_ADDR, &sp, sizeof(sp)) < 0)
			logerr("SCTP_PRIMARY_ADDR: %s", strerror(errno));
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
#ifdef PEER_UDP_ENCAP_SETUP
		PEER_UDP_ENCAP_SETUP();
#endif
		memset(&enc, 0, sizeof(enc));
		enc.sue_address.ss_family = (sa_family_t)family; /* wildcard */
		enc.sue_assoc_id = SCTP_FUTURE_ASSOC;
		enc.sue_port = htons(cfg.udp_remote);
		sockopt(SCTP_REMOTE_UDP_ENCAPS_PORT, &enc, sizeof(enc), "SCTP_REMOTE_UDP_ENCAPS_PORT");
	}
}

#endif /* PEER_COMMON_H */
