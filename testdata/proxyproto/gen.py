#!/usr/bin/env python3
"""Writes the PROXY protocol v2 vectors beside this file, octet by octet as
proxy-protocol.txt §2.2 lays them out (signature, ver/cmd, fam/proto,
length, addresses, ports, TLVs). Run: `python3 testdata/proxyproto/gen.py`.
"""
import ipaddress
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def hdr(ver_cmd, fam, body):
    return SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(body)) + body


def addrs(src, dst, sport, dport):
    return ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed + struct.pack(">HH", sport, dport)


def tlv(t, value):
    return bytes([t]) + struct.pack(">H", len(value)) + value


VECTORS = {
    # PROXY, TCP over IPv4: 192.168.0.1:56324 -> 192.168.0.11:443.
    "v2-tcp4.bin": hdr(0x21, 0x11, addrs("192.168.0.1", "192.168.0.11", 56324, 443)),
    # PROXY, TCP over IPv6: a mapped IPv4 client to an IPv6 backend.
    "v2-tcp6-mapped.bin": hdr(0x21, 0x21, addrs("::ffff:192.0.2.7", "2001:db8::80", 40000, 80)),
    # LOCAL, UNSPEC, no addresses (a health check).
    "v2-local.bin": hdr(0x20, 0x00, b""),
    # PROXY, TCP over IPv4, then an ALPN TLV and a NOOP TLV to be skipped.
    "v2-tcp4-tlvs.bin": hdr(0x21, 0x11, addrs("10.0.0.1", "10.0.0.2", 1, 65535)
                            + tlv(0x01, b"http/1.1") + tlv(0x04, b"\x00\x00\x00")),
    # PROXY, TCP over IPv4: 192.0.2.7:40000 -> 198.51.100.7:443, then
    # PP2_TYPE_AUTHORITY (0x02, §2.2.2) and PP2_TYPE_UNIQUE_ID (0x05,
    # §2.2.5), as sixgate sends them.
    "v2-tcp4-authority-id.bin": hdr(0x21, 0x11, addrs("192.0.2.7", "198.51.100.7", 40000, 443)
                                    + tlv(0x02, b"app.example.test") + tlv(0x05, bytes(range(16)))),
}

for name, data in VECTORS.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
