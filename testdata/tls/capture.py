#!/usr/bin/env python3
"""Captures real TLS ClientHellos from `curl` and `openssl s_client`, for
crates/proxy/src/sni_tests.rs.

A TCP listener on 127.0.0.1 (an OS-chosen free port) accepts each client,
reads what it sends until it has been quiet for a second, saves those
bytes as `NAME.bin` here and closes the connection, so the client gives up.
Nothing answers the handshake: all a client ever sends is its ClientHello.

This OpenSSL (3.0) has no post-quantum groups, so `curl-x25519mlkem768.bin`
is built, not captured: the curl capture with an X25519MLKEM768 (0x11EC,
draft-ietf-tls-ecdhe-mlkem) key share of 1216 octets put first in its
key_share extension and 0x11EC put first in supported_groups, every length
fixed up. Its key share is a fixed pattern, not a real ML-KEM key.

    python3 testdata/tls/capture.py
"""
import os
import socket
import struct
import subprocess
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "www.capture.test"

# (file stem, client command; {port} and {host} are filled in)
CLIENTS = [
    ("curl", ["curl", "-sk", "--max-time", "5", "--resolve", "{host}:{port}:127.0.0.1", "https://{host}:{port}/"]),
    (
        "curl-tls12",
        ["curl", "-sk", "--max-time", "5", "--tlsv1.2", "--tls-max", "1.2",
         "--resolve", "{host}:{port}:127.0.0.1", "https://{host}:{port}/"],
    ),
    ("openssl-mixed-case", ["openssl", "s_client", "-connect", "127.0.0.1:{port}", "-servername", "Mixed.Capture.TEST"]),
    ("openssl-no-sni", ["openssl", "s_client", "-connect", "127.0.0.1:{port}", "-noservername"]),
    ("openssl-ip-literal", ["openssl", "s_client", "-connect", "127.0.0.1:{port}", "-servername", "192.0.2.1"]),
]


def capture(argv):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    got = bytearray()

    def serve():
        conn, _ = srv.accept()
        conn.settimeout(1.0)
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got.extend(chunk)
        except socket.timeout:
            pass
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    argv = [a.format(port=port, host=HOST) for a in argv]
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
    t.join(timeout=10)
    srv.close()
    return bytes(got)


def vec16(b):
    return struct.pack(">H", len(b)) + b


def with_mlkem(hello):
    """`hello` (one record, one ClientHello) with an X25519MLKEM768 share."""
    body = hello[9:]
    pos = 2 + 32
    pos += 1 + body[pos]  # session_id
    pos += 2 + struct.unpack(">H", body[pos : pos + 2])[0]  # cipher_suites
    pos += 1 + body[pos]  # compression_methods
    head, exts = body[:pos], body[pos + 2 :]
    out = b""
    while exts:
        typ, n = struct.unpack(">HH", exts[:4])
        data, exts = exts[4 : 4 + n], exts[4 + n :]
        if typ == 10:  # supported_groups: NamedGroupList
            data = vec16(b"\x11\xec" + data[2:])
        elif typ == 51:  # key_share: KeyShareEntry client_shares<0..2^16-1>
            share = bytes((i * 7 + 3) & 0xFF for i in range(1216))
            data = vec16(struct.pack(">H", 0x11EC) + vec16(share) + data[2:])
        out += struct.pack(">H", typ) + vec16(data)
    body = head + vec16(out)
    msg = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return hello[:3] + vec16(msg)


def main():
    for stem, argv in CLIENTS:
        data = capture(argv)
        if not data or data[0] != 22:
            raise SystemExit(f"{stem}: no ClientHello captured ({len(data)} octets)")
        with open(os.path.join(HERE, f"{stem}.bin"), "wb") as f:
            f.write(data)
        print(f"{stem}: {len(data)} octets")
        if stem == "curl":
            pq = with_mlkem(data)
            with open(os.path.join(HERE, "curl-x25519mlkem768.bin"), "wb") as f:
                f.write(pq)
            print(f"curl-x25519mlkem768: {len(pq)} octets (built)")


if __name__ == "__main__":
    main()
