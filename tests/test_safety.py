"""What the suite refuses to touch, as pure rules (the lab and the options
apply them; tests/test_plugin.py and test_remote.py show them at work)."""

from __future__ import annotations

import pytest

from conformance.lab import sysctl_problem


@pytest.mark.parametrize("key", ["net.ipv4.tcp_rfc1337", "net.ipv6.conf.all.forwarding",
                                 "net.core.somaxconn", "net.netfilter.nf_conntrack_max"])
def test_the_network_namespace_settings_are_allowed(key):
    assert sysctl_problem(key) is None


@pytest.mark.parametrize("key", ["kernel.hostname", "vm.swappiness", "fs.file-max",
                                 "user.max_net_namespaces", "net", "net.", "NET.ipv4.x",
                                 "net.ipv4.tcp_rfc1337 ", "../kernel/hostname"])
def test_every_other_setting_is_refused(key):
    assert "is not a setting of the target's network namespace" in sysctl_problem(key)
