"""A stateful firewall in the lab: a router namespace with nftables between the
tester and a real end host, so that the device in the middle is the target.

    tester namespace       firewall namespace                    target namespace
    +-------------+        +---------------------------------+   +------------------+
    | tester0     |<------>| fw0 198.18.0.254  2001:2::fe    |   | the end host     |
    | (speaks for |  veth  |   nftables forward chain,       |   | (Linux, with the |
    | 198.18.0.1, |        |   connection tracking           |   | agent)           |
    | 2001:2::1)  |        | fw1 198.18.1.254  2001:2:0:1::fe|<->| target0          |
    +-------------+        +---------------------------------+   | 198.18.1.2       |
       outside link                                  inside link | 2001:2:0:1::2    |
                                                                 +------------------+

The firewall routes between the two links (forwarding on, one hop), and its
forward chain is one of three rulesets (:data:`RULESETS`):

* ``firewall``: the reference stateful firewall.  Packets of a tracked
  connection pass (``ct state established,related``), a packet the tracker
  finds invalid is dropped, and a new connection passes only if it begins
  with a SYN.  The last rule matters on Linux: with nf_conntrack_tcp_loose
  at its default of 1, the tracker picks a connection up from any segment,
  so without the rule an ACK with no connection behind it would open one.
* ``firewall-weak``: a stateless filter that passes every TCP segment, as the
  packet filters the project's seed note warns about did ("an ordinary packet
  filter lets an ACK through: certainly not a good idea").  It is there to
  show that the middlebox cases can fail.
* ``nat``: the reference firewall, and masquerade on the outside link: the
  end host's connections leave from the firewall's outside address.  Its
  input chain drops new inbound TCP to the NAT itself: without it, the
  NAT's own stack answers an unsolicited SYN with a RST, which RFC 5382
  REQ-4 forbids (the case nat.unsolicited-syn-silent failed so).

Nothing in any namespace asks for a neighbour: every neighbour entry is
permanent, as in the plain lab.  The firewall's own settings that change
what it does (the tracker's sysctls and timeouts, the ruleset) go into the
report.
"""

from __future__ import annotations

from .lab import (LAB_SYSCTLS, PREFIX, TARGET_IFACE, TARGET_IPV6_SYSCTLS, TARGET_MAC,
                  TESTER_IFACE, TESTER_IP, TESTER_IP6, TESTER_MAC, Lab, LabError, run)
from .tcp import IPV4, IPV6
from .wire import Link

# The firewall's interfaces: fw0 on the outside link (the tester's), fw1 on
# the inside link (the end host's).  Locally administered MACs of the lab's
# 02:00:c6:12:00:xx block, apart from every other lab MAC.
OUTSIDE_IFACE, INSIDE_IFACE = "fw0", "fw1"
OUTSIDE_MAC, INSIDE_MAC = "02:00:c6:12:00:d0", "02:00:c6:12:00:d1"
OUTSIDE_IP, OUTSIDE_IP6 = "198.18.0.254", "2001:2::fe"
INSIDE_IP, INSIDE_IP6 = "198.18.1.254", "2001:2:0:1::fe"
# A link-local address on the inside link: PyTCP takes only a link-local
# IPv6 gateway (its router is such an address, as RFC 4861 routers are).
INSIDE_LL6 = "fe80::fe"
HOST_IP, HOST_IP6 = "198.18.1.2", "2001:2:0:1::2"
PREFIXLEN, PREFIXLEN6 = 24, 64

FIREWALL, WEAK, NAT = "firewall", "firewall-weak", "nat"
TABLE = "tcpconf_firewall"

# The firewall namespace: a router that takes no part in IPv6 autoconfiguration.
FIREWALL_SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv6.conf.default.addr_gen_mode": "1",
    "net.ipv6.conf.default.accept_ra": "0",
    "net.ipv6.conf.default.dad_transmits": "0",
    "net.ipv6.conf.default.router_solicitations": "0",
}
# The tracker's settings, read back for the report (net.netfilter.*).
RECORDED_SYSCTLS = (
    "net.netfilter.nf_conntrack_tcp_loose", "net.netfilter.nf_conntrack_tcp_be_liberal",
    "net.netfilter.nf_conntrack_tcp_max_retrans",
    "net.netfilter.nf_conntrack_tcp_timeout_syn_sent",
    "net.netfilter.nf_conntrack_tcp_timeout_syn_recv",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_fin_wait",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
    "net.netfilter.nf_conntrack_tcp_timeout_last_ack",
    "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
    "net.netfilter.nf_conntrack_tcp_timeout_close",
    "net.netfilter.nf_conntrack_tcp_timeout_unacknowledged",
)

# ICMP echo passes in every ruleset: the sanity probe after each case and the
# fences of middlebox.py are echoes to the end host.  An ICMP error passes the
# stateful rulesets only as "related" to a tracked connection (RFC 6092 REC-10
# and REC-36); the stateless one passes every ICMP message.
_ECHO = """\
        icmp type { echo-request, echo-reply } accept
        icmpv6 type { echo-request, echo-reply } accept"""

_STATEFUL = f"""\
        ct state established,related accept comment "a tracked connection's packets"
        ct state invalid drop comment "what the tracker cannot place in a connection"
        tcp flags & (fin | syn | rst | ack) == syn ct state new accept \\
            comment "a new connection only from a SYN"
{_ECHO}"""

RULESETS = {
    FIREWALL: _STATEFUL,
    WEAK: """\
        meta l4proto tcp accept comment "stateless: every segment passes"
        meta l4proto { icmp, ipv6-icmp } accept""",
    NAT: _STATEFUL,
}


def ruleset(variant: str) -> str:
    """The nftables text (for 'nft -f') of one variant: its forward chain
    (policy drop), and for NAT masquerade on the outside link."""
    if variant not in RULESETS:
        raise LabError(f"unknown firewall ruleset {variant!r}; known: {', '.join(RULESETS)}")
    text = (f"table inet {TABLE} {{\n"
            f"    chain forward {{\n"
            f"        type filter hook forward priority filter; policy drop;\n"
            f"{RULESETS[variant]}\n"
            f"    }}\n")
    if variant == NAT:
        text += (f"    chain postrouting {{\n"
                 f"        type nat hook postrouting priority srcnat; policy accept;\n"
                 f"        oifname \"{OUTSIDE_IFACE}\" masquerade\n"
                 f"    }}\n"
                 # Without this, the NAT's own TCP answers an inbound SYN that
                 # matches no mapping with a RST (measured: RFC 5382 REQ-4 failed).
                 f"    chain input {{\n"
                 f"        type filter hook input priority filter; policy accept;\n"
                 f"        iifname \"{OUTSIDE_IFACE}\" meta l4proto tcp ct state new drop \\\n"
                 f"            comment \"RFC 5382 REQ-4: an unsolicited inbound SYN draws nothing\"\n"
                 f"    }}\n")
    return text + "}\n"


class FirewallLab(Lab):
    """The lab with a firewall namespace routing between tester and end host.

    `variant`: one of RULESETS.  The tester reaches the end host through the
    firewall; behind NAT, the end host is reached at the firewall's outside
    address (a connection the end host opens) and is hidden otherwise."""

    def __init__(self, variant: str = FIREWALL, **kwargs):
        if variant not in RULESETS:
            raise LabError(f"unknown firewall ruleset {variant!r}; known: {', '.join(RULESETS)}")
        super().__init__(**kwargs)
        self.variant = variant

    @property
    def firewall_ns(self) -> str:
        return f"{PREFIX}-{self.tag}-firewall"

    @property
    def links(self) -> dict[str, Link]:
        """The tester's links: to the end host, through the firewall (its MAC is
        the next hop); behind NAT, to the firewall's outside address."""
        common = dict(iface=TESTER_IFACE, tester_mac=TESTER_MAC, target_mac=OUTSIDE_MAC,
                      netns=self.tester_ns)
        nat = self.variant == NAT
        return {IPV4: Link(tester_ip=TESTER_IP, target_ip=OUTSIDE_IP if nat else HOST_IP,
                           **common),
                IPV6: Link(tester_ip=TESTER_IP6, target_ip=OUTSIDE_IP6 if nat else HOST_IP6,
                           **common)}

    @property
    def needs_nft(self) -> bool:
        return True

    @property
    def middle_namespaces(self) -> tuple[str, ...]:
        return (self.firewall_ns,)

    def namespaces(self) -> dict[str, dict]:
        namespaces = super().namespaces()
        namespaces[self.firewall_ns] = {**LAB_SYSCTLS, **FIREWALL_SYSCTLS}
        return namespaces

    def join(self) -> None:
        """tester0 <-> fw0 and fw1 <-> target0, each pair made in one namespace
        with its peer placed straight into the other."""
        f = self.firewall_ns
        run("ip", "-n", self.tester_ns, "link", "add", TESTER_IFACE, "address", TESTER_MAC,
            "type", "veth", "peer", "name", OUTSIDE_IFACE, "address", OUTSIDE_MAC, "netns", f)
        run("ip", "-n", f, "link", "add", INSIDE_IFACE, "address", INSIDE_MAC, "type", "veth",
            "peer", "name", TARGET_IFACE, "address", TARGET_MAC, "netns", self.target_ns)
        for iface, address, address6 in ((OUTSIDE_IFACE, OUTSIDE_IP, OUTSIDE_IP6),
                                         (INSIDE_IFACE, INSIDE_IP, INSIDE_IP6)):
            for key, value in TARGET_IPV6_SYSCTLS.items():
                iface_key = key.replace(".default.", f".{iface}.")
                run("ip", "netns", "exec", f, "sysctl", "-qw", f"{iface_key}={value}")
            run("ip", "netns", "exec", f, "ethtool", "-K", iface, "tx", "off", "tso", "off",
                "gso", "off", "gro", "off")
            run("ip", "-n", f, "link", "set", iface, "up")
            run("ip", "-n", f, "addr", "add", f"{address}/{PREFIXLEN}", "dev", iface)
            run("ip", "-n", f, "addr", "add", f"{address6}/{PREFIXLEN6}", "dev", iface, "nodad")
        run("ip", "-n", f, "addr", "add", f"{INSIDE_LL6}/64", "dev", INSIDE_IFACE, "nodad")
        # The firewall knows both ends without asking (the tester answers no
        # ARP or neighbour solicitation: its kernel owns no address).
        for ip in (TESTER_IP, TESTER_IP6):
            run("ip", "-n", f, "neigh", "replace", ip, "lladdr", TESTER_MAC,
                "dev", OUTSIDE_IFACE, "nud", "permanent")
        for ip in (HOST_IP, HOST_IP6):
            run("ip", "-n", f, "neigh", "replace", ip, "lladdr", TARGET_MAC,
                "dev", INSIDE_IFACE, "nud", "permanent")

    def configure_addresses(self) -> None:
        """The end host's addresses on the inside link, the firewall as its
        next hop (a permanent neighbour) and its default route."""
        self.address_target((HOST_IP, HOST_IP6), (INSIDE_IP, INSIDE_IP6), INSIDE_MAC,
                            via_neighbours=True)

    def start_middle(self) -> None:
        run("ip", "netns", "exec", self.firewall_ns, "nft", "-f", "-", input=ruleset(self.variant))

    def in_firewall(self, *argv: str, check: bool = True) -> str:
        return run("ip", "netns", "exec", self.firewall_ns, *argv, check=check)

    def settings(self) -> dict:
        values = super().settings()
        values["firewall ruleset"] = self.variant
        for key in RECORDED_SYSCTLS:
            values[f"firewall {key}"] = self.in_firewall("sysctl", "-n", key,
                                                         check=False).strip() or "?"
        return values

    @property
    def link_text(self) -> str:
        return (f"{TESTER_IP}, {TESTER_IP6} ({self.tester_ns}/{TESTER_IFACE}) <-> "
                f"{OUTSIDE_IP}, {OUTSIDE_IP6} [{self.firewall_ns}: {self.variant}] "
                f"{INSIDE_IP}, {INSIDE_IP6} <-> {HOST_IP}, {HOST_IP6} "
                f"({self.target_ns}/{TARGET_IFACE})")
