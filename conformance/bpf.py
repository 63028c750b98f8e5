"""Capture filters compiled by libpcap, called through ctypes.

The expression language is tcpdump's (pcap-filter(7)); libpcap turns it
into classic BPF, which the kernel then runs on the capture socket (wire.py),
so frames of other flows never wake the tester up.  libpcap is a package
every sweep installs (./run: libpcap0.8); calling it directly spares loading
Scapy, whose own binding does the same.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

DLT_EN10MB = 1
PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
SNAPLEN = 65535


class _Program(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class FilterError(Exception):
    """The expression does not compile: libpcap's message says why."""


@functools.lru_cache(maxsize=1)
def _libpcap():
    name = ctypes.util.find_library("pcap") or "libpcap.so.0.8"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise FilterError(f"libpcap cannot be loaded ({exc}): install libpcap0.8") from None
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_Program), ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_uint32]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_Program)]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    return lib


def compile_filter(expression: str) -> tuple[bytes, int]:
    """The classic BPF program for `expression` on Ethernet frames: its
    instructions as the kernel's struct sock_filter array, and their count."""
    lib = _libpcap()
    handle = lib.pcap_open_dead(DLT_EN10MB, SNAPLEN)
    if not handle:
        raise FilterError("libpcap could not open a dead capture handle")
    program = _Program()
    try:
        if lib.pcap_compile(handle, ctypes.byref(program), expression.encode(), 1,
                            PCAP_NETMASK_UNKNOWN) != 0:
            raise FilterError(lib.pcap_geterr(handle).decode(errors="replace"))
        try:
            return ctypes.string_at(program.bf_insns, program.bf_len * 8), program.bf_len
        finally:
            lib.pcap_freecode(ctypes.byref(program))
    finally:
        lib.pcap_close(handle)
