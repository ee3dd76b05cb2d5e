"""Writing A RRsets through the HTTP APIs of sixgate and PowerDNS, and
timing how soon DNS serves what was written, for `scripts/bench api`.

A `Writer` is one client with one persistent HTTP/1.1 connection
(http.client). sixgate gets `PUT /v1/zones/{zone}/rrsets/{name}/A`,
PowerDNS `PATCH /api/v1/servers/localhost/zones/{zone}.` with one RRset of
changetype REPLACE: both replace the whole RRset, so a retried write is
safe. A server that answers `Connection: close` (PowerDNS 4.7 does on every
response) makes http.client connect again for the next request; `connects`
counts that.

`write_to_served` sends a write and, without waiting for the HTTP answer,
polls the server's DNS port over UDP with one query outstanding at a time
until an answer holds the written address.
"""

import http.client
import json
import random
import select
import socket
import struct
import time

import dnsq


class WriteError(RuntimeError):
    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status


class Writer:
    def __init__(self, kind, api, zone, key, timeout=30.0):
        host, port = api.rsplit(":", 1)
        self.kind, self.zone, self.key = kind, zone.rstrip("."), key
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        self.connects = 0
        self.reconnects = 0  # writes sent again on a connection the server had closed
        self.server_errors = 0  # 5xx answers, each followed by a retry while retries last

    def _request(self, name, addr):
        name = name.rstrip(".")
        if self.kind == "sixgate":
            return ("PUT", f"/v1/zones/{self.zone}/rrsets/{name}/A",
                    {"ttl": 60, "records": [addr]},
                    {"Authorization": f"Bearer {self.key}"})
        return ("PATCH", f"/api/v1/servers/localhost/zones/{self.zone}.",
                {"rrsets": [{"name": name + ".", "type": "A", "ttl": 60, "changetype": "REPLACE",
                             "records": [{"content": addr, "disabled": False}]}]},
                {"X-API-Key": self.key})

    @property
    def sock(self):
        return self.conn.sock

    def send(self, name, addr):
        """Sends the request; the answer is left for `finish`."""
        method, path, body, headers = self._request(name, addr)
        if self.conn.sock is None:
            self.connects += 1
            self.conn.connect()
        self.conn.request(method, path, body=json.dumps(body).encode(),
                          headers=dict(headers, **{"Content-Type": "application/json"}))

    def finish(self):
        """Reads the answer; raises WriteError unless it is a 2xx."""
        r = self.conn.getresponse()
        body = r.read()
        if r.status // 100 != 2:
            raise WriteError(r.status, f"{self.kind} HTTP {r.status}: {body[:300].decode(errors='replace')}")
        return r.status

    def write(self, name, addr, retries=0):
        """One write and its answer. A connection the server closed while
        idle is opened again once, and a 5xx answer is retried up to
        `retries` times after a random pause of up to 1, 2, 4 ... 64 ms (the
        write replaces the RRset, so it may repeat)."""
        reconnected = False
        backoff = 0.001
        while True:
            try:
                self.send(name, addr)
                return self.finish()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                if reconnected:
                    raise
                reconnected = True
                self.reconnects += 1
            except WriteError as e:
                if e.status < 500 or retries <= 0:
                    raise
                self.server_errors += 1
                retries -= 1
                time.sleep(random.uniform(0, backoff))
                backoff = min(backoff * 2, 0.064)

    def close(self):
        self.conn.close()


def write_to_served(writer, dns_port, name, addr, timeout=30.0, poll_timeout=0.05):
    """Sends a write of `name` A `addr`, then polls DNS until it is served.

    Returns {"served_ms", "ack_ms"}: from the write's first byte sent until
    the first DNS answer that holds `addr` (None if none within `timeout`),
    and until the HTTP answer arrived. A query unanswered after
    `poll_timeout` is followed by the next; any answer with the new address
    counts, also a late one to an earlier query.
    """
    _, wire = dnsq.encode_query(name, "A", 0)
    served = ack = None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("127.0.0.1", dns_port))
        s.setblocking(False)
        t0 = time.monotonic()
        writer.send(name, addr)
        deadline = t0 + timeout
        qid = 0
        while served is None and time.monotonic() < deadline:
            if ack is not None and time.monotonic() - ack > 1.0:
                # Still old data a second after the 2xx: a stale cache entry
                # that will last until it expires; poll gently meanwhile.
                time.sleep(0.001)
            qid = (qid + 1) & 0xFFFF
            try:
                s.send(struct.pack("!H", qid) + wire[2:])
            except ConnectionRefusedError:
                pass
            wait_end = min(time.monotonic() + poll_timeout, deadline)
            while served is None:
                left = wait_end - time.monotonic()
                if left <= 0:
                    break
                ready = select.select([s] if ack is not None else [s, writer.sock], [], [], left)[0]
                if ack is None and writer.sock in ready:
                    ack = time.monotonic()
                    writer.finish()  # an HTTP error ends the trial
                if s in ready:
                    try:
                        data = s.recv(65535)
                    except (BlockingIOError, ConnectionRefusedError):
                        continue
                    try:
                        got = dnsq.decode(data)
                    except (ValueError, IndexError, struct.error):
                        continue
                    if dnsq.has_answer(got, "A", addr):
                        served = time.monotonic()
                    elif got["id"] == qid:
                        break  # the current query is answered (old data): ask again
        if ack is None:
            writer.finish()
            ack = time.monotonic()
    return {"served_ms": None if served is None else (served - t0) * 1000, "ack_ms": (ack - t0) * 1000}
