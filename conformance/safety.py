"""The lab's safety interlock: the suite injects only at addresses it may.

By default that is an address inside the benchmarking ranges reserved for
exactly this kind of lab (RFC 2544's 198.18.0.0/15, RFC 5180's 2001:2::/48),
on a link the suite built itself.  Anything else must be named explicitly by
the user (a later remote-target mode); the check happens before the first
packet, and every frame is checked again as it leaves.
"""

from __future__ import annotations

import ipaddress

LAB_NETWORKS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:2::/48"))


class UnsafeTarget(Exception):
    """The suite refuses to send to this address."""


def is_lab_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in net for net in LAB_NETWORKS)


def check_target(address: str, allowed: tuple[str, ...] = ()) -> None:
    """Refuse a target outside the lab ranges unless the user allowed it by name."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise UnsafeTarget(f"{address!r} is not an IP address") from None
    if is_lab_address(address) or str(ip) in {str(ipaddress.ip_address(a)) for a in allowed}:
        return
    raise UnsafeTarget(
        f"refusing to inject at {ip}: it is outside the lab ranges "
        f"({', '.join(map(str, LAB_NETWORKS))}) and was not configured explicitly as a target")


def unowned_address_problem(address: str, link_networks=()) -> str | None:
    """Why an address the suite would speak for (a remote link's unowned tester
    address) is refused, or None.  It must lie in the lab ranges or in a
    subnet of the link itself (`link_networks`, the interface's own), and not
    be such a subnet's network or broadcast address, which every host on the
    link takes as its own."""
    ip = ipaddress.ip_address(address)
    networks = [ipaddress.ip_network(n, strict=False) for n in link_networks]
    around = [n for n in networks + list(LAB_NETWORKS) if ip in n]
    if not around:
        return (f"{ip} is outside the lab ranges ({', '.join(map(str, LAB_NETWORKS))}) and "
                f"outside the subnets of the link ({', '.join(map(str, networks)) or 'none'})")
    for net in around:
        if ip.version == 4 and net.prefixlen < 31 and ip in (net.network_address,
                                                              net.broadcast_address):
            return f"{ip} is the {'broadcast' if ip == net.broadcast_address else 'network'} " \
                   f"address of {net}, not a host's"
    return None
