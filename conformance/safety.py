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
