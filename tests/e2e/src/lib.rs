//! End-to-end test harness for sixgate.
//!
//! # Architecture
//!
//! The tests in `tests/e2e/tests/` drive the real `sixgate` binary over
//! loopback, next to real DNS peers, exactly as an operator would: through the
//! command line of `docs/cli.md` and through DNS packets. Nothing here links
//! sixgate's own crates. DNS messages are built and parsed with
//! `hickory-proto`, so a bug in sixgate's wire code cannot hide itself by
//! being shared with the tests.
//!
//! - [`process`]: locating the built `sixgate` binary, a child-process guard
//!   that kills on drop and keeps stderr in a log file, and the polling helper
//!   that replaces every sleep.
//! - [`sixgate`]: [`Sixgate`], a private `sixgate serve` on an OS-chosen
//!   loopback port with its own data directory, and [`Cli`] to run the other
//!   subcommands against that directory.
//! - [`knot`]: [`Knot`], a private `knotd` serving the same zone files, the
//!   reference implementation of the differential test.
//! - [`client`]: a tiny blocking DNS client, raw bytes in and out, over UDP
//!   (timeout and retries) and TCP (two-byte length prefix), plus AXFR.
//! - [`query`]: well-formed queries built with hickory-proto, EDNS included.
//! - [`craft`]: byte-level crafted and malformed messages.
//! - [`flood`]: a paced UDP flood from many loopback sources and ports
//!   that counts full, truncated and missing replies, and a knotd with
//!   `mod-rrl`, for the response-rate limiting tests.
//! - [`normalize`] and [`mod@compare`]: a response reduced to what must match
//!   (header, question, RRsets as multisets, OPT), and a readable diff.
//! - [`corpus`] and [`differential`]: queries generated from zone content and
//!   the concurrent runner that sends each to two servers and compares.
//! - [`pebble`]: [`Pebble`], a private pebble (Let's Encrypt's test CA) with
//!   a throwaway HTTPS certificate, validating DNS-01 through the server under
//!   test.
//! - [`acme`]: lego (`httpreq`, `rfc2136`, `pdns` providers) and certbot
//!   (`dns-rfc2136`) runs against it, and checks of what they obtained.
//! - [`powerdns`]: [`PowerDns`], a private PowerDNS Authoritative, the
//!   reference peer for the ACME flows it supports.
//! - [`http`]: a minimal HTTP/1.1 client for loopback JSON APIs;
//!   [`metrics`]: a server's `/metrics` and the samples read from it.
//! - [`backend`]: tiny TCP backends on ::1 for the proxy (a recorder of raw
//!   requests, a 101 answerer, a backend that never reads, an echo);
//!   [`proxylab`]: a server with both proxy listeners and what the proxy's
//!   tests look at from outside (metrics, descriptors, TCP timers).
//! - [`secondary`]: [`secondary::Secondary`], a private knotd, named or
//!   nsd following a primary by AXFR/IXFR after NOTIFY, statically or
//!   through a catalog zone, with or without TSIG, and how each version
//!   reached it (IXFR or AXFR, from the peer's own words);
//!   [`knot_primary`]: [`knot_primary::KnotPrimary`], knotd as the
//!   reference primary those secondaries are proven against.
//! - [`kdig`]: Knot's `kdig` run as an operator would, its output parsed
//!   into status, flags and records.
//! - [`xfrlab`]: zone transfers out of sixgate: kdig's AXFR/IXFR output
//!   read back, and a private knotd as a static secondary of sixgate.
//! - [`unbound`]: [`Unbound`], a private validating unbound whose stub
//!   zones point at the servers under test and which never queries anything
//!   off loopback: the judge of DNSSEC answers (AD bit, bogus reasons).
//! - [`ldns`]: keys, DS records and presigned zones made with ldnsutils, for
//!   the signed parents around a zone under test.
//! - [`lab`]: [`lab::LabRoot`], a signed lab root zone on knotd at port 53 of
//!   its own loopback network (127.0.X.0/24), for tools that start at the
//!   root; [`zonemaster`] and [`dnsviz`] run those tools against a lab.
//! - [`notifylab`]: a knotd configured as a secondary of a sixgate, and a
//!   UDP socket that plays a secondary, for the NOTIFY tests.
//! - [`aname`]: `sixgate aname status` lines as checked data.
//! - [`plant`]: rows written into a stopped server's `sixgate.db` with
//!   SQLite, for data that only an older version could have written.
//! - [`rng`]: a small seeded generator, so a failing run can be replayed with
//!   `SIXGATE_E2E_SEED`.
//!
//! # Finding the sixgate binary
//!
//! `env!("CARGO_BIN_EXE_sixgate")` only exists inside the crate that defines
//! the binary, so [`process::sixgate_binary`] walks up from the running test
//! executable (`target/<profile>/deps/<test>-<hash>`) to `target/<profile>/`
//! and uses `sixgate` there; `SIXGATE_BIN` overrides it. Cargo (and so
//! nextest) builds a package's binaries for tests only when that package has
//! integration tests of its own, so `scripts/test` runs
//! `cargo build --workspace --bins` before `cargo nextest run --workspace`.
//! By hand: `cargo build -p sixgate && cargo nextest run -p sixgate-e2e`.
//! The harness warns on stderr when the binary is older than the newest
//! source file under `bin/` or `crates/`.
//!
//! # Rules every test here follows
//!
//! - Servers listen on 127.0.0.1 only, on ports the OS chose; system services
//!   (a packaged knotd or nsd) are never used and never collide. The one
//!   exception is a lab ([`lab`]): tools that cannot be given a port need
//!   port 53, so each lab test has a loopback /24 of its own.
//! - Every wait is [`process::wait_until`] polling with a generous deadline.
//! - Every started process is killed when its guard drops, also on panic.

pub mod acme;
pub mod aname;
pub mod backend;
pub mod client;
pub mod compare;
pub mod corpus;
pub mod craft;
pub mod differential;
pub mod dnsviz;
pub mod flood;
pub mod http;
pub mod kdig;
pub mod knot;
pub mod knot_primary;
pub mod lab;
pub mod ldns;
pub mod metrics;
pub mod normalize;
pub mod notifylab;
pub mod pebble;
pub mod plant;
pub mod powerdns;
pub mod process;
pub mod proxylab;
pub mod query;
pub mod rng;
pub mod secondary;
pub mod sixgate;
pub mod unbound;
pub mod xfrlab;
pub mod zonemaster;

pub use client::{UdpClient, tcp_exchange, udp_exchange};
pub use compare::{Difference, Section, compare};
pub use knot::Knot;
pub use normalize::Response;
pub use pebble::Pebble;
pub use powerdns::PowerDns;
pub use process::{ZoneFile, wait_until};
pub use query::{EdnsSpec, QuerySpec};
pub use rng::Rng;
pub use sixgate::{Cli, CliOutput, Sixgate};
pub use unbound::{Unbound, UnboundConfig};
