/* What the agent needs from the lwIP build it is compiled against.
 *
 * Debian's liblwip is built once, with Debian's /usr/include/lwip/lwipopts.h
 * (written for the GNU Hurd's lwIP translator).  Structure layouts (struct
 * netif, struct tcp_pcb, struct lwip_sock) depend on those options, so the
 * agent must be compiled with exactly that lwipopts.h: it has no lwipopts.h
 * of its own, and this header only checks, at compile time, that the
 * options the agent relies on are the ones it was written for. */
#ifndef TCPCONF_LWIP_CONFIG_CHECK_H
#define TCPCONF_LWIP_CONFIG_CHECK_H

#include "lwip/opt.h"

#if NO_SYS
#error "lwip-agent needs NO_SYS=0 (an OS port with threads, tcpip_init)"
#endif
#if !LWIP_TCPIP_CORE_LOCKING
#error "lwip-agent needs LWIP_TCPIP_CORE_LOCKING=1 (LOCK_TCPIP_CORE around pcb access)"
#endif
#if LWIP_COMPAT_SOCKETS
#error "lwip-agent needs LWIP_COMPAT_SOCKETS=0 (it calls lwip_socket, lwip_bind, ...)"
#endif
#if !LWIP_SOCKET || !LWIP_SOCKET_POLL
#error "lwip-agent needs the socket API with lwip_poll (LWIP_SOCKET, LWIP_SOCKET_POLL)"
#endif
#if !LWIP_TCP || !LWIP_IPV4 || !LWIP_ETHERNET || !LWIP_ARP
#error "lwip-agent needs TCP over IPv4 on Ethernet with ARP"
#endif
#if !LWIP_SO_LINGER || !SO_REUSE
#error "lwip-agent expects SO_LINGER and SO_REUSEADDR support"
#endif
#if LWIP_NETCONN_FULLDUPLEX
#error "lwip-agent reads struct lwip_sock as laid out without LWIP_NETCONN_FULLDUPLEX"
#endif

#endif
