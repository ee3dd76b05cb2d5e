"""A small DNS-over-UDP client for scripts/bench: enough to compare answers.

Queries go out without EDNS, like dnsperf's. Responses are decoded into a
normalized form (lowercased names, sorted sections, presentation-like
rdata) so that answers from different servers can be compared as values.
"""

import random
import socket
import struct
import time

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28, "OPT": 41}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def encode_query(name, qtype, qid=None):
    qid = random.randrange(65536) if qid is None else qid
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".") if l) + b"\0"
    return qid, struct.pack("!HHHHHH", qid, 0x0000, 1, 0, 0, 0) + wire + struct.pack("!HH", TYPES[qtype], 1)


def _name(msg, off):
    labels, jumped, end, hops = [], False, None, 0
    while True:
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped, hops = True, hops + 1
            if hops > 64:
                raise ValueError("compression loop")
            continue
        if n == 0:
            return ".".join(labels).lower() + ".", (end if jumped else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode("latin-1"))
        off += 1 + n


def _rdata(msg, rtype, off, rdlen):
    rd = msg[off:off + rdlen]
    if rtype == 1:
        return socket.inet_ntop(socket.AF_INET, rd)
    if rtype == 28:
        return socket.inet_ntop(socket.AF_INET6, rd)
    if rtype in (2, 5):
        return _name(msg, off)[0]
    if rtype == 15:
        return f"{struct.unpack('!H', rd[:2])[0]} {_name(msg, off + 2)[0]}"
    if rtype == 6:
        mname, o = _name(msg, off)
        rname, o = _name(msg, o)
        return f"{mname} {rname} " + " ".join(str(x) for x in struct.unpack("!IIIII", msg[o:o + 20]))
    if rtype == 16:
        parts, i = [], 0
        while i < len(rd):
            parts.append('"' + rd[i + 1:i + 1 + rd[i]].decode("latin-1") + '"')
            i += 1 + rd[i]
        return " ".join(parts)
    return rd.hex()


def decode(msg):
    """Returns a dict: id, rcode, aa, tc, question, answer, authority, additional."""
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    off, question = 12, None
    for _ in range(qd):
        qname, off = _name(msg, off)
        qt, _qc = struct.unpack("!HH", msg[off:off + 4])
        off += 4
        question = (qname, TYPE_NAMES.get(qt, str(qt)))
    sections = []
    for count in (an, ns, ar):
        rrs = []
        for _ in range(count):
            owner, off = _name(msg, off)
            rtype, _rclass, ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
            off += 10
            if rtype != 41:
                rrs.append((owner, TYPE_NAMES.get(rtype, str(rtype)), ttl, _rdata(msg, rtype, off, rdlen)))
            off += rdlen
        sections.append(sorted(rrs))
    return {"id": qid, "rcode": RCODES.get(flags & 15, str(flags & 15)), "aa": bool(flags & 0x0400),
            "tc": bool(flags & 0x0200), "question": question,
            "answer": sections[0], "authority": sections[1], "additional": sections[2]}


def query(port, name, qtype, host="127.0.0.1", timeout=1.0, tries=3):
    """One query; returns the decoded response or None after `tries` timeouts."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        for _ in range(tries):
            qid, wire = encode_query(name, qtype)
            s.sendto(wire, (host, port))
            deadline = time.monotonic() + timeout
            try:
                while time.monotonic() < deadline:
                    data = s.recv(65535)
                    if len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid:
                        return decode(data)
            except (socket.timeout, ConnectionRefusedError):
                continue
    return None


def has_answer(resp, rtype, rdata):
    return resp is not None and resp["rcode"] == "NOERROR" and any(
        r[1] == rtype and r[3] == rdata for r in resp["answer"])


def wait_for(port, name, rtype, rdata, deadline, interval=0.001, host="127.0.0.1", alive=None):
    """Polls with one UDP query every `interval` s until the answer holds
    (returns the monotonic time it was seen) or `deadline` passes (None).

    Queries are fire-and-forget with fresh IDs; any response carrying the
    wanted record counts. `alive()` returning False stops the wait early.
    """
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        s.connect((host, port))
        _, wire = encode_query(name, rtype, 0)
        qid = 0
        next_send = 0.0
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            if now >= next_send:
                qid = (qid + 1) & 0xFFFF
                try:
                    s.send(struct.pack("!H", qid) + wire[2:])
                except (ConnectionRefusedError, BlockingIOError):
                    pass
                next_send = now + interval
                if alive is not None and not alive():
                    return None
            try:
                while True:
                    data = s.recv(65535)
                    try:
                        if has_answer(decode(data), rtype, rdata):
                            return time.monotonic()
                    except (ValueError, IndexError, struct.error):
                        pass
            except (BlockingIOError, ConnectionRefusedError):
                pass
            # Sleep at most until the next send; short sleeps keep the
            # detection delay well under the interval.
            time.sleep(max(0.0, min(next_send - time.monotonic(), 0.0002)))
