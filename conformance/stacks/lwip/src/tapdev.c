/* See tapdev.h. */
#define _GNU_SOURCE
#include "tapdev.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lwip/ethip6.h"
#include "lwip/pbuf.h"
#include "lwip/tcpip.h"
#include "netif/etharp.h"

#define TAP_BUFSIZE 65536    /* larger than any frame a tap hands over */
#define ETH_HDR_LEN 14

static pthread_t reader_thread;
static struct netif *reader_netif;

int tapdev_open(struct tapdev *tap, const char *name, const unsigned char mac[6],
                char *err, size_t errlen)
{
    struct ifreq ifr;
    memset(tap, 0, sizeof *tap);
    tap->fd = -1;
    tap->stop_pipe[0] = tap->stop_pipe[1] = -1;
    if (strlen(name) >= sizeof tap->name || strlen(name) >= IFNAMSIZ) {
        snprintf(err, errlen, "tap name too long: %s", name);
        errno = EINVAL;
        return -1;
    }
    strcpy(tap->name, name);
    memcpy(tap->mac, mac, 6);
    /* TUNSETIFF creates a tap that does not exist: check first that it
     * does, and that it is a tun/tap device, so that the agent never
     * makes an interface (in whatever namespace it was started in). */
    char path[64];
    snprintf(path, sizeof path, "/sys/class/net/%s/tun_flags", name);
    if (if_nametoindex(name) == 0 || access(path, F_OK) != 0) {
        snprintf(err, errlen, "no tap device %s in this network namespace "
                 "(create it first: tap-bridge.sh)", name);
        errno = ENODEV;
        return -1;
    }
    tap->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tap->fd < 0) {
        snprintf(err, errlen, "open /dev/net/tun: %s", strerror(errno));
        return -1;
    }
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(tap->fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        snprintf(err, errlen, "attach to tap %s (TUNSETIFF): %s; create it "
                 "first (tap-bridge.sh) in this network namespace",
                 name, strerror(e));
        close(tap->fd);
        tap->fd = -1;
        errno = e;
        return -1;
    }
    if (pipe2(tap->stop_pipe, O_CLOEXEC) < 0) {
        int e = errno;
        snprintf(err, errlen, "pipe: %s", strerror(e));
        close(tap->fd);
        tap->fd = -1;
        errno = e;
        return -1;
    }
    return 0;
}

static int read_sys(const char *name, const char *file, char *buf, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/class/net/%s/%s", name, file);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    if (!fgets(buf, (int)len, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    buf[strcspn(buf, "\n")] = 0;
    return 0;
}

int tapdev_wait_ready(struct tapdev *tap, int timeout_ms, char *err,
                      size_t errlen)
{
    char oper[32] = "?", port[32] = "";
    for (int waited = 0;; waited += 5) {
        int have_port;
        read_sys(tap->name, "operstate", oper, sizeof oper);
        have_port = read_sys(tap->name, "brport/state", port, sizeof port) == 0;
        /* brport/state 3 is BR_STATE_FORWARDING */
        if (strcmp(oper, "up") == 0 && (!have_port || strcmp(port, "3") == 0))
            return 0;
        if (waited >= timeout_ms) {
            snprintf(err, errlen, "tap %s not ready after %d ms (operstate "
                     "%s%s%s)", tap->name, timeout_ms, oper,
                     have_port ? ", bridge port state " : "",
                     have_port ? port : "");
            return -1;
        }
        usleep(5000);
    }
}

/* Called by lwIP (in the tcpip thread, core locked) for every frame. */
static err_t tapdev_linkoutput(struct netif *netif, struct pbuf *p)
{
    struct tapdev *tap = (struct tapdev *)netif->state;
    unsigned char buf[2048];
    unsigned char *out = buf;
    ssize_t n;

    if (tap->fd < 0) {       /* closed: the agent is stopping */
        tap->tx_errors++;
        return ERR_IF;
    }
    if (p->tot_len > sizeof buf) {
        out = malloc(p->tot_len);
        if (!out) {
            tap->tx_errors++;
            return ERR_MEM;
        }
    }
    if (pbuf_copy_partial(p, out, p->tot_len, 0) != p->tot_len) {
        tap->tx_errors++;
        if (out != buf)
            free(out);
        return ERR_BUF;
    }
    do {
        n = write(tap->fd, out, p->tot_len);
    } while (n < 0 && errno == EINTR);
    if (out != buf)
        free(out);
    if (n != (ssize_t)p->tot_len) {
        tap->tx_errors++;
        return ERR_IF;
    }
    tap->tx_frames++;
    return ERR_OK;
}

err_t tapdev_netif_init(struct netif *netif)
{
    struct tapdev *tap = (struct tapdev *)netif->state;
    netif->name[0] = 't';
    netif->name[1] = 'p';
    netif->output = etharp_output;
#if LWIP_IPV6
    netif->output_ip6 = ethip6_output;
#endif
    netif->linkoutput = tapdev_linkoutput;
    netif->mtu = 1500;
#if LWIP_IPV6 && LWIP_ND6_ALLOW_RA_UPDATES
    netif->mtu6 = 1500;
#endif
    netif->hwaddr_len = 6;
    memcpy(netif->hwaddr, tap->mac, 6);
    netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP
                   | NETIF_FLAG_ETHERNET | NETIF_FLAG_IGMP;
#if LWIP_IPV6_MLD
    netif->flags |= NETIF_FLAG_MLD6;
#endif
    return ERR_OK;
}

static void *reader(void *arg)
{
    struct tapdev *tap = (struct tapdev *)arg;
    struct netif *netif = reader_netif;
    unsigned char *buf = malloc(TAP_BUFSIZE);
    if (!buf) {
        fprintf(stderr, "lwip-agent: tap reader: out of memory\n");
        return NULL;
    }
    for (;;) {
        struct pollfd fds[2] = {{tap->fd, POLLIN, 0},
                                {tap->stop_pipe[0], POLLIN, 0}};
        int rc = poll(fds, 2, -1);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "lwip-agent: tap reader: poll: %s\n",
                    strerror(errno));
            break;
        }
        if (fds[1].revents)
            break;
        if (!(fds[0].revents & POLLIN)) {
            if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
                fprintf(stderr, "lwip-agent: tap reader: device error\n");
                break;
            }
            continue;
        }
        ssize_t n = read(tap->fd, buf, TAP_BUFSIZE);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fprintf(stderr, "lwip-agent: tap reader: read: %s\n",
                    strerror(errno));
            break;
        }
        if (n < ETH_HDR_LEN || n > 0xFFFF) {
            tap->rx_dropped++;
            continue;
        }
        /* One PBUF_RAM pbuf holding the whole frame. */
        struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)n, PBUF_RAM);
        if (!p) {
            tap->rx_dropped++;
            continue;
        }
        if (pbuf_take(p, buf, (u16_t)n) != ERR_OK) {
            pbuf_free(p);
            tap->rx_dropped++;
            continue;
        }
        tap->rx_frames++;
        if (netif->input(p, netif) != ERR_OK) {
            pbuf_free(p);
            tap->rx_dropped++;
        }
    }
    free(buf);
    return NULL;
}

int tapdev_start(struct tapdev *tap, struct netif *netif)
{
    reader_netif = netif;
    int rc = pthread_create(&reader_thread, NULL, reader, tap);
    if (rc) {
        errno = rc;
        return -1;
    }
    tap->thread_started = 1;
    return 0;
}

void tapdev_close(struct tapdev *tap)
{
    if (tap->thread_started) {
        char c = 'q';
        ssize_t w;
        do {
            w = write(tap->stop_pipe[1], &c, 1);
        } while (w < 0 && errno == EINTR);
        pthread_join(reader_thread, NULL);
        tap->thread_started = 0;
    }
    for (int i = 0; i < 2; i++)
        if (tap->stop_pipe[i] >= 0) {
            close(tap->stop_pipe[i]);
            tap->stop_pipe[i] = -1;
        }
    /* The tcpip thread may be sending: close under the core lock, and
     * linkoutput drops frames from then on. */
    LOCK_TCPIP_CORE();
    if (tap->fd >= 0) {
        close(tap->fd);
        tap->fd = -1;
    }
    UNLOCK_TCPIP_CORE();
}
