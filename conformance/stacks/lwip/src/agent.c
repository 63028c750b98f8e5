/* lwip-agent: the tcpconf target agent for lwIP.
 *
 * Brings lwIP (Debian's liblwip, 2.1.3) up on a tap device and serves the
 * tcpconf agent protocol, version 1, on stdin/stdout: the same JSON lines,
 * ops, argument names, reply fields and error words as the Linux agent
 * (conformance/agent.py), so the suite drives lwIP as it drives Linux.
 *
 *     lwip-agent --tap lwip0 --ip 198.18.0.2/24 --ip6 2001:2::2 \
 *                --mac 02:00:c6:12:00:02 [--gw ADDR] [--skip-stdin N] [--verbose] [-- ...]
 *
 * Threads: the main thread reads requests and performs them with lwIP's
 * socket API (lwip_socket, lwip_poll, ...); lwIP's tcpip thread runs the
 * stack and its timers; the tap reader thread (tapdev.c) feeds frames to
 * the tcpip thread.  Where the socket API has no call for what the protocol
 * asks (ABORT, the state table) the main thread touches lwIP's pcbs inside
 * LOCK_TCPIP_CORE().
 *
 * Diagnostics go to stderr; stdout carries nothing but responses. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "lwip/opt.h"
#include "lwip_config_check.h"

#include "lwip/api.h"
#include "lwip/init.h"
#include "lwip/ip_addr.h"
#include "lwip/netif.h"
#include "lwip/priv/sockets_priv.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sockets.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"

#include "json.h"
#include "tapdev.h"

#define PROTOCOL 1
#define AGENT_NAME "tcpconf-agent"
#define IMPLEMENTATION "lwip-agent"
#define MAX_RECV (1 << 20)

static const char PATTERN[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

static int verbose;

static void logmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logmsg(const char *fmt, ...)
{
    va_list ap;
    fputs("lwip-agent: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

/* ------------------------------------------------------------ replies */

struct reply {
    struct jbuf body;        /* result fields, each written as ", k: v" */
    const char *error;       /* NULL: ok */
    char message[512];
};

static int fail(struct reply *r, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct reply *r, const char *error, const char *fmt, ...)
{
    va_list ap;
    r->error = error;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* Python's errno.errorcode names (glibc's, but for two aliases). */
static const char *errno_name(int e)
{
    static char buf[24];
    if (e == EDEADLK)
        return "EDEADLOCK";
    if (e == EOPNOTSUPP)
        return "ENOTSUP";
    const char *n = e > 0 ? strerrorname_np(e) : NULL;
    if (n)
        return n;
    snprintf(buf, sizeof buf, "E%d", e);
    return buf;
}

static int os_fail(struct reply *r, int e)
{
    if (e == 0)
        return fail(r, "agent-error", "an lwIP call failed without errno");
    r->error = errno_name(e);
    snprintf(r->message, sizeof r->message, "%s", strerror(e));
    return -1;
}

/* ------------------------------------------------------------ arguments */

/* Look up `name`.  Returns the value, or NULL when the argument is absent,
 * or null while `nullable` (Python: a default of None). */
static const struct jval *arg_lookup(const struct jval *req, const char *name,
                                     int nullable)
{
    const struct jval *v = jobj_get(req, name);
    if (!v || (v->type == J_NULL && nullable))
        return NULL;
    return v;
}

static int arg_missing(struct reply *r, const char *name)
{
    return fail(r, "bad-request", "%s: missing", name);
}

static int arg_type(struct reply *r, const char *name, const char *want,
                    const struct jval *v)
{
    return fail(r, "bad-request", "%s: expected %s, got %s", name, want,
                jtype_name(v));
}

/* 1: present (stored), 0: absent (default kept), -1: error. */
static int arg_int(const struct jval *req, const char *name, long long *out,
                   int required, int nullable, struct reply *r)
{
    const struct jval *v = arg_lookup(req, name, nullable);
    if (!v)
        return required ? arg_missing(r, name) : 0;
    if (v->type != J_INT)
        return arg_type(r, name, "int", v);
    *out = v->integer;
    return 1;
}

static int arg_float(const struct jval *req, const char *name, double *out,
                     struct reply *r)
{
    const struct jval *v = arg_lookup(req, name, 0);
    if (!v)
        return 0;
    if (v->type != J_INT && v->type != J_FLOAT)
        return arg_type(r, name, "float", v);
    *out = v->type == J_INT ? (double)v->integer : v->number;
    return 1;
}

static int arg_str(const struct jval *req, const char *name, const char **out,
                   int required, int nullable, struct reply *r)
{
    const struct jval *v = arg_lookup(req, name, nullable);
    if (!v)
        return required ? arg_missing(r, name) : 0;
    if (v->type != J_STR)
        return arg_type(r, name, "str", v);
    *out = v->str;
    return 1;
}

static int arg_obj(const struct jval *req, const char *name,
                   const struct jval **out, struct reply *r)
{
    const struct jval *v = arg_lookup(req, name, 0);
    if (!v)
        return 0;
    if (v->type != J_OBJ)
        return arg_type(r, name, "dict", v);
    *out = v;
    return 1;
}

static int arg_timeout(const struct jval *req, double *timeout, double dflt,
                       struct reply *r)
{
    *timeout = dflt;
    if (arg_float(req, "timeout", timeout, r) < 0)
        return -1;
    if (*timeout < 0 || isnan(*timeout))
        return fail(r, "bad-request", "timeout: must not be negative");
    return 0;
}

/* ------------------------------------------------------------ handles */

enum kind { K_LISTEN, K_CONN };

struct entry {
    int used;
    int fd;                  /* lwIP socket number */
    enum kind kind;
    int pending_error;       /* connect() error returned synchronously */
    int eof_seen;            /* recv has reported the end of the stream */
};

static struct entry *entries;
static size_t n_entries;     /* handles 1 .. n_entries-1 were issued */

static void check_socket(int fd);

static int add_entry(int fd, enum kind kind)
{
    if (n_entries == 0)
        n_entries = 1;       /* handle 0 is never issued */
    struct entry *e = realloc(entries, (n_entries + 1) * sizeof *e);
    if (!e)
        return -1;
    entries = e;
    memset(&entries[n_entries], 0, sizeof *entries);
    entries[n_entries].used = 1;
    entries[n_entries].fd = fd;
    entries[n_entries].kind = kind;
    return (int)n_entries++;
}

static struct entry *get_entry(const struct jval *req, long long *handle,
                               struct reply *r)
{
    long long h;
    if (arg_int(req, "sock", &h, 1, 0, r) < 0)
        return NULL;
    if (h <= 0 || (unsigned long long)h >= n_entries || !entries[h].used) {
        fail(r, "bad-request", "sock: unknown handle %lld", h);
        return NULL;
    }
    if (handle)
        *handle = h;
    check_socket(entries[h].fd);
    return &entries[h];
}

/* ------------------------------------------------------------ addresses */

struct addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    } u;
    socklen_t len;
};

static int family_of(const char *text)
{
    return strchr(text, ':') ? AF_INET6 : AF_INET;
}

static int make_addr(struct addr *a, const char *text, long long port,
                     struct reply *r)
{
    memset(a, 0, sizeof *a);
    if (port < 0 || port > 65535)
        return fail(r, "agent-error", "OverflowError: port must be 0-65535");
    if (family_of(text) == AF_INET6) {
        a->u.sin6.sin6_family = AF_INET6;
        a->u.sin6.sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, text, &a->u.sin6.sin6_addr) != 1)
            return fail(r, "EINVAL", "not an IPv6 address: %s", text);
        a->len = sizeof a->u.sin6;
    } else {
        a->u.sin.sin_family = AF_INET;
        a->u.sin.sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, text, &a->u.sin.sin_addr) != 1)
            return fail(r, "EINVAL", "not an IPv4 address: %s", text);
        a->len = sizeof a->u.sin;
    }
    return 0;
}

/* "ip:port" as Python's "%s:%d" % sockaddr[:2]; returns the port. */
static int fmt_sockaddr(const struct addr *a, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (a->u.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &a->u.sin6.sin6_addr, ip, sizeof ip);
        port = ntohs(a->u.sin6.sin6_port);
    } else if (a->u.sa.sa_family == AF_INET) {
        inet_ntop(AF_INET, &a->u.sin.sin_addr, ip, sizeof ip);
        port = ntohs(a->u.sin.sin_port);
    }
    snprintf(out, outlen, "%s:%d", ip, port);
    return port;
}

static int sock_name(int fd, int peer, char *out, size_t outlen, int *port)
{
    struct addr a;
    memset(&a, 0, sizeof a);
    a.len = sizeof a.u;
    int rc = peer ? lwip_getpeername(fd, &a.u.sa, &a.len)
                  : lwip_getsockname(fd, &a.u.sa, &a.len);
    if (rc < 0)
        return -1;
    int p = fmt_sockaddr(&a, out, outlen);
    if (port)
        *port = p;
    return 0;
}

/* An lwIP ip_addr_t as text (inet_ntop: the same form as the Linux agent).
 * A dual-stack pcb (IPADDR_TYPE_ANY, bound to "::") shows as "::". */
static void fmt_lwip_ip(const ip_addr_t *ip, char *out, size_t outlen)
{
#if LWIP_IPV6
    if (IP_GET_TYPE(ip) == IPADDR_TYPE_V6) {
        inet_ntop(AF_INET6, ip_2_ip6(ip)->addr, out, (socklen_t)outlen);
        return;
    }
    if (IP_GET_TYPE(ip) == IPADDR_TYPE_ANY) {
        snprintf(out, outlen, "::");
        return;
    }
#endif
    inet_ntop(AF_INET, &ip_2_ip4(ip)->addr, out, (socklen_t)outlen);
}

/* same_ip of the Linux agent: binary comparison, and an IPv4 filter also
 * matches the IPv4-mapped IPv6 form. */
struct norm_ip {
    int family;              /* 0: unparsable, compared as text */
    unsigned char bytes[16];
    const char *text;
};

static void norm_ip(const char *text, struct norm_ip *n)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             0xff, 0xff};
    memset(n, 0, sizeof *n);
    n->text = text;
    if (strchr(text, ':')) {
        if (inet_pton(AF_INET6, text, n->bytes) != 1)
            return;
        n->family = AF_INET6;
        if (memcmp(n->bytes, mapped, 12) == 0) {
            memmove(n->bytes, n->bytes + 12, 4);
            memset(n->bytes + 4, 0, 12);
            n->family = AF_INET;
        }
    } else if (inet_pton(AF_INET, text, n->bytes) == 1) {
        n->family = AF_INET;
    }
}

static int same_ip(const char *a, const char *b)
{
    struct norm_ip x, y;
    norm_ip(a, &x);
    norm_ip(b, &y);
    if (!x.family || !y.family)
        return x.family == y.family && strcmp(a, b) == 0;
    return x.family == y.family && memcmp(x.bytes, y.bytes, 16) == 0;
}

/* ------------------------------------------------------------ socket options */

struct option {
    const char *name;
    int level, optname;
};

/* The option names Python's socket module knows on Linux for these
 * prefixes, with Linux's values: liblwip is built with the system's
 * <sys/socket.h> and <netinet/tcp.h> (LWIP_SOCKET_EXTERNAL_HEADERS), so lwIP
 * takes the same numbers.  A name lwIP does not implement is reported as
 * "unsupported" by setsockopt. */
static const struct option OPTIONS[] = {
    {"SO_DEBUG", SOL_SOCKET, SO_DEBUG},
    {"SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR},
    {"SO_TYPE", SOL_SOCKET, SO_TYPE},
    {"SO_ERROR", SOL_SOCKET, SO_ERROR},
    {"SO_DONTROUTE", SOL_SOCKET, SO_DONTROUTE},
    {"SO_BROADCAST", SOL_SOCKET, SO_BROADCAST},
    {"SO_SNDBUF", SOL_SOCKET, SO_SNDBUF},
    {"SO_RCVBUF", SOL_SOCKET, SO_RCVBUF},
    {"SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE},
    {"SO_OOBINLINE", SOL_SOCKET, SO_OOBINLINE},
    {"SO_LINGER", SOL_SOCKET, SO_LINGER},
    {"SO_REUSEPORT", SOL_SOCKET, SO_REUSEPORT},
    {"SO_RCVLOWAT", SOL_SOCKET, SO_RCVLOWAT},
    {"SO_SNDLOWAT", SOL_SOCKET, SO_SNDLOWAT},
    {"SO_RCVTIMEO", SOL_SOCKET, SO_RCVTIMEO},
    {"SO_SNDTIMEO", SOL_SOCKET, SO_SNDTIMEO},
    {"SO_ACCEPTCONN", SOL_SOCKET, SO_ACCEPTCONN},
    {"SO_PRIORITY", SOL_SOCKET, SO_PRIORITY},
    {"SO_MARK", SOL_SOCKET, SO_MARK},
    {"SO_PASSCRED", SOL_SOCKET, SO_PASSCRED},
    {"SO_BINDTODEVICE", SOL_SOCKET, SO_BINDTODEVICE},
    {"SO_INCOMING_CPU", SOL_SOCKET, SO_INCOMING_CPU},
    {"TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY},
    {"TCP_MAXSEG", IPPROTO_TCP, TCP_MAXSEG},
    {"TCP_CORK", IPPROTO_TCP, TCP_CORK},
    {"TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE},
    {"TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL},
    {"TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT},
    {"TCP_SYNCNT", IPPROTO_TCP, TCP_SYNCNT},
    {"TCP_LINGER2", IPPROTO_TCP, TCP_LINGER2},
    {"TCP_DEFER_ACCEPT", IPPROTO_TCP, TCP_DEFER_ACCEPT},
    {"TCP_WINDOW_CLAMP", IPPROTO_TCP, TCP_WINDOW_CLAMP},
    {"TCP_QUICKACK", IPPROTO_TCP, TCP_QUICKACK},
    {"TCP_USER_TIMEOUT", IPPROTO_TCP, TCP_USER_TIMEOUT},
    {"TCP_FASTOPEN", IPPROTO_TCP, TCP_FASTOPEN},
    {"TCP_NOTSENT_LOWAT", IPPROTO_TCP, TCP_NOTSENT_LOWAT},
    {"IP_TOS", IPPROTO_IP, IP_TOS},
    {"IP_TTL", IPPROTO_IP, IP_TTL},
    {"IP_RECVTOS", IPPROTO_IP, IP_RECVTOS},
    {"IP_MULTICAST_TTL", IPPROTO_IP, IP_MULTICAST_TTL},
    {"IP_MULTICAST_LOOP", IPPROTO_IP, IP_MULTICAST_LOOP},
    {"IPV6_V6ONLY", IPPROTO_IPV6, IPV6_V6ONLY},
    {"IPV6_UNICAST_HOPS", IPPROTO_IPV6, IPV6_UNICAST_HOPS},
    {"IPV6_TCLASS", IPPROTO_IPV6, IPV6_TCLASS},
    {"IPV6_RECVTCLASS", IPPROTO_IPV6, IPV6_RECVTCLASS},
};

static const struct option *find_option(const char *name)
{
    for (size_t i = 0; i < sizeof OPTIONS / sizeof *OPTIONS; i++)
        if (strcmp(OPTIONS[i].name, name) == 0)
            return &OPTIONS[i];
    return NULL;
}

/* Validate {name: value} before any socket is made (check_sockopts). */
static int check_option(const char *name, const struct jval *value,
                        struct reply *r)
{
    if (!find_option(name))
        return fail(r, "bad-request", "option: unknown socket option '%s'",
                    name);
    if (value->type != J_INT && value->type != J_BOOL)
        return fail(r, "bad-request",
                    "value: option %s expects int or bool, got %s", name,
                    jtype_name(value));
    return 0;
}

static int check_sockopts(const struct jval *opts, struct reply *r)
{
    for (size_t i = 0; opts && i < opts->len; i++)
        if (check_option(opts->keys[i], &opts->items[i], r) < 0)
            return -1;
    return 0;
}

/* SO_LINGER's value is seconds with linger on; negative turns it off. */
static int apply_option(int fd, const char *name, const struct jval *value,
                        struct reply *r)
{
    const struct option *o = find_option(name);
    long long v = value->type == J_BOOL ? value->boolean : value->integer;
    int rc;
    if (o->level == SOL_SOCKET && o->optname == SO_LINGER) {
        struct linger l;
        l.l_onoff = v >= 0;
        l.l_linger = v > 0 ? (v > INT_MAX ? INT_MAX : (int)v) : 0;
        rc = lwip_setsockopt(fd, o->level, o->optname, &l, sizeof l);
    } else {
        if (v > INT_MAX || v < INT_MIN)
            return fail(r, "agent-error", "OverflowError: %s: value out of range", name);
        int iv = (int)v;
        rc = lwip_setsockopt(fd, o->level, o->optname, &iv, sizeof iv);
    }
    if (rc < 0) {
        int e = errno;
        if (e == ENOPROTOOPT)
            return fail(r, "unsupported", "lwIP does not implement %s "
                        "(setsockopt: ENOPROTOOPT)", name);
        return os_fail(r, e);
    }
    return 0;
}

static int apply_sockopts(int fd, const struct jval *opts, struct reply *r)
{
    for (size_t i = 0; opts && i < opts->len; i++)
        if (apply_option(fd, opts->keys[i], &opts->items[i], r) < 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------ waiting */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Block until the socket is readable ("r": POLLIN) or writable ("w"),
 * or has an error (which counts as both, as with select()).  1: ready,
 * 0: timed out, -1: lwip_poll failed (errno). */
static int wait_for(int fd, short events, double timeout)
{
    double deadline = now() + timeout;
    for (;;) {
        double left = deadline - now();
        int ms = left <= 0 ? 0 : (int)ceil(left * 1000.0);
        struct pollfd p = {fd, events, 0};
        int rc = lwip_poll(&p, 1, ms);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
        if (rc == 0 && now() >= deadline)
            return 0;
    }
}

static int set_nonblocking(int fd)
{
    return lwip_fcntl(fd, F_SETFL, O_NONBLOCK);
}

/* ------------------------------------------------------------ pcbs */

/* lwIP frees a TIME-WAIT pcb without telling its netconn: tcp_slowtmr
 * after 2 MSL, tcp_abort, tcp_kill_timewait call no err callback in that
 * state.  A socket still open on a connection that reached TIME-WAIT
 * (shutdown, then the peer's FIN) is left pointing at freed memory, and
 * the next call on it (send, close...) uses it: a use-after-free and a
 * double free inside lwIP.  Before every call on a socket the agent
 * checks, in the core lock, that the netconn's pcb is still on one of
 * lwIP's lists and still belongs to that netconn, and detaches it (as
 * lwIP's own err callback would) when it is not. */
static int pcb_on_list(const struct tcp_pcb *list, const struct tcp_pcb *pcb)
{
    for (; list; list = list->next)
        if (list == pcb)
            return 1;
    return 0;
}

static int pcb_alive(const struct tcp_pcb *pcb)
{
    return pcb_on_list(tcp_active_pcbs, pcb) || pcb_on_list(tcp_tw_pcbs, pcb)
           || pcb_on_list(tcp_bound_pcbs, pcb)
           || pcb_on_list((const struct tcp_pcb *)tcp_listen_pcbs.listen_pcbs,
                          pcb);
}

/* Call with the core lock held. */
static struct netconn *checked_conn_locked(int fd)
{
    struct lwip_sock *s = lwip_socket_dbg_get_socket(fd);
    struct netconn *conn = s ? s->conn : NULL;
    if (conn && NETCONNTYPE_GROUP(netconn_type(conn)) == NETCONN_TCP
        && conn->pcb.tcp
        && (!pcb_alive(conn->pcb.tcp)
            || conn->pcb.tcp->callback_arg != conn)) {
        if (verbose)
            logmsg("socket %d: lwIP freed its pcb behind the netconn "
                   "(TIME-WAIT ended); detaching it", fd);
        conn->pcb.tcp = NULL;
    }
    return conn;
}

static void check_socket(int fd)
{
    LOCK_TCPIP_CORE();
    checked_conn_locked(fd);
    UNLOCK_TCPIP_CORE();
}

/* Discard a connection with RST: RFC 9293 3.10.5 ABORT.  The sockets
 * API's SO_LINGER 0 idiom does not do that in lwIP (a close with linger 0
 * sends RST only while data is unsent or unacknowledged), so the agent
 * calls tcp_abort() on the socket's pcb itself, inside the core lock, and
 * then closes the socket, whose netconn has lost its pcb by then.  In
 * TIME-WAIT tcp_abort sends nothing and does not call the netconn's err
 * callback: the agent detaches the pcb first (RFC 9293: ABORT in TIME-WAIT
 * deletes the TCB, nothing is sent). */
static void abort_socket(int fd)
{
    LOCK_TCPIP_CORE();
    struct netconn *conn = checked_conn_locked(fd);
    struct tcp_pcb *pcb = conn && NETCONNTYPE_GROUP(netconn_type(conn))
                                      == NETCONN_TCP ? conn->pcb.tcp : NULL;
    if (pcb && pcb->state == TIME_WAIT) {
        tcp_arg(pcb, NULL);
        tcp_recv(pcb, NULL);
        tcp_sent(pcb, NULL);
        tcp_err(pcb, NULL);
        tcp_poll(pcb, NULL, 0);
        conn->pcb.tcp = NULL;
        tcp_abort(pcb);
    } else if (pcb && pcb->state != LISTEN) {
        tcp_abort(pcb);
    }
    UNLOCK_TCPIP_CORE();
    lwip_close(fd);
}

struct conn_row {
    char local[INET6_ADDRSTRLEN + 8];
    char remote[INET6_ADDRSTRLEN + 8];
    char lip[INET6_ADDRSTRLEN], rip[INET6_ADDRSTRLEN];
    int lport, rport;
    char state[24];
    long long received;     /* rcv_nxt; -1 for a listener, which has none */
};

static void state_name(enum tcp_state s, char *out, size_t outlen)
{
    const char *d = tcp_debug_state_str(s);
    if (!d || !*d) {
        snprintf(out, outlen, "UNKNOWN-%d", (int)s);
        return;
    }
    if (strcmp(d, "SYN_RCVD") == 0)
        d = "SYN-RECEIVED";
    snprintf(out, outlen, "%s", d);
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = '-';
}

static int add_row(struct conn_row **rows, size_t *n, size_t *cap,
                   const ip_addr_t *lip, u16_t lport, const ip_addr_t *rip,
                   u16_t rport, enum tcp_state st, long long received)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct conn_row *p = realloc(*rows, ncap * sizeof *p);
        if (!p)
            return -1;
        *rows = p;
        *cap = ncap;
    }
    struct conn_row *row = &(*rows)[(*n)++];
    fmt_lwip_ip(lip, row->lip, sizeof row->lip);
    if (rip) {
        fmt_lwip_ip(rip, row->rip, sizeof row->rip);
    } else {
        /* A listener: the unspecified address of its own family.  (lwIP
         * sets only the type of a listen pcb's remote_ip, never its
         * bytes: reading them is reading uninitialised memory.) */
        snprintf(row->rip, sizeof row->rip, "%s",
                 IP_IS_V4_VAL(*lip) ? "0.0.0.0" : "::");
    }
    row->lport = lport;
    row->rport = rport;
    snprintf(row->local, sizeof row->local, "%s:%d", row->lip, lport);
    snprintf(row->remote, sizeof row->remote, "%s:%d", row->rip, rport);
    state_name(st, row->state, sizeof row->state);
    row->received = received;
    return 0;
}

/* Every pcb of the listen, active and TIME-WAIT lists (bound-only pcbs,
 * state CLOSED, are left out as /proc/net/tcp leaves them out). */
static int collect_pcbs(struct conn_row **rows, size_t *n)
{
    size_t cap = 0;
    int rc = 0;
    *rows = NULL;
    *n = 0;
    LOCK_TCPIP_CORE();
    for (struct tcp_pcb_listen *l = tcp_listen_pcbs.listen_pcbs;
         l && !rc; l = l->next)
        rc = add_row(rows, n, &cap, &l->local_ip, l->local_port, NULL, 0,
                     l->state, -1);
    for (struct tcp_pcb *p = tcp_active_pcbs; p && !rc; p = p->next)
        rc = add_row(rows, n, &cap, &p->local_ip, p->local_port,
                     &p->remote_ip, p->remote_port, p->state, p->rcv_nxt);
    for (struct tcp_pcb *p = tcp_tw_pcbs; p && !rc; p = p->next)
        rc = add_row(rows, n, &cap, &p->local_ip, p->local_port,
                     &p->remote_ip, p->remote_port, p->state, p->rcv_nxt);
    UNLOCK_TCPIP_CORE();
    return rc;
}

/* ------------------------------------------------------------ ops */

typedef int (*op_fn)(const struct jval *req, struct reply *r);

static int op_listen(const struct jval *req, struct reply *r)
{
    long long port, backlog = 5;
    const char *addr = "0.0.0.0";
    const struct jval *opts = NULL;
    struct addr a;
    char local[INET6_ADDRSTRLEN + 8];
    int lport, one = 1;

    if (arg_int(req, "port", &port, 1, 0, r) < 0
        || arg_str(req, "addr", &addr, 0, 0, r) < 0
        || arg_int(req, "backlog", &backlog, 0, 0, r) < 0
        || arg_obj(req, "sockopts", &opts, r) < 0
        || check_sockopts(opts, r) < 0)
        return -1;
    int fd = lwip_socket(family_of(addr), SOCK_STREAM, 0);
    if (fd < 0)
        return os_fail(r, errno);
    if (make_addr(&a, addr, port, r) < 0)
        goto fail_close;
    if (lwip_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail_errno;
    if (apply_sockopts(fd, opts, r) < 0)
        goto fail_close;
    if (lwip_bind(fd, &a.u.sa, a.len) < 0)
        goto fail_errno;
    if (backlog < INT_MIN || backlog > INT_MAX)
        backlog = backlog < 0 ? 0 : INT_MAX;
    if (lwip_listen(fd, (int)backlog) < 0)
        goto fail_errno;
    if (set_nonblocking(fd) < 0)
        goto fail_errno;
    if (sock_name(fd, 0, local, sizeof local, &lport) < 0)
        goto fail_errno;
    int h = add_entry(fd, K_LISTEN);
    if (h < 0) {
        lwip_close(fd);
        return fail(r, "agent-error", "out of memory");
    }
    jb_key(&r->body, "sock");
    jb_printf(&r->body, "%d", h);
    jb_key(&r->body, "local");
    jb_string(&r->body, local, strlen(local));
    jb_key(&r->body, "port");
    jb_printf(&r->body, "%d", lport);
    return 0;
fail_errno:
    os_fail(r, errno);
fail_close:
    lwip_close(fd);
    return -1;
}

static int op_accept(const struct jval *req, struct reply *r)
{
    double timeout;
    struct entry *e = get_entry(req, NULL, r);
    if (!e || arg_timeout(req, &timeout, 2.0, r) < 0)
        return -1;
    double deadline = now() + timeout;
    for (;;) {
        int w = wait_for(e->fd, POLLIN, deadline - now() > 0
                                            ? deadline - now() : 0);
        if (w < 0)
            return os_fail(r, errno);
        if (w == 0)
            return fail(r, "timeout", "no accept within %.3gs", timeout);
        struct addr peer;
        memset(&peer, 0, sizeof peer);
        peer.len = sizeof peer.u;
        int fd = lwip_accept(e->fd, &peer.u.sa, &peer.len);
        if (fd < 0) {
            int err = errno;
            if (err == EWOULDBLOCK || err == EAGAIN) {
                if (now() >= deadline)
                    return fail(r, "timeout", "no accept within %.3gs",
                                timeout);
                continue;
            }
            return os_fail(r, err);
        }
        char peer_s[INET6_ADDRSTRLEN + 8], local[INET6_ADDRSTRLEN + 8];
        fmt_sockaddr(&peer, peer_s, sizeof peer_s);
        set_nonblocking(fd);
        if (sock_name(fd, 0, local, sizeof local, NULL) < 0)
            snprintf(local, sizeof local, "?:0");
        int h = add_entry(fd, K_CONN);
        if (h < 0) {
            abort_socket(fd);
            return fail(r, "agent-error", "out of memory");
        }
        jb_key(&r->body, "sock");
        jb_printf(&r->body, "%d", h);
        jb_key(&r->body, "peer");
        jb_string(&r->body, peer_s, strlen(peer_s));
        jb_key(&r->body, "local");
        jb_string(&r->body, local, strlen(local));
        return 0;
    }
}

/* Start a connection and return at once; wait_connected collects the
 * outcome (an error connect() reports at once is kept for it). */
static int op_connect(const struct jval *req, struct reply *r)
{
    const char *addr, *local_addr = NULL;
    long long port, local_port = -1;
    const struct jval *opts = NULL;
    struct addr a, la;
    int one = 1, have_local_port, have_local_addr;

    if (arg_str(req, "addr", &addr, 1, 0, r) < 0
        || arg_int(req, "port", &port, 1, 0, r) < 0
        || (have_local_port = arg_int(req, "local_port", &local_port, 0, 1,
                                      r)) < 0
        || (have_local_addr = arg_str(req, "local_addr", &local_addr, 0, 1,
                                      r)) < 0
        || arg_obj(req, "sockopts", &opts, r) < 0
        || check_sockopts(opts, r) < 0)
        return -1;
    int family = family_of(addr);
    int fd = lwip_socket(family, SOCK_STREAM, 0);
    if (fd < 0)
        return os_fail(r, errno);
    if (make_addr(&a, addr, port, r) < 0 || apply_sockopts(fd, opts, r) < 0)
        goto fail_close;
    if (have_local_port || have_local_addr) {
        const char *wild = family == AF_INET6 ? "::" : "0.0.0.0";
        if (lwip_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)
            < 0)
            goto fail_errno;
        if (make_addr(&la, local_addr && *local_addr ? local_addr : wild,
                      have_local_port && local_port ? local_port : 0, r) < 0)
            goto fail_close;
        if (lwip_bind(fd, &la.u.sa, la.len) < 0)
            goto fail_errno;
    }
    if (set_nonblocking(fd) < 0)
        goto fail_errno;
    int rc = lwip_connect(fd, &a.u.sa, a.len);
    int err = rc < 0 ? errno : 0;
    int h = add_entry(fd, K_CONN);
    if (h < 0) {
        abort_socket(fd);
        return fail(r, "agent-error", "out of memory");
    }
    if (err && err != EINPROGRESS && err != EALREADY && err != EWOULDBLOCK)
        entries[h].pending_error = err;
    jb_key(&r->body, "sock");
    jb_printf(&r->body, "%d", h);
    char local[INET6_ADDRSTRLEN + 8];
    int lport;
    if (sock_name(fd, 0, local, sizeof local, &lport) == 0) {
        jb_key(&r->body, "local");
        jb_string(&r->body, local, strlen(local));
        jb_key(&r->body, "local_port");
        jb_printf(&r->body, "%d", lport);
    }
    return 0;
fail_errno:
    os_fail(r, errno);
fail_close:
    lwip_close(fd);
    return -1;
}

static int op_wait_connected(const struct jval *req, struct reply *r)
{
    double timeout;
    struct entry *e = get_entry(req, NULL, r);
    if (!e || arg_timeout(req, &timeout, 2.0, r) < 0)
        return -1;
    if (e->pending_error) {
        int err = e->pending_error;
        e->pending_error = 0;
        return os_fail(r, err);
    }
    int w = wait_for(e->fd, POLLOUT, timeout);
    if (w < 0)
        return os_fail(r, errno);
    if (w == 0)
        return fail(r, "timeout", "no connection within %.3gs", timeout);
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (lwip_getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return os_fail(r, errno);
    if (soerr)
        return os_fail(r, soerr);
    /* Writable with no error but not connected: the failure was already
     * consumed (by sockerror); getpeername fails with ENOTCONN. */
    char peer[INET6_ADDRSTRLEN + 8];
    if (sock_name(e->fd, 1, peer, sizeof peer, NULL) < 0)
        return os_fail(r, errno);
    return 0;
}

/* The bytes to send: exactly one of data, data_b64, size. */
static int send_payload(const struct jval *req, unsigned char **buf,
                        size_t *len, struct reply *r)
{
    int given = !!jobj_get(req, "data") + !!jobj_get(req, "data_b64")
                + !!jobj_get(req, "size");
    const char *s;
    if (given != 1)
        return fail(r, "bad-request",
                    "data: give exactly one of data, data_b64, size");
    if (jobj_get(req, "data")) {
        const struct jval *v = jobj_get(req, "data");
        if (v->type != J_STR)
            return arg_type(r, "data", "str", v);
        *buf = malloc(v->len + 1);
        if (!*buf)
            return fail(r, "agent-error", "out of memory");
        memcpy(*buf, v->str, v->len);
        *len = v->len;
        return 0;
    }
    if (jobj_get(req, "data_b64")) {
        if (arg_str(req, "data_b64", &s, 1, 0, r) < 0)
            return -1;
        if (b64_decode(s, strlen(s), buf, len) < 0)
            return fail(r, "bad-request", "data_b64: not valid base64");
        return 0;
    }
    long long size;
    if (arg_int(req, "size", &size, 1, 0, r) < 0)
        return -1;
    if (size < 0)
        return fail(r, "bad-request", "size: must not be negative");
    if (size > (64LL << 20))
        return fail(r, "bad-request", "size: at most 64 MiB");
    *buf = malloc((size_t)size + 1);
    if (!*buf)
        return fail(r, "agent-error", "out of memory");
    for (long long i = 0; i < size; i++)
        (*buf)[i] = (unsigned char)PATTERN[i % (sizeof PATTERN - 1)];
    *len = (size_t)size;
    return 0;
}

static int op_send(const struct jval *req, struct reply *r)
{
    double timeout;
    unsigned char *data = NULL;
    size_t len = 0, sent = 0;
    struct entry *e = get_entry(req, NULL, r);
    if (!e || send_payload(req, &data, &len, r) < 0
        || arg_timeout(req, &timeout, 2.0, r) < 0) {
        free(data);
        return -1;
    }
    double deadline = now() + timeout;
    int rc = 0;
    while (sent < len) {
        double left = deadline - now();
        int w = wait_for(e->fd, POLLOUT, left > 0 ? left : 0);
        if (w < 0) {
            rc = os_fail(r, errno);
            break;
        }
        if (w == 0) {
            rc = fail(r, "timeout", "sent %zu of %zu bytes within %.3gs",
                      sent, len, timeout);
            break;
        }
        ssize_t n = lwip_send(e->fd, data + sent, len - sent, 0);
        if (n < 0) {
            int err = errno;
            if (err == EWOULDBLOCK || err == EAGAIN) {
                if (now() >= deadline) {
                    rc = fail(r, "timeout",
                              "sent %zu of %zu bytes within %.3gs", sent, len,
                              timeout);
                    break;
                }
                continue;
            }
            rc = os_fail(r, err);
            break;
        }
        sent += (size_t)n;
    }
    free(data);
    if (rc < 0)
        return -1;
    jb_key(&r->body, "sent");
    jb_printf(&r->body, "%zu", sent);
    return 0;
}

static int op_recv(const struct jval *req, struct reply *r)
{
    long long maxlen = 65536;
    double timeout;
    struct entry *e = get_entry(req, NULL, r);
    if (!e || arg_int(req, "max", &maxlen, 0, 0, r) < 0
        || arg_timeout(req, &timeout, 1.0, r) < 0)
        return -1;
    if (maxlen <= 0)
        return fail(r, "bad-request", "max: must be positive");
    if (maxlen > MAX_RECV)
        maxlen = MAX_RECV;
    double deadline = now() + timeout;
    unsigned char *buf = malloc((size_t)maxlen);
    if (!buf)
        return fail(r, "agent-error", "out of memory");
    for (;;) {
        double left = deadline - now();
        int w = wait_for(e->fd, POLLIN, left > 0 ? left : 0);
        if (w < 0) {
            free(buf);
            return os_fail(r, errno);
        }
        if (w == 0) {
            free(buf);
            return fail(r, "timeout", "no data within %.3gs", timeout);
        }
        ssize_t n = lwip_recv(e->fd, buf, (size_t)maxlen, 0);
        if (n < 0 && errno == ENOTCONN && e->eof_seen)
            n = 0;    /* lwIP fails reads after the first end of stream
                       * with ENOTCONN; a socket returns EOF again */
        if (n < 0) {
            int err = errno;
            if ((err == EWOULDBLOCK || err == EAGAIN) && now() < deadline)
                continue;
            free(buf);
            if (err == EWOULDBLOCK || err == EAGAIN)
                return fail(r, "timeout", "no data within %.3gs", timeout);
            return os_fail(r, err);
        }
        if (n == 0) {
            free(buf);
            e->eof_seen = 1;
            jb_key(&r->body, "eof");
            jb_cstr(&r->body, "true");
            return 0;
        }
        char *b64 = b64_encode(buf, (size_t)n);
        if (!b64) {
            free(buf);
            return fail(r, "agent-error", "out of memory");
        }
        jb_key(&r->body, "data_b64");
        jb_string(&r->body, b64, strlen(b64));
        jb_key(&r->body, "text");
        if (utf8_valid(buf, (size_t)n))
            jb_string(&r->body, (const char *)buf, (size_t)n);
        else
            jb_cstr(&r->body, "null");
        free(b64);
        free(buf);
        return 0;
    }
}

static int op_shutdown(const struct jval *req, struct reply *r)
{
    const char *how = "wr";
    int h;
    struct entry *e = get_entry(req, NULL, r);
    if (!e || arg_str(req, "how", &how, 0, 0, r) < 0)
        return -1;
    if (strcmp(how, "rd") == 0)
        h = SHUT_RD;
    else if (strcmp(how, "wr") == 0)
        h = SHUT_WR;
    else if (strcmp(how, "rdwr") == 0)
        h = SHUT_RDWR;
    else
        return fail(r, "bad-request", "how: must be one of rd, wr, rdwr");
    if (lwip_shutdown(e->fd, h) < 0)
        return os_fail(r, errno);
    return 0;
}

/* Normal close: lwIP sends FIN (or RST when received data is unread). */
static int op_close(const struct jval *req, struct reply *r)
{
    struct entry *e = get_entry(req, NULL, r);
    if (!e)
        return -1;
    e->used = 0;
    if (lwip_close(e->fd) < 0)
        return os_fail(r, errno);
    return 0;
}

static int op_abort(const struct jval *req, struct reply *r)
{
    struct entry *e = get_entry(req, NULL, r);
    if (!e)
        return -1;
    e->used = 0;
    abort_socket(e->fd);
    return 0;
}

static int op_setsockopt(const struct jval *req, struct reply *r)
{
    const char *option;
    struct entry *e = get_entry(req, NULL, r);
    if (!e || arg_str(req, "option", &option, 1, 0, r) < 0)
        return -1;
    const struct jval *value = jobj_get(req, "value");
    if (!value)
        return fail(r, "bad-request", "value: missing");
    if (check_option(option, value, r) < 0)
        return -1;
    return apply_option(e->fd, option, value, r);
}

/* Read (and thereby clear) SO_ERROR. */
static int op_sockerror(const struct jval *req, struct reply *r)
{
    struct entry *e = get_entry(req, NULL, r);
    if (!e)
        return -1;
    int err = e->pending_error;
    e->pending_error = 0;
    if (!err) {
        socklen_t len = sizeof err;
        if (lwip_getsockopt(e->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            return os_fail(r, errno);
    }
    jb_key(&r->body, "error");
    if (err)
        jb_string(&r->body, errno_name(err), strlen(errno_name(err)));
    else
        jb_cstr(&r->body, "null");
    return 0;
}

/* lwIP's TCP connections from its pcb lists, filtered like the Linux
 * agent's.  ``source`` is accepted for compatibility: "auto" (the default)
 * reads the pcb lists; lwIP has neither sock_diag netlink nor /proc.  With
 * ``received``, each connection also gives its rcv_nxt (null for a
 * listener): it moves whenever lwIP takes text or a FIN, which is what a
 * fence after such a segment asks (conformance/fence.py). */
static int op_states(const struct jval *req, struct reply *r)
{
    long long local_port = -1, remote_port = -1;
    const char *remote_addr = NULL, *source = "auto";
    int have_lp, have_ra, have_rp, received = 0;
    if ((have_lp = arg_int(req, "local_port", &local_port, 0, 1, r)) < 0
        || (have_ra = arg_str(req, "remote_addr", &remote_addr, 0, 1, r)) < 0
        || (have_rp = arg_int(req, "remote_port", &remote_port, 0, 1, r)) < 0
        || arg_str(req, "source", &source, 0, 0, r) < 0)
        return -1;
    const struct jval *want = jobj_get(req, "received");
    if (want && want->type != J_NULL) {
        if (want->type != J_BOOL)
            return arg_type(r, "received", "bool", want);
        received = want->boolean;
    }
    if (strcmp(source, "auto") && strcmp(source, "netlink")
        && strcmp(source, "proc"))
        return fail(r, "bad-request",
                    "source: must be one of auto, netlink, proc");
    if (strcmp(source, "auto"))
        return fail(r, "unsupported", "lwIP has no %s; its states come from "
                    "its pcb lists (source auto)",
                    strcmp(source, "proc") ? "sock_diag netlink"
                                           : "/proc/net/tcp");
    struct conn_row *rows;
    size_t n;
    if (collect_pcbs(&rows, &n) < 0) {
        free(rows);
        return fail(r, "agent-error", "out of memory");
    }
    jb_key(&r->body, "connections");
    jb_cstr(&r->body, "[");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (have_lp && rows[i].lport != local_port)
            continue;
        if (have_rp && rows[i].rport != remote_port)
            continue;
        if (have_ra && !same_ip(rows[i].rip, remote_addr))
            continue;
        jb_cstr(&r->body, first ? "{" : ", {");
        first = 0;
        jb_cstr(&r->body, "\"local\": ");
        jb_string(&r->body, rows[i].local, strlen(rows[i].local));
        jb_key(&r->body, "remote");
        jb_string(&r->body, rows[i].remote, strlen(rows[i].remote));
        jb_key(&r->body, "state");
        jb_string(&r->body, rows[i].state, strlen(rows[i].state));
        if (received) {
            jb_key(&r->body, "received");
            if (rows[i].received < 0)
                jb_cstr(&r->body, "null");
            else
                jb_printf(&r->body, "%lld", rows[i].received);
        }
        jb_cstr(&r->body, "}");
    }
    jb_cstr(&r->body, "]");
    free(rows);
    return 0;
}

/* Drop everything: abort connections, close listeners. */
static int op_cleanup(const struct jval *req, struct reply *r)
{
    (void)req;
    int aborted = 0;
    for (size_t h = 1; h < n_entries; h++) {
        if (!entries[h].used)
            continue;
        entries[h].used = 0;
        if (entries[h].kind == K_LISTEN) {
            check_socket(entries[h].fd);
            if (lwip_close(entries[h].fd) < 0)
                logmsg("cleanup: sock %zu: %s", h, strerror(errno));
        } else {
            abort_socket(entries[h].fd);
            aborted++;
        }
    }
    jb_key(&r->body, "aborted");
    jb_printf(&r->body, "%d", aborted);
    return 0;
}

static int quitting;

/* Stop after this response.  Open connections vanish with the process
 * (lwIP lives in it): nothing more is sent for them. */
static int op_quit(const struct jval *req, struct reply *r)
{
    (void)req;
    (void)r;
    quitting = 1;
    return 0;
}

static const struct {
    const char *name;
    op_fn fn;
} OPS[] = {
    {"listen", op_listen},
    {"accept", op_accept},
    {"connect", op_connect},
    {"wait_connected", op_wait_connected},
    {"send", op_send},
    {"recv", op_recv},
    {"shutdown", op_shutdown},
    {"close", op_close},
    {"abort", op_abort},
    {"setsockopt", op_setsockopt},
    {"sockerror", op_sockerror},
    {"states", op_states},
    {"cleanup", op_cleanup},
    {"quit", op_quit},
};

/* ------------------------------------------------------------ dispatch */

static void write_line(struct jbuf *b)
{
    jb_raw(b, "\n", 1);
    if (b->failed) {
        static const char oom[] = "{\"id\": null, \"ok\": false, \"error\": "
                                  "\"agent-error\", \"message\": \"out of "
                                  "memory\"}\n";
        fwrite(oom, 1, sizeof oom - 1, stdout);
    } else {
        fwrite(b->data, 1, b->len, stdout);
    }
    if (fflush(stdout) != 0)
        quitting = 1;        /* the suite went away */
}

static void write_failure(const char *id, const char *error,
                          const char *message)
{
    struct jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"id\": ");
    jb_cstr(&b, id);
    jb_key(&b, "ok");
    jb_cstr(&b, "false");
    jb_key(&b, "error");
    jb_string(&b, error, strlen(error));
    jb_key(&b, "message");
    jb_string(&b, message, strlen(message));
    jb_cstr(&b, "}");
    write_line(&b);
    jb_free(&b);
}

static void handle(const char *line, size_t len)
{
    struct jval req;
    char err[128], id[32] = "null", message[600];
    if (json_parse(line, len, &req, err, sizeof err) < 0) {
        snprintf(message, sizeof message, "not a JSON line: %s", err);
        write_failure("null", "bad-request", message);
        return;
    }
    if (req.type != J_OBJ) {
        write_failure("null", "bad-request", "request must be a JSON object");
        jval_free(&req);
        return;
    }
    const struct jval *idv = jobj_get(&req, "id");
    if (idv && idv->type != J_NULL) {
        if (idv->type != J_INT) {
            write_failure("null", "bad-request", "id: must be an integer");
            jval_free(&req);
            return;
        }
        snprintf(id, sizeof id, "%lld", idv->integer);
    }
    const struct jval *opv = jobj_get(&req, "op");
    op_fn fn = NULL;
    const char *opname = NULL;
    if (opv && opv->type == J_STR)
        for (size_t i = 0; i < sizeof OPS / sizeof *OPS; i++)
            if (strcmp(OPS[i].name, opv->str) == 0) {
                fn = OPS[i].fn;
                opname = OPS[i].name;
            }
    if (!fn) {
        if (!opv || opv->type == J_NULL)
            snprintf(message, sizeof message,
                     "op: unknown operation None");
        else if (opv->type == J_STR)
            snprintf(message, sizeof message,
                     "op: unknown operation '%.200s'", opv->str);
        else
            snprintf(message, sizeof message,
                     "op: unknown operation of type %s", jtype_name(opv));
        write_failure(id, "bad-request", message);
        jval_free(&req);
        return;
    }
    struct reply r;
    memset(&r, 0, sizeof r);
    jb_init(&r.body);
    errno = 0;
    int rc = fn(&req, &r);
    if (verbose)
        logmsg("%s -> %s%s%s", opname, rc < 0 ? r.error : "ok",
               rc < 0 ? ": " : "", rc < 0 ? r.message : "");
    if (rc < 0) {
        write_failure(id, r.error ? r.error : "agent-error", r.message);
    } else {
        struct jbuf b;
        jb_init(&b);
        jb_cstr(&b, "{\"id\": ");
        jb_cstr(&b, id);
        jb_key(&b, "ok");
        jb_cstr(&b, "true");
        if (r.body.data)
            jb_raw(&b, r.body.data, r.body.len);
        jb_cstr(&b, "}");
        write_line(&b);
        jb_free(&b);
    }
    jb_free(&r.body);
    jval_free(&req);
}

/* ------------------------------------------------------------ start-up */

struct config {
    const char *tap;
    ip4_addr_t ip, mask, gw;     /* gw: zero when the tester is on the link */
    int have_ip6;
#if LWIP_IPV6
    ip6_addr_t ip6;
#endif
    unsigned char mac[6];
    long long skip_stdin;
};

static struct netif the_netif;
static struct tapdev the_tap;

struct init_ctx {
    struct config *cfg;
    sys_sem_t done;
    int ip6_index;
};

/* Runs in the tcpip thread (core locked). */
static void init_netif(void *arg)
{
    struct init_ctx *ctx = (struct init_ctx *)arg;
    netif_add(&the_netif, &ctx->cfg->ip, &ctx->cfg->mask, &ctx->cfg->gw, &the_tap,
              tapdev_netif_init, tcpip_input);
    netif_set_default(&the_netif);
    netif_set_up(&the_netif);
    netif_set_link_up(&the_netif);
    ctx->ip6_index = -1;
#if LWIP_IPV6
    /* A static address, usable at once: no duplicate address detection
     * (the lab adds its Linux address with nodad too), no link-local
     * address, no SLAAC, no router solicitations (they need a valid
     * address in slot 0, the link-local one, which is left empty). */
    the_netif.ip6_autoconfig_enabled = 0;
#if LWIP_IPV6_SEND_ROUTER_SOLICIT
    the_netif.rs_count = 0;
#endif
    if (ctx->cfg->have_ip6) {
        s8_t idx = -1;
        if (netif_add_ip6_address(&the_netif, &ctx->cfg->ip6, &idx) == ERR_OK
            && idx >= 0) {
            netif_ip6_addr_set_state(&the_netif, idx, IP6_ADDR_PREFERRED);
            ctx->ip6_index = idx;
        }
    }
#endif
    sys_sem_signal(&ctx->done);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lwip-agent --tap NAME --ip ADDR/PREFIX [--ip6 ADDR[/64]]\n"
            "                  --mac XX:XX:XX:XX:XX:XX [--gw ADDR] [--skip-stdin N]\n"
            "                  [--verbose] [-- ignored...]\n"
            "Brings lwIP %s up on the tap device NAME (which must exist) and\n"
            "serves the tcpconf agent protocol on stdin/stdout.\n"
            "--skip-stdin N discards the first N bytes of stdin (the suite's\n"
            "AgentClient sends the Python agent's source first); everything\n"
            "after -- is ignored (the Python bootstrap arguments).\n",
            LWIP_VERSION_STRING);
}

static int parse_mac(const char *s, unsigned char mac[6])
{
    unsigned v[6];
    char extra;
    if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &extra) != 6)
        return -1;
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255)
            return -1;
        mac[i] = (unsigned char)v[i];
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct config *cfg)
{
    const char *ip = NULL, *ip6 = NULL, *mac = NULL, *gw = NULL;
    memset(cfg, 0, sizeof *cfg);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--verbose") == 0) {
            verbose = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "lwip-agent: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--tap") == 0)
            cfg->tap = v;
        else if (strcmp(a, "--ip") == 0)
            ip = v;
        else if (strcmp(a, "--ip6") == 0)
            ip6 = v;
        else if (strcmp(a, "--mac") == 0)
            mac = v;
        else if (strcmp(a, "--gw") == 0)
            gw = v;
        else if (strcmp(a, "--skip-stdin") == 0) {
            char *end;
            cfg->skip_stdin = strtoll(v, &end, 10);
            if (*end || cfg->skip_stdin < 0) {
                fprintf(stderr, "lwip-agent: bad --skip-stdin %s\n", v);
                return -1;
            }
        } else {
            fprintf(stderr, "lwip-agent: unknown option %s\n", a);
            return -1;
        }
    }
    if (!cfg->tap || !ip || !mac) {
        fprintf(stderr, "lwip-agent: --tap, --ip and --mac are required\n");
        return -1;
    }
    char addr[64];
    int prefix = 24;
    const char *slash = strchr(ip, '/');
    if (slash) {
        prefix = atoi(slash + 1);
        snprintf(addr, sizeof addr, "%.*s", (int)(slash - ip), ip);
    } else {
        snprintf(addr, sizeof addr, "%s", ip);
    }
    if (!ip4addr_aton(addr, &cfg->ip) || prefix < 0 || prefix > 32) {
        fprintf(stderr, "lwip-agent: bad --ip %s\n", ip);
        return -1;
    }
    ip4_addr_set_u32(&cfg->mask,
                     prefix ? lwip_htonl(0xFFFFFFFFu << (32 - prefix)) : 0);
    ip4_addr_set_zero(&cfg->gw);
    /* Behind a router (a firewall of the lab): the default route. */
    if (gw && !ip4addr_aton(gw, &cfg->gw)) {
        fprintf(stderr, "lwip-agent: bad --gw %s\n", gw);
        return -1;
    }
    if (ip6) {
#if LWIP_IPV6
        snprintf(addr, sizeof addr, "%s", ip6);
        char *s6 = strchr(addr, '/');
        if (s6) {
            if (atoi(s6 + 1) != 64)
                fprintf(stderr, "lwip-agent: note: lwIP gives a static IPv6 "
                        "address an implied /64, whatever %s says\n", ip6);
            *s6 = 0;
        }
        if (!ip6addr_aton(addr, &cfg->ip6)) {
            fprintf(stderr, "lwip-agent: bad --ip6 %s\n", ip6);
            return -1;
        }
        cfg->have_ip6 = 1;
#else
        fprintf(stderr, "lwip-agent: this liblwip has no IPv6 "
                "(LWIP_IPV6=0); --ip6 ignored\n");
#endif
    }
    if (parse_mac(mac, cfg->mac) < 0) {
        fprintf(stderr, "lwip-agent: bad --mac %s\n", mac);
        return -1;
    }
    return 0;
}

static void write_hello(const struct config *cfg)
{
    struct utsname u;
    char host[256] = "", system[512];
    uname(&u);
    gethostname(host, sizeof host - 1);
    snprintf(system, sizeof system, "lwIP %s on %s %s %s",
             LWIP_VERSION_STRING, u.sysname, u.release, u.machine);
    struct jbuf b;
    jb_init(&b);
    jb_cstr(&b, "{\"id\": 0, \"ok\": true, \"hello\": {\"agent\": ");
    jb_string(&b, AGENT_NAME, strlen(AGENT_NAME));
    jb_key(&b, "protocol");
    jb_printf(&b, "%d", PROTOCOL);
    jb_key(&b, "implementation");
    jb_string(&b, IMPLEMENTATION, strlen(IMPLEMENTATION));
    jb_key(&b, "stack");
    jb_printf(&b, "\"lwIP %s\"", LWIP_VERSION_STRING);
    jb_key(&b, "system");
    jb_string(&b, system, strlen(system));
    jb_key(&b, "hostname");
    jb_string(&b, host, strlen(host));
    jb_key(&b, "tap");
    jb_string(&b, cfg->tap, strlen(cfg->tap));
    jb_key(&b, "ipv6");
    jb_cstr(&b, LWIP_IPV6 && cfg->have_ip6 ? "true" : "false");
    jb_cstr(&b, "}}");
    write_line(&b);
    jb_free(&b);
}

int main(int argc, char **argv)
{
    struct config cfg;
    char err[256];

    signal(SIGPIPE, SIG_IGN);
    if (parse_args(argc, argv, &cfg) < 0) {
        usage(stderr);
        return 2;
    }
    /* Discard what the suite's Python bootstrap sends first. */
    for (long long left = cfg.skip_stdin; left > 0;) {
        char scratch[4096];
        size_t want = left > (long long)sizeof scratch ? sizeof scratch
                                                       : (size_t)left;
        size_t got = fread(scratch, 1, want, stdin);
        if (got == 0) {
            logmsg("stdin ended while skipping %lld bytes", cfg.skip_stdin);
            return 1;
        }
        left -= (long long)got;
    }
    if (tapdev_open(&the_tap, cfg.tap, cfg.mac, err, sizeof err) < 0) {
        logmsg("%s", err);
        return 1;
    }
    if (tapdev_wait_ready(&the_tap, 5000, err, sizeof err) < 0)
        logmsg("%s; going on", err);
    struct init_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.cfg = &cfg;
    if (sys_sem_new(&ctx.done, 0) != ERR_OK) {
        logmsg("sys_sem_new failed");
        return 1;
    }
    tcpip_init(NULL, NULL);
    if (tcpip_callback(init_netif, &ctx) != ERR_OK) {
        logmsg("tcpip_callback failed");
        return 1;
    }
    sys_sem_wait(&ctx.done);
    sys_sem_free(&ctx.done);
    if (cfg.have_ip6 && ctx.ip6_index < 0)
        logmsg("could not add the IPv6 address; IPv6 is off");
    if (tapdev_start(&the_tap, &the_netif) < 0) {
        logmsg("cannot start the tap reader: %s", strerror(errno));
        return 1;
    }
    if (verbose)
        logmsg("lwIP %s up on %s", LWIP_VERSION_STRING, cfg.tap);
    write_hello(&cfg);

    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (!quitting && (n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'
                       || line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
        size_t start = 0;
        while (start < len && (line[start] == ' ' || line[start] == '\t'))
            start++;
        if (start == len)
            continue;
        handle(line + start, len - start);
    }
    free(line);
    /* Stop feeding frames to lwIP and stop it sending; lwIP's own threads
     * end with the process. */
    tapdev_close(&the_tap);
    if (verbose)
        logmsg("tap %s: %lu frames in (%lu dropped), %lu out (%lu errors)",
               cfg.tap, the_tap.rx_frames, the_tap.rx_dropped,
               the_tap.tx_frames, the_tap.tx_errors);
    free(entries);
    return 0;
}
