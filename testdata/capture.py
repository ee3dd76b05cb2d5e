#!/usr/bin/env python3
"""Captures the DNS UPDATE messages that real `knsupdate` (Knot DNS) sends.

Writes the binary test vectors under testdata/update/ and testdata/tsig/
that crates/dns loads with include_bytes!. Each message is caught by a UDP
listener on 127.0.0.1; the listener answers with a bare NOERROR so that
knsupdate exits quickly (it then complains that the reply is unsigned,
which does not matter here). TSIG vectors carry the time they were signed,
so re-running this script changes them and the tests' clocks with them.

    python3 testdata/capture.py
"""
import os
import socket
import subprocess
import threading

HERE = os.path.dirname(os.path.abspath(__file__))

# Test-only secrets; they protect nothing.
KEYS = {
    "hmac-sha256": ("sixgate-test-key.", "c2l4Z2F0ZSB0c2lnIHRlc3Qga2V5LCBzaGEyNTYhIQ=="),
    "hmac-sha512": ("Sha512.Test-Key.", "c2l4Z2F0ZSB0c2lnIHRlc3Qga2V5IGZvciBobWFjLXNoYTUxMiwgNjQgb2N0ZXRzIGxvbmcgb3IgbW9yZSEh"),
    "hmac-md5": ("md5.key.", "c2l4Z2F0ZSBtZDUga2V5IQ=="),
}

UPDATE = """\
zone example.com.
origin example.com.
prereq nxdomain new.example.com.
prereq yxrrset www.example.com. A
prereq yxrrset www.example.com. A 192.0.2.1
prereq nxrrset mail.example.com. MX
prereq yxdomain example.com.
update add new.example.com. 300 A 192.0.2.7
update add new.example.com. 300 MX 10 mail.example.com.
update add alias.example.com. 600 CNAME www.example.com.
update add example.com. 3600 NS ns2.example.com.
update delete old.example.com. TXT
update delete gone.example.com.
update delete www.example.com. A 192.0.2.1
"""

SIGNED = """\
zone example.com.
origin example.com.
update add www.example.com. 300 A 192.0.2.1
"""


def capture(script, args, out):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    got = {}

    def serve():
        data, peer = sock.recvfrom(65535)
        got["msg"] = data
        # Header only: same ID, QR + opcode UPDATE, NOERROR, no records.
        sock.sendto(data[:2] + bytes([0xA8, 0x00]) + bytes(8), peer)

    t = threading.Thread(target=serve)
    t.start()
    cmd = ["knsupdate", "-t", "2", "-r", "0"] + args
    subprocess.run(cmd, input=f"server 127.0.0.1 {port}\n{script}send\n", text=True,
                   capture_output=True, timeout=10)
    t.join(timeout=5)
    sock.close()
    with open(os.path.join(HERE, out), "wb") as f:
        f.write(got["msg"])
    print(out, len(got["msg"]), "octets")


capture(UPDATE, [], "update/knsupdate.bin")
for alg, (name, secret) in KEYS.items():
    capture(SIGNED, ["-y", f"{alg}:{name}:{secret}"], f"tsig/knsupdate-{alg}.bin")
