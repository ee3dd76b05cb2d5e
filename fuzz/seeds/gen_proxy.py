#!/usr/bin/env python3
"""Writes the seeds for the `http_head`, `http_response` and `proxyproto` targets.

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
    # Every forwarding field the proxy strips, spelled as sent and with
    # underscores; Connection options that nominate them; trailers that
    # carry them; the h2c upgrade.
    req("X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-Port: 443\r\n"),
    req("X-Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\nx-forwarded_proto: https\r\nTrue-Client-IP: 6.6.6.6\r\n"),
    req("Connection: close, X-Forwarded-For, x_real_ip, Content-Length\r\nX-Custom: 1\r\n"),
    req("Connection: X-Forwarded-For\r\n"),
    req("Transfer-Encoding: chunked\r\n", line="POST /t HTTP/1.1",
        body="5\r\nhello\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n\r\n"),
    req("Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"),
    req("Connection: keep-alive, Upgrade\r\nUpgrade: websocket, h2c\r\n"),
    b"5\r\nhello\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
]

for data in HTTP:
    write("http_head", data)

# http_response: the first octet is what up to four requests asked, two
# bits each (HEAD, upgrade); then what the backend sent.
def resp(status="200 OK", fields="", body=""):
    return ("HTTP/1.1 " + status + "\r\n" + fields + "\r\n" + body).encode("latin-1")

GET, HEAD, UPGRADE = 0, 1, 2
def asks(*a):
    return bytes([sum(v << (2 * i) for i, v in enumerate(a))])

RESPONSES = [
    asks(GET) + resp(fields="Content-Length: 5\r\n", body="hello"),
    asks(GET, GET) + resp(fields="Content-Length: 1\r\n", body="x") + resp("204 No Content"),
    asks(GET) + resp(fields="Transfer-Encoding: chunked\r\n", body="5\r\nhello\r\n0\r\nT: x\r\n\r\n"),
    asks(HEAD, GET) + resp(fields="Content-Length: 5\r\n") + resp(fields="Content-Length: 2\r\n", body="hi"),
    asks(GET) + resp("100 Continue") + resp("103 Early Hints", "Link: </a>\r\n") + resp("201 Created", "Content-Length: 0\r\n"),
    asks(UPGRADE) + resp("101 Switching Protocols", "Upgrade: websocket\r\nConnection: Upgrade\r\n") + b"\x81\x05hello",
    asks(GET, UPGRADE) + resp(fields="Content-Length: 1\r\n", body="x") + resp("101 Switching Protocols", "Upgrade: x\r\n"),
    asks(UPGRADE) + resp(fields="Content-Length: 2\r\n", body="no") + resp(fields="Content-Length: 0\r\n"),
    asks(GET) + resp("101 Switching Protocols"),
    asks(GET) + resp("304 Not Modified", "ETag: \"x\"\r\n"),
    asks(GET) + b"HTTP/1.0 200 OK\r\n\r\nuntil the close",
    asks(GET) + resp(fields="Transfer-Encoding: gzip\r\n", body="zzz"),
    asks(GET) + resp(fields="Content-Length: 5, 5\r\nContent-Length: 5\r\n", body="hello"),
    asks(GET) + resp(fields="Content-Length: 5, 6\r\n"),
    asks(GET) + resp(fields="Content-Length: 5\r\n", body="hel"),
    asks(GET) + b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
    asks(GET) + resp(fields="X: " + "a" * 17000 + "\r\n"),
]
for data in RESPONSES:
    write("http_response", data)

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
    # The same, then an authority (the tail up to its first octet's value)
    # and a unique ID for the version 2 encoder.
    b"\x00" + bytes(range(36)) + b"\x11app.example.test" + bytes(range(16)),
]
for path in sorted(glob.glob(os.path.join(TESTDATA, "*.bin"))):
    with open(path, "rb") as f:
        v = f.read()
    PROXY += [v, v[:20], v[:12] + b"\x22" + v[13:], v[:14] + struct.pack(">H", 0xffff) + v[16:]]

for data in PROXY:
    write("proxyproto", data)
