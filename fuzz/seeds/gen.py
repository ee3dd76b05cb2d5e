#!/usr/bin/env python3
"""Writes the committed seed inputs for the fuzz targets.

Run from anywhere: `python3 fuzz/seeds/gen.py`. Seeds are real queries
(built octet by octet as RFC 1035 §4.1 lays them out) for the names in
fuzz_targets/zones/, plus malformed variants each aimed at one branch of
decode_query, responses to the A/AAAA query the `lookup` target reads, and
the TLS ClientHellos in testdata/tls/ for `sni`.
Names are derived from content so re-running is idempotent.
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
         "AAAA": 28, "SRV": 33, "DNAME": 39, "DS": 43, "DNSKEY": 48, "SVCB": 64, "HTTPS": 65,
         "IXFR": 251, "AXFR": 252, "ANY": 255, "CAA": 257, "TYPE65280": 65280, "NONE": 0}


def wire(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def query(name, qtype="A", qclass=1, qid=0x1234, flags=0x0100, edns=None, extra=b"", qd=1, ar=None):
    """edns: (payload, version, do) or None."""
    q = wire(name) + struct.pack(">HH", TYPES[qtype] if isinstance(qtype, str) else qtype, qclass)
    opt = b""
    if edns is not None:
        payload, version, do = edns
        opt = b"\x00" + struct.pack(">HHBBHH", 41, payload, 0, version, 0x8000 if do else 0, 0)
    if ar is None:
        ar = 1 if edns is not None else 0
    return struct.pack(">HHHHHH", qid, flags, qd, 0, 0, ar) + q + opt + extra


def write(target, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


Z = "example.test."
queries = []
for owner, t in [("", "SOA"), ("", "NS"), ("", "MX"), ("", "ANY"), ("", "HTTPS"), ("", "DNSKEY"),
                 ("www", "A"), ("www", "AAAA"), ("WwW", "A"), ("mixed", "A"), ("c1", "A"), ("l1", "AAAA"),
                 ("loop1", "A"), ("self", "TXT"), ("ext", "A"), ("tochild", "A"), ("towild", "TXT"),
                 ("todeleg", "A"), ("dangling", "A"), ("foo.wild", "A"), ("foo.wild", "MX"), ("host.wild", "TXT"),
                 ("x.wcname", "A"), ("y.wcloop", "A"), ("q.b.ent", "A"), ("ent", "A"), ("b.ent", "AAAA"),
                 ("deep.ent2", "A"), ("x.leaf.deep.ent2", "A"), ("host.deleg", "A"), ("deleg", "DS"), ("deleg", "NS"),
                 ("insecure", "A"), ("child", "DS"), ("child", "SOA"), ("www.child", "A"), ("x.grandchild.child", "A"),
                 ("x.big", "A"), ("medtxt", "TXT"), ("bigtxt", "TXT"), ("a\\.b", "A"), ("unk", "TYPE65280"),
                 ("unk", "ANY"), ("_sip._tcp", "SRV"), ("svc", "SVCB"), ("https", "HTTPS"), ("ptr", "PTR"),
                 ("caa", "CAA"), ("multi", "MX"), ("nothere", "A"), ("ns1", "CNAME"),
                 ("www.dname", "A"), ("www.dname", "MX"), ("www.dname", "CNAME"), ("dname", "DNAME"),
                 ("x.dnameout", "A"), ("foo.dnamewild", "TXT"), ("a.dnest", "A"), ("a.dloop1", "A"),
                 ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.dlong", "A"), ("x.dlong", "A"),
                 ("host.doccl", "A"), ("tod", "A"), ("www.back.child", "A")]:
    name = (owner.replace("\\.", "\x00") + "." if owner else "") + Z
    # "a\.b" is one label holding a dot.
    w = b""
    for label in name.rstrip(".").split("."):
        label = label.replace("\x00", ".")
        w += bytes([len(label)]) + label.encode()
    w += b"\x00"
    base = struct.pack(">HHHHHH", 0xbeef, 0x0100, 1, 0, 0, 0) + w + struct.pack(">HH", TYPES[t], 1)
    queries.append(base)
    # The same with EDNS (1232, DO) and with a small EDNS payload.
    queries.append(base[:11] + b"\x01" + base[12:] + b"\x00" + struct.pack(">HHBBHH", 41, 1232, 0, 0, 0x8000, 0))
    if t in ("TXT", "ANY", "A"):
        queries.append(base[:11] + b"\x01" + base[12:] + b"\x00" + struct.pack(">HHBBHH", 41, 600, 0, 0, 0, 0))

# The signed zones, with DO set (and once without, and once with a small
# payload so that proofs truncate): every kind of DNSSEC answer.
for zone in ("dnssec.test.", "nsec3.test."):
    for owner, t in [("", "SOA"), ("", "DNSKEY"), ("", "NS"), ("", "MX"), ("", "DS"), ("", "ANY"),
                     ("www", "A"), ("www", "MX"), ("www", 46), ("www", 47), ("nope", "A"), ("x.a.b.ent", "A"),
                     ("ent", "A"), ("b.ent", "AAAA"), ("host.w", "A"), ("a.b.w", "TXT"), ("host.w", "MX"),
                     ("w", "A"), ("alias", "A"), ("wc", "A"), ("dangling", "A"), ("www.dn", "A"),
                     ("host.secure", "A"), ("secure", "DS"), ("ns1.secure", "A"), ("www.insecure", "AAAA"),
                     ("insecure", "DS"), ("", 51), ("i0b49tbuv0c08q1toammlnbpcqmj4u7r", 50)]:
        name = (owner + "." if owner else "") + zone
        queries.append(query(name, t, qid=0x0400, flags=0, edns=(1232, 0, True)))
    queries.append(query("nope." + zone, "A", edns=(512, 0, True)))
    queries.append(query("www." + zone, "A", edns=(1232, 0, False)))

# The 255-octet name and its MX (additional-section target at the limit).
long_owner = ("a" + "2345678901234567890123456789012345678901234567890123456789012" + "3" + "." +
              "b" + "2345678901234567890123456789012345678901234567890123456789012" + "3" + "." +
              "c" + "2345678901234567890123456789012345678901234567890123456789012" + "3" + "." +
              "d2345678901234567890123456789012345678901234567." + Z)
queries.append(query(long_owner, "MX", edns=(4096, 0, False)))

# Edge cases for decode_query and the error paths.
queries += [
    query("www.example.org.", "A"),                               # not ours: REFUSED + EDE
    query("www.example.org.", "A", edns=(1232, 0, False)),
    query(Z, "AXFR"), query(Z, "IXFR"), query(Z, "NONE"),         # NOTIMP / NOTAUTH
    query(Z, "A", qclass=3), query(Z, "A", qclass=255),            # CH refused, ANY as IN
    query(Z, "SOA", flags=0x2000),                                 # NOTIFY: NOTAUTH
    query(Z, "SOA", flags=0x1000),                                 # STATUS: NOTIMP
    query(Z, "SOA", edns=(1232, 1, False)),                        # BADVERS
    query(Z, "SOA", flags=0x8100),                                 # a response: dropped
    query(Z, "SOA", qd=2),                                         # FORMERR
    query(Z, "SOA", qd=0),
    query(Z, "SOA", extra=b"\xff"),                                # trailing garbage
    query(Z, "SOA", edns=(512, 0, True), extra=b"\x00\x00\x29\x02\x00\x00\x00\x00\x00\x00\x00", ar=2),  # two OPTs
    query(Z, "SOA", flags=0x0110),                                 # CD set
    struct.pack(">HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",  # compressed qname
    b"\x12\x34\x01\x00\x00\x01",                                   # short header
    b"",
]
# An OPT with options (cookie + padding).
opts = struct.pack(">HH", 10, 8) + b"\x01\x02\x03\x04\x05\x06\x07\x08" + struct.pack(">HH", 12, 4) + b"\0\0\0\0"
queries.append(query("www." + Z, "A", ar=1) + b"\x00" + struct.pack(">HHBBHH", 41, 4096, 0, 0, 0, len(opts)) + opts)
# A record in the answer section of a query (ignored), then the OPT.
rr = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + b"\xc0\x00\x02\x01"
queries.append(struct.pack(">HHHHHH", 7, 0x0100, 1, 1, 0, 1) + wire("www." + Z) + struct.pack(">HH", 1, 1) + rr
               + b"\x00" + struct.pack(">HHBBHH", 41, 1232, 0, 0, 0, 0))

for m in queries:
    write("message", m)
    write("respond", m)

# name: one offset byte, then a message.
msg = b"\x00" * 12 + wire("www.example.test.") + b"\x04mail\xc0\x10" + b"\x02ns\xc0\x21" + b"\xc0\x1d"
for off in (12, 29, 35, 40, 0):
    write("name", bytes([off]) + msg)
write("name", b"\x00" + wire("a.b.c.d.e.f.g.h."))
write("name", b"\x00" + b"\x3f" + b"x" * 63 + b"\x3f" + b"y" * 63 + b"\x3f" + b"z" * 63 + b"\x3d" + b"w" * 61 + b"\x00")
for text in ["www.example.test.", "a\\.b.\\065x", "@", "\\000\\032.", ".", "rel.name", "\\@.\\$.\\;.\\(\\).", "x y."]:
    write("name", text.encode())

# zonefile: the fuzz zones and a zone with one of many types.
zones = os.path.join(HERE, "..", "fuzz_targets", "zones")
for z in ("example.test.zone", "child.example.test.zone"):
    with open(os.path.join(zones, z), "rb") as f:
        write("zonefile", f.read())
write("zonefile", rb'''$TTL 300
@ IN SOA ns1 hostmaster ( 1 7200 3600 1209600 300 ) ; comment
  IN NS ns1
  IN MX 10 mail
ns1 A 192.0.2.1
 AAAA 2001:db8::1
txt TXT "hello world" "a\"b" \065bc
a\.b 60 TXT x
caa CAA 0 issue "letsencrypt.org"
srv._tcp SRV 0 5 443 www
nap NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp
ds DS 12345 13 2 3E2A9A8C2E6F0C6F8A5A9C1B3F0E6D4C2B1A0F9E8D7C6B5A4F3E2D1C0B9A8F7E
tlsa._443._tcp TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
ssh SSHFP 4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789
svc SVCB 1 . alpn=h2,h3 port=8443 ipv4hint=192.0.2.1 ipv6hint=2001:db8::1 ech=AEX+DQA= mandatory=alpn
https HTTPS 1 svc alpn=h3 no-default-alpn
unk TYPE65280 \# 4 0A000001
empty TYPE999 \# 0
ptr PTR www
*.wild A 192.0.2.9
hinfo HINFO "PC" "Linux"
key DNSKEY 257 3 13 nHYanBztul+wEfS5mYpvNci5t0tSKZaataXvyPpRB7GxClNl2bpCUxePDjWHw296sRt/P3GHsURBEYk4c3bjhg==
$ORIGIN sub.example.test.
dn DNAME example.net.
cds CDS 0 0 0 00
rp RP mbox.example.test. txt.example.test.
'''.replace(b"\r", b""))

# @, relative, absolute and escaped names in every name field, after
# $ORIGIN changes and on lines without an owner, and the types the scanner
# lacks (zonefile::prescan, rdatatext).
write("zonefile", rb'''@ SOA @ @ 1 2 3 4 5
 NS @
 MX 10 @
www CNAME @
lit CNAME \@
esc CNAME a\.b
dec CNAME \097\.b
q CNAME "@"
$ORIGIN sub.example.test.
@ AFSDB 1 @
 RT 2 host
 KX 3 host.example.net.
 LP 4 @
 PX 5 @ x400
x SRV 0 0 1 @
x NAPTR 100 10 "S" "SIP+D2U" "" @
x SVCB 1 @ alpn=h2
x HTTPS 1 @
x MINFO @ errors
x RP @ txt
x IPSECKEY 10 3 2 @ AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
x NSEC @ A RRSIG
x RRSIG A 13 2 300 20300101000000 20200101000000 1 @ AQID
$ORIGIN deeper
t TXT @ "@"
t SPF "v=spf1 -all"
t KEY 256 3 13 AQID
t SMIMEA 3 1 1 0c72ac70
t DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=
t URI 10 1 "ftp://ftp1.example.com/public"
t EUI48 00-00-5e-00-53-2a
t EUI64 00-00-5e-ef-10-00-00-2a
t L32 10 10.1.2.0
t L64 10 2001:0DB8:1140:1000
t NID 10 14:4fff:ff20:ee64
t CSYNC 66 3 A NS AAAA
t CERT PGP 0 RSASHA256 AQID
t AFSDB \# 3 000100
''')

# --- update: RFC 2136 messages for example.test. (the `update` target's
# fixed zone) and for another zone, with every prerequisite and update form.
CLASS = {"IN": 1, "NONE": 254, "ANY": 255}


def rr(owner, rtype, rclass="IN", ttl=0, rdata=b""):
    t = TYPES[rtype] if isinstance(rtype, str) else rtype
    return wire(owner) + struct.pack(">HHIH", t, CLASS[rclass], ttl, len(rdata)) + rdata


def update(zone, prereqs=(), updates=(), additional=(), uid=0x5150, zclass=1, ztype=6):
    m = struct.pack(">HHHHHH", uid, 0x2800, 1, len(prereqs), len(updates), len(additional))
    m += wire(zone) + struct.pack(">HH", ztype, zclass)
    return m + b"".join(prereqs) + b"".join(updates) + b"".join(additional)


A = lambda ip: bytes(int(x) for x in ip.split("."))
Z = "example.test."
opt = b"\x00" + struct.pack(">HHBBHH", 41, 1232, 0, 0, 0x8000, 0)
update_seeds = [
    update(Z, [rr("www." + Z, "A", "ANY"), rr("nothere." + Z, "ANY", "NONE"), rr(Z, "ANY", "ANY"),
               rr("www." + Z, "MX", "NONE"), rr("www." + Z, "A", "IN", 0, A("192.0.2.80"))],
           [rr("new." + Z, "A", "IN", 300, A("192.0.2.7"))]),
    update(Z, [rr("ns1." + Z, "A", "IN", 0, A("192.0.2.1")), rr(Z, "NS", "IN", 0, wire("ns1." + Z)),
               rr(Z, "NS", "IN", 0, wire("ns2." + Z)), rr(Z, "NS", "IN", 0, wire("ns.outside.invalid."))],
           [rr("www." + Z, "A", "ANY"), rr("www." + Z, "A", "IN", 60, A("192.0.2.99"))]),
    update(Z, [], [rr(Z, "NS", "NONE", 0, wire("ns1." + Z)), rr(Z, "NS", "NONE", 0, wire("ns2." + Z)),
                   rr(Z, "NS", "NONE", 0, wire("ns.outside.invalid.")), rr(Z, "ANY", "ANY"),
                   rr(Z, "SOA", "ANY"), rr(Z, "NS", "ANY")]),
    update(Z, [], [rr("c1." + Z, "A", "IN", 300, A("192.0.2.1")), rr("www." + Z, "CNAME", "IN", 300, wire("c1." + Z)),
                   rr("c1." + Z, "CNAME", "IN", 300, wire("www." + Z)), rr("c1." + Z, "ANY", "ANY"),
                   rr("c1." + Z, "A", "IN", 300, A("192.0.2.1"))]),
    update(Z, [], [rr(Z, "SOA", "IN", 300, wire("ns1." + Z) + wire("h." + Z) + struct.pack(">IIIII", 9, 1, 1, 1, 1)),
                   rr(Z, "SOA", "NONE", 0, wire("ns1." + Z) + wire("h." + Z) + struct.pack(">IIIII", 1, 1, 1, 1, 1)),
                   rr(Z, "MX", "NONE", 0, struct.pack(">H", 10) + wire("MAIL." + Z)),
                   rr("mixed." + Z, "A", "NONE", 0, A("192.0.2.81")), rr("x.y." + Z, "TXT", "IN", 5, b"\x02hi")],
           [opt]),
    update(Z, [], [rr("out.example.net.", "A", "IN", 300, A("192.0.2.1"))]),
    update(Z, [], [rr("x." + Z, "AXFR", "ANY"), rr("x." + Z, "A", "NONE", 5, A("192.0.2.1"))]),
    update(Z, [], [rr("x." + Z, "A", "IN", 300, b"\x01\x02\x03")]),
    update(Z, [rr("www." + Z, "A", "ANY", 1)], []),
    update(Z, [], [], [opt, opt]),
    update(Z, [], [], ztype=2),
    update(Z, [], [], zclass=255),
    update("example.com.", [rr("a.example.com.", "ANY", "NONE")], [rr("a.example.com.", "TXT", "IN", 60, b"\x01x")]),
    update(Z, [], [rr("unk." + Z, 65280, "IN", 60, b"\x0a\x00\x00\x01"), rr("unk." + Z, 65280, "ANY")]),
]
# Compressed: owners and an MX exchange pointing at the zone name (offset 12).
m = struct.pack(">HHHHHH", 7, 0x2800, 1, 0, 2, 0) + wire(Z) + struct.pack(">HH", 6, 1)
m += b"\x03www\xc0\x0c" + struct.pack(">HHIH", 15, 1, 300, 9) + struct.pack(">H", 10) + b"\x04mail\xc0\x0c"
m += b"\xc0\x0c" + struct.pack(">HHIH", 2, 1, 300, 6) + b"\x03ns3\xc0\x0c"
update_seeds.append(m)
for s in update_seeds:
    write("update", s)
testdata = os.path.join(HERE, "..", "..", "testdata")
for f in ["update/knsupdate.bin", "tsig/knsupdate-hmac-sha256.bin", "tsig/knsupdate-hmac-md5.bin",
          "tsig/knsupdate-hmac-sha512.bin"]:
    with open(os.path.join(testdata, f), "rb") as fh:
        data = fh.read()
    write("update", data)
    write("tsig", data)

# --- tsig: messages signed with the `tsig` target's keys (RFC 8945 §4.3),
# whole and truncated, plus broken variants.
import hmac as _hmac

FUZZ_SECRET = b"sixgate fuzz key"
ALGS = {"hmac-sha256": (wire("hmac-sha256."), hashlib.sha256),
        "hmac-md5": (wire("hmac-md5.sig-alg.reg.int."), hashlib.md5)}


def tsig_sign(msg, key, alg, t=1_700_000_000, fudge=300, trunc=None, error=0, other=b"", secret=FUZZ_SECRET):
    alg_wire, h = ALGS[alg]
    kw = wire(key)
    variables = kw + struct.pack(">HI", 255, 0) + alg_wire + struct.pack(">Q", t)[2:] + \
        struct.pack(">HHH", fudge, error, len(other)) + other
    mac = _hmac.new(secret, msg + variables, h).digest()
    if trunc:
        mac = mac[:trunc]
    orig_id = msg[:2]
    rdata = alg_wire + struct.pack(">Q", t)[2:] + struct.pack(">HH", fudge, len(mac)) + mac + orig_id + \
        struct.pack(">HH", error, len(other)) + other
    ar = struct.unpack(">H", msg[10:12])[0] + 1
    return msg[:10] + struct.pack(">H", ar) + msg[12:] + kw + struct.pack(">HHIH", 250, 255, 0, len(rdata)) + rdata


base = update_seeds[0]
signed = tsig_sign(base, "test-key.", "hmac-sha256")
tsig_seeds = [
    signed,
    tsig_sign(base, "md5-key.", "hmac-md5"),
    tsig_sign(base, "test-key.", "hmac-sha256", trunc=16),
    tsig_sign(base, "test-key.", "hmac-sha256", trunc=15),
    tsig_sign(base, "md5-key.", "hmac-md5", trunc=10),
    tsig_sign(base, "test-key.", "hmac-sha256", t=1_600_000_000),
    tsig_sign(base, "test-key.", "hmac-md5"),
    tsig_sign(base, "unknown-key.", "hmac-sha256"),
    tsig_sign(base, "test-key.", "hmac-sha256", secret=b"wrong"),
    tsig_sign(base, "test-key.", "hmac-sha256", error=18, other=b"\x00\x00\x65\x53\xf1\x00"),
    tsig_sign(query("www.example.test.", "SOA", flags=0), "test-key.", "hmac-sha256"),
    signed + b"\x00",
    signed[:-1],
    base,
    query("www.example.test."),
]
# Two TSIG records, and one followed by another record.
tail = signed[len(base):]
two = bytearray(signed + tail)
two[11] += 1
tsig_seeds.append(bytes(two))
after = bytearray(signed + rr("x.", "A", "IN", 0, A("192.0.2.1")))
after[11] += 1
tsig_seeds.append(bytes(after))
for s in tsig_seeds:
    write("tsig", s)

# --- lookup: responses to the A and AAAA queries for target.test. (ID
# 0x1234) that the `lookup` target reads: compressed CNAME chains to
# addresses, NXDOMAIN and NODATA at the end of a chain, a chain leaving the
# answer, a loop, TC, SERVFAIL and BADVERS.


def response(qtype, answers=(), authority=(), additional=(), rcode=0, flags=0x8180, qid=0x1234):
    m = struct.pack(">HHHHHH", qid, flags | rcode, 1, len(answers), len(authority), len(additional))
    m += wire("target.test.") + struct.pack(">HH", TYPES[qtype], 1)
    return m + b"".join(answers) + b"".join(authority) + b"".join(additional)


def crr(owner, rtype, ttl, rdata):
    """A record whose owner is already in wire form (possibly compressed)."""
    return owner + struct.pack(">HHIH", TYPES[rtype], 1, ttl, len(rdata)) + rdata


OPT = b"\x00" + struct.pack(">HHIH", 41, 1232, 0, 0)
SOA = rr("test.", "SOA", "IN", 300, wire("ns.test.") + wire("hostmaster.test.") + struct.pack(">5I", 1, 2, 3, 4, 300))
# Question name at 12, "test" at 19; the first CNAME's rdata starts at 41
# (12 + 13 + 4 + 2 + 10: after the header, the question, the pointer owner
# and the fixed fields), so "example" is at 43.
chain = [
    crr(b"\xc0\x0c", "CNAME", 300, b"\x01a\x07Example\xc0\x13"),
    crr(b"\x01A\xc0\x2b", "CNAME", 200, b"\x01b\xc0\x2b"),
    crr(b"\x01b\xc0\x2b", "A", 100, bytes([192, 0, 2, 2])),
    crr(b"\x01B\x07EXAMPLE\x04TEST\x00", "A", 60, bytes([192, 0, 2, 1])),
]
v6 = bytes.fromhex("20010db8000000000000000000000001")
lookup_seeds = [
    response("A", chain, [SOA], [OPT]),
    response("A", [rr("target.test.", "A", "IN", 300, bytes([192, 0, 2, 1]))]),
    response("AAAA", [rr("target.test.", "CNAME", "IN", 50, wire("x.test.")),
                      rr("x.test.", "AAAA", "IN", 100, v6)], [], [OPT]),
    response("A", [rr("target.test.", "CNAME", "IN", 300, wire("gone.test."))], [SOA], [OPT], rcode=3),
    response("A", [], [SOA], [OPT]),
    response("A", [rr("target.test.", "CNAME", "IN", 300, wire("a.test.")),
                   rr("a.test.", "CNAME", "IN", 100, wire("elsewhere.example."))]),
    response("A", [rr("target.test.", "CNAME", "IN", 300, wire("a.test.")),
                   rr("a.test.", "CNAME", "IN", 300, wire("target.test."))]),
    response("A", chain, flags=0x8380),
    response("A", rcode=2),
    response("A", [], [], [b"\x00" + struct.pack(">HHIH", 41, 1232, 1 << 24, 0)]),
]
for s in lookup_seeds:
    write("lookup", s)

# --- sni: the ClientHellos captured by testdata/tls/capture.py, each also
# split across two and three handshake records, and a few refusals.
TLS = os.path.join(HERE, "..", "..", "testdata", "tls")


def records(hello, sizes):
    """The one-record `hello`'s handshake message in records of `sizes`
    octets and one more for the rest."""
    msg, out = hello[5:], b""
    for n in list(sizes) + [len(hello)]:
        frag, msg = msg[:n], msg[n:]
        out += hello[:3] + struct.pack(">H", len(frag)) + frag
    return out


for f in sorted(os.listdir(TLS)):
    if f.endswith(".bin"):
        with open(os.path.join(TLS, f), "rb") as h:
            hello = h.read()
        for sizes in ([], [3], [len(hello) // 3, len(hello) // 3]):
            write("sni", records(hello, sizes))
for s in [
    b"\x16\x03\x01\x40\x00\x01\x00\x50\x00",  # announces 20 KiB
    b"GET / HTTP/1.1\r\nHost: www.capture.test\r\n\r\n",
    b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10",  # SSLv2 CLIENT-HELLO
    b"\x15\x03\x03\x00\x02\x02\x28",  # an alert first
]:
    write("sni", s)

# --- xfr_request: AXFR and IXFR requests for the `respond` zone (whose
# serial is 2024010101), signed and not, the captures of
# testdata/xfr/capture.py, and one fault each.
XZ = "example.test."
XSERIAL = 2024010101


def client_soa(serial, owner=b"\xc0\x0c", names=b"\x00\x00", klass=1):
    rdata = names + struct.pack(">IIIII", serial, 0, 0, 0, 0)
    return owner + struct.pack(">HHIH", 6, klass, 0, len(rdata)) + rdata


def ixfr(serial, edns=None, soa=None, ns=1, zone=XZ, flags=0):
    q = query(zone, "IXFR", flags=flags, edns=edns)
    head = q[:8] + struct.pack(">H", ns) + q[10:12]
    qend = 12 + len(wire(zone)) + 4
    return head + q[12:qend] + (client_soa(serial) if soa is None else soa) + q[qend:]


xfr_seeds = [
    query(XZ, "AXFR", flags=0),
    query(XZ, "AXFR", flags=0x0110, edns=(1232, 0, True)),
    query("EXAMPLE.Test.", "AXFR", flags=0),
    query("example.org.", "AXFR", flags=0),
    ixfr(XSERIAL - 3), ixfr(XSERIAL - 2, edns=(4096, 0, False)), ixfr(XSERIAL - 1),
    ixfr(XSERIAL), ixfr(XSERIAL + 5), ixfr(XSERIAL - 10), ixfr(0xFFFFFFFF), ixfr(XSERIAL ^ 0x80000000),
    ixfr(XSERIAL - 1, soa=client_soa(XSERIAL - 1, owner=wire(XZ), names=b"\x03ns1\xc0\x0c\x02hm\xc0\x0c")),
    # Faults: no client SOA, two, another owner, class, short rdata.
    ixfr(XSERIAL - 1, soa=b"", ns=0),
    ixfr(XSERIAL - 1, soa=client_soa(1) + client_soa(2), ns=2),
    ixfr(XSERIAL - 1, soa=client_soa(1, owner=b"\x00")),
    ixfr(XSERIAL - 1, soa=client_soa(1, klass=3)),
    ixfr(XSERIAL - 1, soa=client_soa(1)[:-1]),
    query(XZ, "AXFR", qclass=3, flags=0),
    query(XZ, "AXFR", qd=2, flags=0),
    query(XZ, "AXFR", flags=0x8000),
    query(XZ, "AXFR", flags=0x2000),
    query(XZ, "AXFR", edns=(1232, 1, False)),
    query(XZ, "AXFR", flags=0, extra=b"\xff"),
    query(XZ, "SOA", flags=0),
    query(XZ, "AXFR")[:20],
]
axfr = query(XZ, "AXFR", flags=0)
auth = bytearray(axfr + client_soa(1))
auth[9] = 1
xfr_seeds.append(bytes(auth))
xfr_seeds += [
    tsig_sign(axfr, "test-key.", "hmac-sha256"),
    tsig_sign(ixfr(XSERIAL - 2), "test-key.", "hmac-sha256"),
    tsig_sign(ixfr(XSERIAL), "test-key.", "hmac-sha256", trunc=16),
    tsig_sign(axfr, "test-key.", "hmac-sha256", secret=b"wrong"),
    tsig_sign(axfr, "test-key.", "hmac-sha256") + b"\x00",
]
for f in ["knot-axfr.request", "knot-ixfr.request", "kdig-axfr-unsigned.request", "kdig-ixfr-edns.request"]:
    with open(os.path.join(testdata, "xfr", f), "rb") as fh:
        xfr_seeds.append(fh.read())
for s in xfr_seeds:
    write("xfr_request", s)
