"""What the suite refuses to touch, as pure rules (the lab and the options
apply them; tests/test_plugin.py and test_remote.py show them at work)."""

from __future__ import annotations

import pytest

from conformance.lab import sysctl_problem
from conformance.safety import unowned_address_problem


@pytest.mark.parametrize("key", ["net.ipv4.tcp_rfc1337", "net.ipv6.conf.all.forwarding",
                                 "net.core.somaxconn", "net.netfilter.nf_conntrack_max"])
def test_the_network_namespace_settings_are_allowed(key):
    assert sysctl_problem(key) is None


@pytest.mark.parametrize("key", ["kernel.hostname", "vm.swappiness", "fs.file-max",
                                 "user.max_net_namespaces", "net", "net.", "NET.ipv4.x",
                                 "net.ipv4.tcp_rfc1337 ", "../kernel/hostname"])
def test_every_other_setting_is_refused(key):
    assert "is not a setting of the target's network namespace" in sysctl_problem(key)


@pytest.mark.parametrize("address, networks", [
    ("198.18.0.250", []), ("2001:2::fa", []),
    ("192.0.2.250", ["192.0.2.1/24"]), ("192.0.2.1", ["192.0.2.0/31"]),
    ("2001:db8::fa", ["2001:db8::1/64"]),
])
def test_a_tester_address_of_the_lab_or_the_link_is_allowed(address, networks):
    assert unowned_address_problem(address, networks) is None


@pytest.mark.parametrize("address, networks, words", [
    ("8.8.8.8", ["192.0.2.1/24"], "outside the lab ranges"),
    ("192.0.2.250", [], "outside the subnets of the link (none)"),
    ("192.0.2.255", ["192.0.2.1/24"], "the broadcast address of 192.0.2.0/24"),
    ("192.0.2.0", ["192.0.2.1/24"], "the network address of 192.0.2.0/24"),
    ("198.19.255.255", [], "the broadcast address of 198.18.0.0/15"),
    ("2001:db9::1", ["2001:db8::1/64"], "outside the lab ranges"),
])
def test_other_tester_addresses_are_refused(address, networks, words):
    assert words in unowned_address_problem(address, networks)
