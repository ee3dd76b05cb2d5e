#!/usr/bin/env python3
"""Writes the seeds for the `http_head` and `proxyproto` targets.

Run from anywhere: `python3 fuzz/seeds/gen_proxy.py`. http_head gets RFC
9112 example requests, pipelined and chunked requests, and one request per
refusal the parser makes (each smuggling vector). proxyproto gets the
spec's v1 examples, the v2 vectors from testdata/proxyproto/, malformed
variants, and raw address octets for the encoder half of the target.
Names are content hashes, so re-running is idempotent.
"""
import glob
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.join(HERE, "..", "..", "testdata", "proxyproto")


def write(target, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def req(fields="", line="GET / HTTP/1.1", host="Host: a.test\r\n", body=""):
    return (line + "\r\n" + host + fields + "\r\n" + body).encode("latin-1")


HTTP = [
    req(),
    "GET /hello.txt HTTP/1.1\r\nUser-Agent: curl/7.64.1\r\nHost: www.example.com\r\n"
    "Accept-Language: en, mi\r\n\r\n".encode(),
    req(line="GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1", host="Host: www.example.org\r\n"),
    req(line="OPTIONS * HTTP/1.1", host="Host: www.example.org:8001\r\n"),
    req(line="GET / HTTP/1.0", host=""),
    req(line="GET / HTTP/1.0", host="", fields="Connection: keep-alive\r\n"),
    b"\r\n" + req(),
    req("Content-Length: 5\r\n", line="POST /a HTTP/1.1", body="hello") + req(line="GET /b HTTP/1.1"),
    req("Transfer-Encoding: chunked\r\n", line="POST /a HTTP/1.1",
        body="4;name=value\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n") + req(),
    req("Transfer-Encoding: chunked\r\n", line="POST /a HTTP/1.1", body="0\r\n\r\n"),
    req("Content-Length: 5\r\nExpect: 100-continue\r\n", line="PUT /up HTTP/1.1"),
    req("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n", line="GET /chat HTTP/1.1"),
    req("X-Forwarded-For: 10.0.0.1\r\nx-real-ip: 10.0.0.2\r\nForwarded: for=10.0.0.3\r\nAccept: */*\r\n"),
    req("X-A: \ta\tb\xff \r\n"),
    # Refusals, one each.
    req("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n", line="POST / HTTP/1.1"),
    req("Content-Length: 6\r\nContent-Length: 5\r\n", line="POST / HTTP/1.1"),
    req("Content-Length: 6, 6\r\n", line="POST / HTTP/1.1"),
    req("Content-Length: +6\r\n", line="POST / HTTP/1.1"),
    req("Transfer-Encoding: chunked, identity\r\n", line="POST / HTTP/1.1"),
    req("Transfer-Encoding: xchunked\r\n", line="POST / HTTP/1.1"),
    req("Transfer-Encoding: gzip, chunked\r\n", line="POST / HTTP/1.1"),
    req("Transfer-Encoding: chunked\r\n", line="POST / HTTP/1.0", host=""),
    req("X-A: a\r\n b\r\n"),
    b"GET / HTTP/1.1\nHost: a.test\n\n",
    req("X: a\rb\r\n"),
    req("Transfer-Encoding : chunked\r\n"),
    req("X-A: a\x00b\r\n"),
    req(line="GET  / HTTP/1.1"),
    req(line="GET / HTTP/2.0"),
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    req(host=""),
    req(host="Host: a.test\r\nHost: b.test\r\n"),
    req(host="Host: 192.0.2.1\r\n"),
    req(host="Host: [2001:db8::1]:80\r\n"),
    req(host="Host: a..test\r\n"),
    req(line="GET http://a.test/ HTTP/1.1", host="Host: b.test\r\n"),
    req(line="CONNECT a.test:443 HTTP/1.1"),
    req("X-Pad: " + "a" * 17000 + "\r\n"),
    req("".join(f"X-{i}: v\r\n" for i in range(100))),
    # Chunked bodies alone, for the decoder run on the whole input.
    b"5\r\nhello\r\n0\r\n\r\n",
    b"ffffffffffffffff\r\n",
    b"0\r\nX: a\r\n\r\n",
]

for data in HTTP:
    write("http_head", data)

F = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
PROXY = [
    b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n",
    b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
    f"PROXY TCP6 {F} {F} 65535 65535\r\n".encode(),
    b"PROXY UNKNOWN\r\n",
    f"PROXY UNKNOWN {F} {F} 65535 65535\r\n".encode(),
    b"PROXY TCP6 ::ffff:192.0.2.7 2001:db8::80 40000 80\r\n",
    b"PROXY TCP4  192.0.2.1 192.0.2.2 1 2\r\n",
    b"PROXY TCP4 192.0.2.1 192.0.2.2 01 2\r\n",
    b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",
    # Raw octets for the encoders: flags, then 18 octets per address.
    b"\x00" + bytes(range(36)),
    b"\x03" + bytes(range(100, 136)) + b"tail",
]
for path in sorted(glob.glob(os.path.join(TESTDATA, "*.bin"))):
    with open(path, "rb") as f:
        v = f.read()
    PROXY += [v, v[:20], v[:12] + b"\x22" + v[13:], v[:14] + struct.pack(">H", 0xffff) + v[16:]]

for data in PROXY:
    write("proxyproto", data)
