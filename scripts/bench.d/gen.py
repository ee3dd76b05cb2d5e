"""Zone files and dnsperf query files for scripts/bench.

Everything is generated from a fixed seed, so two runs benchmark the same
data. Owner names are written fully qualified with an explicit TTL and
class, the one zone-file dialect that sixgate, Knot and NSD all read the
same way.

The 10k-name zone `bench.test.` mixes what an authoritative server for a
hosting platform sees: hosts with A (and often AAAA, sometimes MX and TXT),
CNAMEs (some in chains of two), a wildcard `*.wild` and delegations `subN`
with glue. The query file draws from it: ~70% hits, ~10% NXDOMAIN, ~8%
wildcard matches, ~7% CNAMEs, ~5% referrals, a tenth of them in mixed case.
"""

import random

TTL = 3600
SEED = 20240601


def _soa(zone):
    return (f"{zone} {TTL} IN SOA ns1.{zone} hostmaster.{zone} 2024060101 7200 3600 1209600 300\n"
            f"{zone} {TTL} IN NS ns1.{zone}\n"
            f"{zone} {TTL} IN NS ns2.{zone}\n"
            f"ns1.{zone} {TTL} IN A 192.0.2.1\n"
            f"ns1.{zone} {TTL} IN AAAA 2001:db8::1\n"
            f"ns2.{zone} {TTL} IN A 192.0.2.2\n"
            f"ns2.{zone} {TTL} IN AAAA 2001:db8::2\n")


def host_v4(i):
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def host_v6(i):
    return f"2001:db8:{(i >> 16) & 0xffff:x}:{i & 0xffff:x}::1"


class MixZone:
    """The 10k-name zone and what its queries may ask for."""

    def __init__(self, names=10_000, zone="bench.test."):
        self.zone = zone
        self.n_sub = max(4, names // 50)            # delegations; each has 2 glue names
        self.n_www = max(4, names * 6 // 100)       # CNAME -> host
        self.n_alias = max(2, names * 2 // 100)     # CNAME -> wwwN -> host (chain of 2)
        fixed = 5 + 1                               # apex, ns1, ns2, mail, wild (ENT), *.wild
        self.n_host = names - fixed - self.n_www - self.n_alias - 3 * self.n_sub
        rnd = random.Random(SEED)
        self.aaaa = [rnd.random() < 0.5 for _ in range(self.n_host)]
        self.mx = [rnd.random() < 0.08 for _ in range(self.n_host)]
        self.txt = [rnd.random() < 0.08 for _ in range(self.n_host)]
        self.www_target = [rnd.randrange(self.n_host) for _ in range(self.n_www)]
        self.alias_target = [rnd.randrange(self.n_www) for _ in range(self.n_alias)]

    def write(self, path):
        z = self.zone
        with open(path, "w") as f:
            f.write(_soa(z))
            f.write(f"{z} {TTL} IN MX 10 mail.{z}\n")
            f.write(f'{z} {TTL} IN TXT "v=spf1 mx -all"\n')
            f.write(f"{z} {TTL} IN A 192.0.2.10\n")
            f.write(f"mail.{z} {TTL} IN A 192.0.2.25\n")
            f.write(f"mail.{z} {TTL} IN AAAA 2001:db8::25\n")
            f.write(f"*.wild.{z} {TTL} IN A 192.0.2.80\n")
            f.write(f"*.wild.{z} {TTL} IN AAAA 2001:db8::80\n")
            f.write(f'*.wild.{z} {TTL} IN TXT "wildcard"\n')
            for i in range(self.n_host):
                h = f"host{i}.{z}"
                f.write(f"{h} {TTL} IN A {host_v4(i)}\n")
                if self.aaaa[i]:
                    f.write(f"{h} {TTL} IN AAAA {host_v6(i)}\n")
                if self.mx[i]:
                    f.write(f"{h} {TTL} IN MX 10 mail.{z}\n")
                if self.txt[i]:
                    f.write(f'{h} {TTL} IN TXT "site-verification={i:08x}" "owner=customer{i % 977}"\n')
            for i, t in enumerate(self.www_target):
                f.write(f"www{i}.{z} {TTL} IN CNAME host{t}.{z}\n")
            for i, t in enumerate(self.alias_target):
                f.write(f"alias{i}.{z} {TTL} IN CNAME www{t}.{z}\n")
            for i in range(self.n_sub):
                s = f"sub{i}.{z}"
                f.write(f"{s} {TTL} IN NS ns1.{s}\n{s} {TTL} IN NS ns2.{s}\n")
                f.write(f"ns1.{s} {TTL} IN A 198.51.{i >> 8 & 255}.{i & 255}\n")
                f.write(f"ns1.{s} {TTL} IN AAAA 2001:db8:5::{i:x}\n")
                f.write(f"ns2.{s} {TTL} IN A 203.0.{i >> 8 & 255}.{i & 255}\n")

    def queries(self, count=100_000, seed=SEED + 1):
        """Returns a list of (category, name, type); name is absolute, no trailing dot."""
        rnd = random.Random(seed)
        z = self.zone.rstrip(".")
        with_aaaa = [i for i, v in enumerate(self.aaaa) if v]
        with_mx = [i for i, v in enumerate(self.mx) if v]
        with_txt = [i for i, v in enumerate(self.txt) if v]
        out = []
        for _ in range(count):
            r = rnd.random()
            if r < 0.70:
                t = rnd.random()
                if t < 0.55:
                    q = ("hit", f"host{rnd.randrange(self.n_host)}.{z}", "A")
                elif t < 0.80:
                    q = ("hit", f"host{rnd.choice(with_aaaa)}.{z}", "AAAA")
                elif t < 0.90:
                    q = ("hit", f"host{rnd.choice(with_mx)}.{z}" if rnd.random() < 0.9 else z, "MX")
                elif t < 0.98:
                    q = ("hit", f"host{rnd.choice(with_txt)}.{z}" if rnd.random() < 0.9 else z, "TXT")
                else:
                    q = ("hit", rnd.choice([z, f"mail.{z}", f"ns1.{z}"]), rnd.choice(["SOA", "NS", "A", "AAAA"]))
                    if q[1] != z and q[2] in ("SOA", "NS"):
                        q = ("hit", q[1], "A")
            elif r < 0.80:
                if rnd.random() < 0.7:
                    q = ("nxdomain", f"nx{rnd.randrange(10**9)}.{z}", rnd.choice(["A", "AAAA"]))
                else:
                    q = ("nxdomain", f"x{rnd.randrange(1000)}.host{rnd.randrange(self.n_host)}.{z}", "A")
            elif r < 0.88:
                q = ("wildcard", f"c{rnd.randrange(10**7)}.wild.{z}", rnd.choice(["A", "A", "AAAA", "TXT"]))
            elif r < 0.95:
                if rnd.random() < 0.7:
                    q = ("cname", f"www{rnd.randrange(self.n_www)}.{z}", rnd.choice(["A", "A", "AAAA"]))
                else:
                    q = ("cname", f"alias{rnd.randrange(self.n_alias)}.{z}", "A")
            else:
                i = rnd.randrange(self.n_sub)
                q = ("referral", rnd.choice([f"www.sub{i}.{z}", f"sub{i}.{z}", f"mx.sub{i}.{z}"]), rnd.choice(["A", "AAAA"]))
            if rnd.random() < 0.10:
                q = (q[0], "".join(c.upper() if rnd.random() < 0.5 else c for c in q[1]), q[2])
            out.append(q)
        return out


def write_queries(path, queries):
    with open(path, "w") as f:
        for _, name, qtype in queries:
            f.write(f"{name} {qtype}\n")


def sample_queries(queries, per_category=12):
    """A few queries of each category, for the correctness check."""
    seen = {}
    for q in queries:
        lst = seen.setdefault(q[0], [])
        if len(lst) < per_category:
            lst.append(q)
    return [q for lst in seen.values() for q in lst]


def write_big_zone(path, names, zone="bench1m.test."):
    """A zone of `names` owner names: mostly A, every tenth also AAAA.

    Written in large chunks so that a million names take a couple of
    seconds. Returns the last host's name (absolute, no trailing dot),
    which the load-time probe waits for.
    """
    z = zone
    n_host = names - 3  # apex, ns1, ns2
    with open(path, "w") as f:
        f.write(_soa(z))
        chunk = []
        for i in range(n_host):
            chunk.append(f"h{i}.{z} {TTL} IN A {host_v4(i)}\n")
            if i % 10 == 0:
                chunk.append(f"h{i}.{z} {TTL} IN AAAA {host_v6(i)}\n")
            if len(chunk) >= 50_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    return f"h{n_host - 1}.{z.rstrip('.')}", host_v4(n_host - 1)


def write_sign_zone(path, names, zone):
    """The zone `scripts/bench sign` signs: `names` owner names, the apex
    (SOA, NS), ns1 and ns2 (A and AAAA), and hosts hN with one AAAA each."""
    with open(path, "w") as f:
        f.write(_soa(zone))
        chunk = []
        for i in range(names - 3):
            chunk.append(f"h{i}.{zone} {TTL} IN AAAA {host_v6(i)}\n")
            if len(chunk) >= 50_000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))


def write_apex_zone(path, zone):
    """Only the apex records (SOA, NS and the name servers' addresses)."""
    with open(path, "w") as f:
        f.write(_soa(zone))
    return [zone, f"ns1.{zone}", f"ns2.{zone}"]


def write_small_zone(path, zone, marker_addr, names=100):
    """A small zone whose `marker.ZONE A` is `marker_addr`."""
    with open(path, "w") as f:
        f.write(_soa(zone))
        f.write(f"marker.{zone} {TTL} IN A {marker_addr}\n")
        for i in range(names):
            f.write(f"n{i}.{zone} {TTL} IN A {host_v4(i)}\n")


def write_api_zone(path, zone, records=1000):
    """The zone both servers hold in `scripts/bench api`: the apex records
    and `records` A records `hostN` (0 <= N < records)."""
    with open(path, "w") as f:
        f.write(_soa(zone))
        for i in range(records):
            f.write(f"host{i}.{zone} {TTL} IN A {host_v4(i)}\n")
