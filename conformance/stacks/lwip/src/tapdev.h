/* A small lwIP netif driver for a Linux tap device.
 *
 * Replaces the tapif driver shipped in Debian's liblwip, which corrupts its
 * heap on frames over about 600 bytes (lab notes: invalid write in pbuf_take
 * after a 616-byte pbuf_alloc).  Here every frame is read whole into a
 * buffer of 64 KiB and copied into one PBUF_RAM pbuf of exactly its length;
 * sending copies the (possibly chained) pbuf into one buffer and writes it
 * with one write(2), so each frame is one tap packet.
 *
 * The tap device must exist (created by tap-bridge.sh, persistent, no
 * packet information header); the driver attaches to it by name, never
 * creates or configures an interface (the equivalent of tapif's
 * PRECONFIGURED_TAPIF: no ifconfig is run). */
#ifndef TCPCONF_TAPDEV_H
#define TCPCONF_TAPDEV_H

#include "lwip/netif.h"

struct tapdev {
    char name[16];
    unsigned char mac[6];
    int fd;                 /* /dev/net/tun, attached to the tap */
    int stop_pipe[2];       /* written to stop the reader thread */
    int thread_started;
    unsigned long rx_frames, rx_dropped, tx_frames, tx_errors;
};

/* Attach to the tap device `name`.  Returns 0, or -1 with errno set and a
 * message in err. */
int tapdev_open(struct tapdev *tap, const char *name, const unsigned char mac[6],
                char *err, size_t errlen);
/* Wait until the kernel forwards frames through the tap: its operstate is
 * "up" and, when it is a bridge port, the port is forwarding.  Attaching
 * turns the tap's carrier on, but the kernel applies that through its
 * link watch, up to a second later; frames sent or received before then
 * are lost.  Returns 0 when ready, -1 after timeout_ms (a message in err). */
int tapdev_wait_ready(struct tapdev *tap, int timeout_ms, char *err,
                      size_t errlen);
/* netif_add() init function; netif->state must be the struct tapdev. */
err_t tapdev_netif_init(struct netif *netif);
/* Start the thread that reads frames and hands them to netif->input
 * (tcpip_input: the frame is processed in the tcpip thread). */
int tapdev_start(struct tapdev *tap, struct netif *netif);
/* Stop the reader thread and close the device (after tcpip_init). */
void tapdev_close(struct tapdev *tap);

#endif
