#!/bin/sh
# Give a user-space stack (lwIP, PyTCP) the lab's link: bridge the lab's veth
# end with a tap in an existing lab target namespace, or take it out again.
#
#   tap-bridge.sh TARGET_NS            set up
#   tap-bridge.sh --teardown TARGET_NS take down (also: TARGET_NS down)
#
# TCPCONF_TAP names the tap (default lwip0); TCPCONF_BRIDGE and TCPCONF_VETH
# the bridge (br0) and the veth end (target0).
#
# Before:  target0 (veth end, lab MAC 02:00:c6:12:00:02, NO kernel address)
# After:   br0 (bridge, no address) with ports target0 and the tap (a
#          persistent tap that the stack's agent attaches to), all up.  The
#          stack owns the lab MAC and addresses on the tap; the kernel owns none:
#            - target0 gets another MAC while bridged (a bridge delivers
#              frames for its ports' own MACs to the kernel, not to the
#              other ports: with target0 keeping the lab MAC, the stack would
#              never see a frame addressed to it);
#            - br0, the tap and target0 have IPv6 disabled and no IPv4
#              address, so the kernel answers neither ARP nor neighbour
#              solicitations nor TCP for the lab addresses.
# Everything happens inside TARGET_NS; nothing is created or changed
# outside it.  Teardown restores target0's MAC and IPv6 setting (saved in
# br0's alias) and deletes br0 and the tap.
set -eu

TAP=${TCPCONF_TAP:-lwip0}
BRIDGE=${TCPCONF_BRIDGE:-br0}
VETH=${TCPCONF_VETH:-target0}
# Locally administered MACs of the lab's 02:00:c6:12:00:xx block, distinct
# from the tester's (:01) and lwIP's (:02).
VETH_BRIDGED_MAC=02:00:c6:12:00:fe
BRIDGE_MAC=02:00:c6:12:00:fd
TAP_KERNEL_MAC=02:00:c6:12:00:fc

die() { echo "tap-bridge.sh: $*" >&2; exit 1; }

usage() {
    echo "usage: $0 TARGET_NS | $0 --teardown TARGET_NS | $0 TARGET_NS down" >&2
    exit 2
}

action=up
case "${1:-}" in
    --teardown|--down) action=down; shift ;;
    -h|--help) usage ;;
esac
[ $# -ge 1 ] || usage
NS=$1
if [ $# -ge 2 ]; then
    case "$2" in
        down|teardown) action=down ;;
        up) ;;
        *) usage ;;
    esac
fi

[ "$(id -u)" = 0 ] || die "must run as root"
command -v ip >/dev/null || die "ip (iproute2) is missing"
[ -e "/run/netns/$NS" ] || die "no network namespace '$NS'"

nsip() { ip -n "$NS" "$@"; }
nsexec() { ip netns exec "$NS" "$@"; }
have_link() { nsip link show dev "$1" >/dev/null 2>&1; }
sysctl_get() { nsexec sysctl -n "$1" 2>/dev/null || echo "?"; }
sysctl_set() { nsexec sysctl -qw "$1=$2"; }

teardown() {
    saved=""
    if have_link "$BRIDGE"; then
        saved=$(nsip -o link show dev "$BRIDGE" | sed -n 's/.*alias \(tcpconf-tap.*\)$/\1/p')
        nsip link set "$BRIDGE" down 2>/dev/null || true
    fi
    if have_link "$VETH"; then
        nsip link set "$VETH" nomaster 2>/dev/null || true
    fi
    if have_link "$TAP"; then
        nsip link set "$TAP" nomaster 2>/dev/null || true
        nsip tuntap del dev "$TAP" mode tap 2>/dev/null || nsip link del "$TAP" 2>/dev/null || true
    fi
    if have_link "$BRIDGE"; then
        nsip link del "$BRIDGE"
    fi
    if [ -n "$saved" ] && have_link "$VETH"; then
        mac=$(echo "$saved" | sed -n 's/.*mac=\([0-9a-f:]*\).*/\1/p')
        v6=$(echo "$saved" | sed -n 's/.*disable_ipv6=\([0-9]\).*/\1/p')
        if [ -n "$mac" ]; then
            nsip link set "$VETH" down
            nsip link set "$VETH" address "$mac"
            nsip link set "$VETH" up
        fi
        if [ -n "$v6" ]; then
            sysctl_set "net.ipv6.conf.$VETH.disable_ipv6" "$v6" || true
        fi
    fi
}

setup() {
    have_link "$VETH" || die "no interface $VETH in $NS"
    if have_link "$BRIDGE" || have_link "$TAP"; then
        die "$BRIDGE or $TAP already exists in $NS (run '$0 --teardown $NS' first)"
    fi
    addrs=$(nsip -o addr show dev "$VETH" | awk '{print $4}')
    if [ -n "$addrs" ]; then
        die "$VETH has kernel addresses ($(echo $addrs)): remove them first" \
            "('ip -n $NS addr flush dev $VETH'), or the kernel answers for them"
    fi
    orig_mac=$(nsexec cat "/sys/class/net/$VETH/address")
    orig_v6=$(sysctl_get "net.ipv6.conf.$VETH.disable_ipv6")

    # From here on, undo everything if a step fails.
    trap 'teardown' EXIT

    nsip link add name "$BRIDGE" address "$BRIDGE_MAC" type bridge \
        stp_state 0 forward_delay 0 mcast_snooping 0
    nsip link set "$BRIDGE" alias "tcpconf-tap mac=$orig_mac disable_ipv6=$orig_v6"
    nsip tuntap add dev "$TAP" mode tap
    nsip link set "$TAP" address "$TAP_KERNEL_MAC"
    for dev in "$BRIDGE" "$TAP" "$VETH"; do
        if nsexec test -e "/proc/sys/net/ipv6/conf/$dev"; then
            sysctl_set "net.ipv6.conf.$dev.disable_ipv6" 1
        fi
    done
    nsip link set "$VETH" down
    nsip link set "$VETH" address "$VETH_BRIDGED_MAC"
    nsip link set "$VETH" master "$BRIDGE"
    nsip link set "$TAP" master "$BRIDGE"
    nsip link set "$BRIDGE" up
    nsip link set "$TAP" up
    nsip link set "$VETH" up
    # Offloads off on the tap as on the lab's veth end: frames reach lwIP
    # with complete checksums, one segment each.
    if command -v ethtool >/dev/null; then
        nsexec ethtool -K "$TAP" tx off tso off gso off >/dev/null 2>&1 || true
    fi
    # The kernel applies carrier changes through its link watch, up to a
    # second later; until target0 is a forwarding bridge port every frame
    # is dropped.  (lwip0 forwards once lwip-agent attaches; the agent
    # waits for that itself.)
    i=0
    until [ "$(nsexec cat "/sys/class/net/$VETH/operstate")" = up ] &&
          [ "$(nsexec cat "/sys/class/net/$VETH/brport/state")" = 3 ]; do
        i=$((i + 1))
        [ $i -le 500 ] || die "$VETH did not become a forwarding bridge port within 5 s"
        sleep 0.01
    done
    trap - EXIT
}

case $action in
    up) setup ;;
    down) teardown ;;
esac
