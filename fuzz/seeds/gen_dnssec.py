#!/usr/bin/env python3
"""Writes the seeds of the DNSSEC targets: `ds_answer`, `dnssec_rdata`,
`validator_response` and `zone_check`.

Run from anywhere: `python3 fuzz/seeds/gen_dnssec.py`. Everything comes
from real data in testdata/: Knot DNS's answers to DNSSEC queries for
dnssec.test. (testdata/dnssec/{nsec,nsec3}/*.response, captured by
testdata/dnssec/capture.py), and the signed zones dnssec.test.nsec.signed
and signed/example.ED25519.signed. Names are content hashes, so
re-running is idempotent.
"""
import base64
import calendar
import glob
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.join(HERE, "..", "..", "testdata")
CAPTURES = sorted(glob.glob(os.path.join(TESTDATA, "dnssec", "nsec*", "*.response")))
ID = 0x1234

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33,
         "DNAME": 39, "DS": 43, "RRSIG": 46, "NSEC": 47, "DNSKEY": 48, "NSEC3": 50, "NSEC3PARAM": 51}
# The dnssec_rdata selector for each rdata type.
SELECTOR = {46: 0, 47: 2, 50: 3, 51: 4, 43: 5, 48: 6}


def write(target, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def skip_name(msg, pos):
    while True:
        n = msg[pos]
        if n & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + n
        if n == 0:
            return pos


def records(msg):
    """(type, rdata) of every record of a response."""
    qd, an, ns, ar = struct.unpack(">HHHH", msg[4:12])
    pos = 12
    for _ in range(qd):
        pos = skip_name(msg, pos) + 4
    out = []
    for _ in range(an + ns + ar):
        pos = skip_name(msg, pos)
        rtype, _, _, rdlen = struct.unpack(">HHIH", msg[pos:pos + 10])
        out.append((rtype, msg[pos + 10:pos + 10 + rdlen]))
        pos += 10 + rdlen
    return out


def with_id(msg, qid=ID):
    return struct.pack(">H", qid) + msg[2:]


captures = {}
for path in CAPTURES:
    with open(path, "rb") as f:
        captures[os.path.relpath(path, os.path.join(TESTDATA, "dnssec"))] = f.read()

# --- validator_response: every capture as it is.
for msg in captures.values():
    write("validator_response", msg)

# --- ds_answer: the answers to DS queries for secure. (a DS RRset) and
# insecure. (NODATA), and the referrals to them, with our ID; and
# variants: AA clear, TC set, SERVFAIL, an extended rcode, one octet more.
for mode in ("nsec", "nsec3"):
    for stem in ("ds-at-cut", "ds-at-cut-nodata", "referral-ds-at-cut", "referral-no-ds-at-cut"):
        msg = with_id(captures[f"{mode}/{stem}.response"])
        write("ds_answer", msg)
        if mode == "nsec" and stem == "ds-at-cut":
            m = bytearray(msg)
            m[2] &= ~0x04
            write("ds_answer", bytes(m))
            m = bytearray(msg)
            m[2] |= 0x02
            write("ds_answer", bytes(m))
            m = bytearray(msg)
            m[3] = (m[3] & 0xF0) | 2
            write("ds_answer", bytes(m))
            write("ds_answer", msg + b"\x00")
# A hand-made answer with two DS records behind compression pointers, the
# same DS twice, and an OPT carrying an extended rcode (BADVERS).
q = wire("secure.dnssec.test.") + struct.pack(">HH", 43, 1)
ds1 = struct.pack(">HBB", 12345, 13, 2) + bytes(range(32))
ds2 = struct.pack(">HBB", 999, 15, 2) + bytes(32)
an = b"".join(b"\xc0\x0c" + struct.pack(">HHIH", 43, 1, 300, len(d)) + d for d in (ds2, ds1, ds2))
opt = b"\x00" + struct.pack(">HHIH", 41, 1232, 0, 0)
write("ds_answer", struct.pack(">HHHHHH", ID, 0x8400, 1, 3, 0, 1) + q + an + opt)
bad = b"\x00" + struct.pack(">HHIH", 41, 1232, 1 << 24, 0)
write("ds_answer", struct.pack(">HHHHHH", ID, 0x8400, 1, 3, 0, 1) + q + an + bad)

# --- dnssec_rdata: the RRSIG, NSEC, NSEC3, NSEC3PARAM, DS and DNSKEY
# rdata of the captures, each behind its selector octet; the NSEC and NSEC3
# bitmaps alone (selector 1); DNSKEYs also as input to the DS digest
# (selector 5).
seen = set()
for msg in captures.values():
    for rtype, rd in records(msg):
        if rtype in SELECTOR and (rtype, rd) not in seen:
            seen.add((rtype, rd))
            write("dnssec_rdata", bytes([SELECTOR[rtype]]) + rd)
            if rtype == 48:
                write("dnssec_rdata", bytes([5]) + rd)
            if rtype == 47:
                write("dnssec_rdata", bytes([1]) + rd[skip_name(rd, 0):])
            if rtype == 50:
                at = 5 + rd[4]
                write("dnssec_rdata", bytes([1]) + rd[at + 1 + rd[at]:])


# Selector 7 (verify): each real RRSIG of the two signed zones, behind the
# index of its RRset and of its key, numbered as the target numbers them
# (RRsets in order of first appearance, zone after zone; keys in order).
def zone_lines(path):
    with open(path) as f:
        for line in f:
            line = line.split(";")[0].split()
            if len(line) >= 5 and not line[0].startswith("$"):
                yield line[0].lower(), line[3], line[4:]


def key_tag(rd):
    acc = sum(b << 8 if i % 2 == 0 else b for i, b in enumerate(rd))
    return (acc + (acc >> 16)) & 0xFFFF


def timestamp(t):
    return calendar.timegm((int(t[:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]), int(t[10:12]), int(t[12:14])))


sets = []
for path in (os.path.join(TESTDATA, "dnssec", "dnssec.test.nsec.signed"),
             os.path.join(TESTDATA, "signed", "example.ED25519.signed")):
    lines = list(zone_lines(path))
    keys = []
    for owner, t, f in lines:
        if t == "DNSKEY":
            keys.append(struct.pack(">HBB", int(f[0]), int(f[1]), int(f[2])) + base64.b64decode("".join(f[3:])))
    first = len(sets)
    for owner, t, f in lines:
        if t != "RRSIG" and (owner, t) not in sets[first:]:
            sets.append((owner, t))
    tags = [key_tag(k) for k in keys]
    for owner, t, f in lines:
        if t != "RRSIG":
            continue
        rd = struct.pack(">HBBIIIH", TYPES[f[0]], int(f[1]), int(f[2]), int(f[3]), timestamp(f[4]),
                         timestamp(f[5]), int(f[6]))
        rd += wire(f[7]) + base64.b64decode("".join(f[8:]))
        set_i = sets.index((owner, f[0]), first)
        write("dnssec_rdata", bytes([7, set_i, tags.index(int(f[6]))]) + rd)


# --- zone_check: zone file text added to the signed dnssec.test.: real
# lines of it (a signed RRset, its RRSIG alone, an NSEC), each changed
# (a new record in a signed RRset, an RRSIG by a key the zone lacks, one
# expiring soon, a new delegation, a record under a delegation and under
# the DNAME, a second DNSKEY).
with open(os.path.join(TESTDATA, "dnssec", "dnssec.test.nsec.signed")) as f:
    signed = [line.split(";")[0].rstrip() for line in f]
www_a = [line for line in signed if line.startswith("www.dnssec.test.") and "\tA\t" in line.replace(" ", "\t")]
www_sig = [line for line in signed if line.startswith("www.dnssec.test.") and "RRSIG\tA " in line]
zone_seeds = [
    "\n".join(www_a + www_sig),
    "www 3600 A 192.0.2.99",
    "new 300 TXT hello",
    "\n".join(www_sig).replace("17407", "17408"),
    "\n".join(www_sig).replace("20350101000000", "20270115000000"),
    "sub 3600 NS ns.sub\nns.sub 3600 A 192.0.2.50",
    "x.insecure 300 A 192.0.2.51\nx.dn 300 A 192.0.2.52",
    "@ 7200 DNSKEY 256 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=",
    "$ORIGIN secure.dnssec.test.\n@ 3600 DS 1 13 2 " + "00" * 32,
]
for s in zone_seeds:
    write("zone_check", (s + "\n").encode())
