//! The `sixgate` binary: command line, configuration, logging and wiring.
//! All behaviour lives in the library crates.

mod authcmd;
mod benchcmd;
mod client;
mod config;
mod demo;
mod dnssecmd;
mod proxycmd;
mod proxyroutes;
mod serve;
mod storecmd;
mod zonecmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// sixgate: authoritative DNS and the IPv6-only hosting edge, in one binary.
#[derive(Parser)]
#[command(name = "sixgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every subcommand takes.
#[derive(clap::Args, Clone)]
struct Common {
    /// Data directory (SQLite store).
    #[arg(long, value_name = "DIR", global = true)]
    data: Option<PathBuf>,
    /// The key-encryption key that seals the store's secrets (DNSSEC
    /// private keys, TSIG secrets), as a file; or $SIXGATE_KEK.
    #[arg(long, value_name = "FILE", global = true)]
    kek_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// DNS listen address (UDP and TCP); repeatable. Port 0 picks a free port.
        #[arg(long = "dns", value_name = "ADDR:PORT")]
        dns: Vec<String>,
        /// Threads answering UDP queries.
        #[arg(long, value_name = "N")]
        workers: Option<usize>,
        /// HTTP API listen address; repeatable. Port 0 picks a free port.
        #[arg(long = "api", value_name = "ADDR:PORT")]
        api: Vec<String>,
        #[command(flatten)]
        flags: config::Flags,
        #[command(flatten)]
        common: Common,
    },
    /// Manage zones.
    Zone {
        #[command(subcommand)]
        command: ZoneCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Change records: through the API with --api URL or $SIXGATE_API (token
    /// in $SIXGATE_TOKEN), else on the data directory.
    Record {
        #[command(subcommand)]
        command: RecordCommand,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        api: ApiArg,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        api: ApiArg,
    },
    /// Accounts: through the API with --api URL or $SIXGATE_API (admin
    /// token), else on the data directory.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
        #[command(flatten)]
        api: ApiArg,
        #[command(flatten)]
        common: Common,
    },
    /// ANAME records.
    Aname {
        #[command(subcommand)]
        command: AnameCommand,
        #[command(flatten)]
        common: Common,
    },
    /// The audit log: who changed which zone, when, and what (newest
    /// first).
    Audit {
        /// Only this zone's changes.
        zone: Option<String>,
        /// Entries to show at most.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        common: Common,
    },
    /// Managed DNSSEC: signing, keys, the DS for the registry.
    Dnssec {
        #[command(subcommand)]
        command: DnssecCommand,
        #[command(flatten)]
        common: Common,
    },
    /// The IPv4-to-IPv6 proxy: its addresses and the hostnames it serves.
    Proxy {
        #[command(subcommand)]
        command: ProxyCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Secondaries (Knot, NSD, BIND) that follow this primary by NOTIFY
    /// and zone transfers.
    Secondary {
        #[command(subcommand)]
        command: SecondaryCommand,
        #[command(flatten)]
        common: Common,
    },
    /// TSIG keys for RFC 2136 UPDATE and for zone transfers.
    Tsig {
        #[command(subcommand)]
        command: TsigCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Copy the whole store (zones, keys, accounts, token hashes, proxy
    /// settings) to FILE, consistently, while servers keep running on it.
    /// Prints what the copy holds.
    Backup {
        /// Where the copy goes (replaced atomically if it exists).
        file: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Install a backup as the store in the data directory: checked,
    /// migrated forward to this version. Refused over an existing store
    /// without --force, and while a server runs on the directory.
    Restore {
        /// The backup.
        file: PathBuf,
        /// Replace the store that is there.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        common: Common,
    },
    /// The key-encryption key that seals the store's secrets.
    Kek {
        #[command(subcommand)]
        command: KekCommand,
        #[command(flatten)]
        common: Common,
    },
    /// Measurements of sixgate's own paths (used by scripts/bench).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum KekCommand {
    /// Write a new random key (64 hex digits) to FILE, made 0600; an
    /// existing file is never overwritten. Prints the key's id.
    Create {
        /// The key file.
        file: PathBuf,
    },
    /// Seal every secret with the key in NEW_FILE instead of the current
    /// one (--kek-file or $SIXGATE_KEK; none for a plaintext store), in one
    /// transaction. Refused while a server runs on the directory; configure
    /// the new key before starting it again.
    Rotate {
        /// The new key (made with `kek create`).
        new_file: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time one-record changes to a signed zone through the write path
    /// (write, serial, incremental signing, journal, durable commit):
    /// alternately add and remove an A record at a new name and a TXT
    /// record at the apex. Prints each change and the median, p90 and
    /// maximum in milliseconds. The changes stay in the journal; the
    /// zone ends as it began, apart from its serial.
    Resign {
        /// The signed zone.
        #[arg(long, value_name = "ZONE")]
        zone: String,
        /// Changes timed (after one add and remove that are not).
        #[arg(long, value_name = "N", default_value_t = 50)]
        changes: usize,
        /// A data directory with the same zone unsigned: each change is
        /// made there too, and the difference of the medians is reported
        /// as what signing adds.
        #[arg(long, value_name = "DIR")]
        unsigned: Option<PathBuf>,
    },
}

/// The API to talk to.
#[derive(clap::Args, Clone)]
struct ApiArg {
    /// API base URL, e.g. http://127.0.0.1:8053 (default: $SIXGATE_API).
    #[arg(long = "api", value_name = "URL", global = true)]
    api: Option<String>,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token on the data directory and print it (only it) on stdout.
    /// Neither --account nor --zone: an admin token.
    Create {
        /// The account the token acts for (an account-wide token, or with --ptr).
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// Limit the token to one zone (of that zone's account).
        #[arg(long, value_name = "ZONE")]
        zone: Option<String>,
        /// With --zone: only _acme-challenge TXT records.
        #[arg(long)]
        acme_only: bool,
        /// Only PTR records inside this IPv6 prefix (with --account).
        #[arg(long, value_name = "PREFIX")]
        ptr: Option<String>,
    },
    /// Revoke a token by id (through the API).
    Revoke {
        /// Token id.
        id: i64,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account.
    Create {
        /// Account name.
        name: String,
    },
    /// List accounts: NAME, ID, ZONES and NAMESERVERS (comma-separated,
    /// `-` if none are known), tab-separated.
    List,
    /// Show one account: name, id, zones and the nameservers its zones
    /// must be delegated to, one `KEY<TAB>VALUE` line each. Through the
    /// API without NAME: the token's own account.
    Show {
        /// Account name.
        name: Option<String>,
    },
    /// A customer account's backend prefixes: the IPv6 networks its
    /// proxied hostnames may send the proxy to (the operator account's are
    /// `[proxy] allow_backend`).
    Prefixes {
        #[command(subcommand)]
        command: AccountPrefixesCommand,
    },
    /// Show a customer account's limits and quotas (`KEY<TAB>VALUE`, `-`
    /// for none), after setting those given; `default` restores a
    /// default. Only on the data directory.
    Limits {
        /// Account name.
        name: String,
        /// Records in one RRset.
        #[arg(long, value_name = "N|default")]
        records_per_rrset: Option<String>,
        /// RRsets at one name.
        #[arg(long, value_name = "N|default")]
        rrsets_per_name: Option<String>,
        /// Names in one zone.
        #[arg(long, value_name = "N|default")]
        names_per_zone: Option<String>,
        /// Zones of the account.
        #[arg(long, value_name = "N|default")]
        zones: Option<String>,
        /// Records in all the account's zones.
        #[arg(long, value_name = "N|default")]
        records: Option<String>,
        /// API tokens of the account.
        #[arg(long, value_name = "N|default")]
        tokens: Option<String>,
    },
}

#[derive(Subcommand)]
enum AccountPrefixesCommand {
    /// Replace the account's backend prefixes (none: nothing of it is
    /// proxied), then print them, one per line. At most 64; a prefix of
    /// another account's may not overlap.
    Set {
        /// Account name.
        name: String,
        /// IPv6 prefixes, e.g. 2001:db8:42::/48.
        #[arg(value_name = "PREFIX")]
        prefixes: Vec<String>,
    },
    /// Print the account's backend prefixes, one per line.
    Show {
        /// Account name.
        name: String,
    },
}

#[derive(Subcommand)]
enum ProxyCommand {
    /// The proxy's public IPv4 addresses, published as A records of every
    /// enabled hostname.
    Addresses {
        #[command(subcommand)]
        command: ProxyAddressesCommand,
    },
    /// Enable a hostname: publish the proxy's addresses as its A records.
    Enable {
        /// The hostname.
        host: String,
        /// PROXY protocol towards the backend.
        #[arg(long, default_value = "off", value_name = "off|v1|v2")]
        proxy_protocol: String,
        /// Backend port for plain HTTP.
        #[arg(long, default_value_t = 80)]
        backend_http_port: u16,
        /// Backend port for TLS.
        #[arg(long, default_value_t = 443)]
        backend_tls_port: u16,
    },
    /// Disable a hostname and withdraw its A records.
    Disable {
        /// The hostname.
        host: String,
    },
    /// Enabled hostnames: HOST, PROXY_PROTOCOL, HTTP_PORT, TLS_PORT, tab-separated.
    List,
    /// Connect to HOST's backends over plain HTTP with its PROXY mode and
    /// report whether they answer sensibly (and, if not, whether another
    /// mode would have worked): one line per backend.
    Check {
        /// The hostname.
        host: String,
    },
}

#[derive(Subcommand)]
enum ProxyAddressesCommand {
    /// Replace the list of addresses.
    Set {
        /// IPv4 addresses.
        #[arg(required = true)]
        addresses: Vec<String>,
    },
    /// Print the addresses, one per line.
    List,
}

#[derive(Subcommand)]
enum DnssecCommand {
    /// Sign a zone: generate its keys, sign every record, keep it signed
    /// and publish CDS/CDNSKEY. Prints the DS records for the registry.
    Enable {
        /// The zone.
        zone: String,
        /// Signing algorithm.
        #[arg(long, value_name = "ALG", default_value = "ecdsap256sha256",
              value_parser = ["ecdsap256sha256", "ed25519"])]
        algorithm: String,
        /// Deny existence with NSEC3 (RFC 9276: no extra iterations, no
        /// salt) instead of NSEC.
        #[arg(long)]
        nsec3: bool,
        /// A KSK and a ZSK instead of one combined key.
        #[arg(long)]
        ksk_zsk: bool,
        /// The rest of the policy as JSON, e.g.
        /// '{"signature_validity":1209600,"zsk_lifetime":0}' (see
        /// docs/dnssec.md); --algorithm, --nsec3 and --ksk-zsk win.
        #[arg(long, value_name = "JSON")]
        policy: Option<String>,
    },
    /// Make a zone insecure the safe way: publish CDS/CDNSKEY "delete"
    /// (RFC 8078) and stay signed until the parent has removed its DS.
    Disable {
        /// The zone.
        zone: String,
        /// Remove keys and signatures now. Refused, with the time it
        /// becomes safe, while validators may hold a DS of the parent for
        /// the zone (they would see it as bogus).
        #[arg(long)]
        now: bool,
        /// With --now: unsign even then. The zone is bogus to validators
        /// that hold the parent's DS until it has left their caches.
        #[arg(long, requires = "now")]
        force: bool,
    },
    /// Keys, their states, the DS records, and the verdict.
    Status {
        /// The zone.
        zone: String,
    },
    /// The DS records to give the registry, one per line.
    Ds {
        /// The zone.
        zone: String,
    },
    /// One maintenance step now: ask the parent's servers for the DS
    /// RRset if the keys wait for it, move keys along their timelines,
    /// refresh signatures. The server does this by itself; this is for
    /// setups that run it from cron, and for tests.
    Maintain {
        /// The zone.
        zone: String,
        /// A parent server to ask (ADDR:PORT); repeatable. Default: found
        /// through NS records with the system's resolvers.
        #[arg(long = "parent", value_name = "ADDR:PORT")]
        parents: Vec<String>,
    },
    /// Print the zone's private keys (PKCS#8, PEM) with their tags and
    /// roles: an explicit operator action, for escrow or a move to another
    /// signer. Anyone who reads the output can sign for the zone.
    ExportKeys {
        /// The zone.
        zone: String,
    },
    /// Remove a key by hand (by key tag). Refused while the parent's DS
    /// names it, while resolvers may still hold its signatures (with the
    /// time that ends), or while it still signs; keys are removed
    /// automatically when safe.
    RemoveKey {
        /// The zone.
        zone: String,
        /// The key's tag.
        key_tag: u16,
        /// Remove it even while the parent's DS names it or its signatures
        /// may be cached (never while it signs): validators that hold them
        /// see the zone as bogus.
        #[arg(long)]
        force: bool,
    },
    /// Start a key rollover by hand.
    Roll {
        /// The zone.
        zone: String,
        /// What to roll: ksk (the KSK, or the CSK), zsk, or algorithm.
        #[arg(value_parser = ["ksk", "zsk", "algorithm"])]
        what: String,
        /// The new algorithm (for an algorithm rollover).
        #[arg(long, value_name = "ALG", value_parser = ["ecdsap256sha256", "ed25519"])]
        algorithm: Option<String>,
    },
    /// Sign a zone file offline with a new key: zone file in, signed zone
    /// file out (like kzonesign or ldns-signzone); the store is not used.
    /// Prints the DS record on stderr.
    SignFile {
        /// The zone file.
        file: PathBuf,
        /// The zone's name.
        #[arg(long, value_name = "ZONE")]
        origin: String,
        /// Signing algorithm.
        #[arg(long, value_name = "ALG", default_value = "ecdsap256sha256",
              value_parser = ["ecdsap256sha256", "ed25519"])]
        algorithm: String,
        /// NSEC3 (no extra iterations, no salt) instead of NSEC.
        #[arg(long)]
        nsec3: bool,
        /// Signing threads (default: all cores).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// Output file (default: standard output).
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AnameCommand {
    /// Each ANAME with its addresses, last success, last error and next
    /// refresh: OWNER, TARGET, ADDRESSES, LAST_SUCCESS, LAST_ERROR,
    /// NEXT_REFRESH, tab-separated (`-` for none; times in RFC 3339 UTC).
    Status {
        /// Only this zone.
        zone: Option<String>,
    },
}

#[derive(Subcommand)]
enum SecondaryCommand {
    /// Add a secondary (or replace the one at ADDR:PORT): it is sent
    /// NOTIFY and may transfer its zones from its address, signed with its
    /// key when one is given. Without --catalog or --zone it gets every
    /// zone.
    Add {
        /// Where NOTIFY goes and transfers come from, e.g. [2001:db8::53]:53.
        address: std::net::SocketAddr,
        /// The key its transfers are signed with, ALGORITHM:NAME:SECRET
        /// (base64), as `tsig create --transfer` prints and kdig -y takes.
        #[arg(long, value_name = "ALG:NAME:SECRET")]
        tsig: Option<String>,
        /// It follows the catalog zone, and through it every zone.
        #[arg(long)]
        catalog: bool,
        /// Only this zone (repeatable).
        #[arg(long = "zone", value_name = "ZONE")]
        zones: Vec<String>,
    },
    /// List the secondaries: ADDRESS, KEY (or -), and what they carry.
    List,
    /// Remove a secondary; its key stays (`tsig delete` removes it).
    Remove {
        /// The secondary's ADDR:PORT.
        address: std::net::SocketAddr,
    },
}

#[derive(Subcommand)]
enum TsigCommand {
    /// Make a key and print `ALGORITHM:NAME:SECRET` (base64): an UPDATE
    /// key for --zone, or with --transfer a zone-transfer key.
    Create {
        /// Key name, e.g. acme-key.
        name: String,
        /// The zone the key may update.
        #[arg(long, value_name = "ZONE", required_unless_present = "transfer", conflicts_with = "transfer")]
        zone: Option<String>,
        /// A key that signs zone transfers (AXFR/IXFR) for secondaries.
        #[arg(long, conflicts_with = "acme_only")]
        transfer: bool,
        /// Only _acme-challenge TXT records.
        #[arg(long)]
        acme_only: bool,
        /// hmac-sha256, hmac-sha512 or hmac-md5.
        #[arg(long, default_value = "hmac-sha256")]
        algorithm: String,
    },
    /// Delete a key.
    Delete {
        /// Key name.
        name: String,
    },
}

#[derive(Subcommand)]
enum ZoneCommand {
    /// Import a zone file, creating the zone or replacing its content.
    Import {
        /// Zone name.
        zone: String,
        /// RFC 1035 zone file.
        file: PathBuf,
    },
    /// Print a zone in zone-file format.
    Export {
        /// Zone name.
        zone: String,
        /// Print exactly what DNS serves instead of the source data.
        #[arg(long)]
        as_served: bool,
    },
    /// List zones: NAME, SERIAL and RECORDS, tab-separated.
    List,
    /// Delete a zone. A signed zone is refused while validators may hold
    /// a DS of the parent for it (its keys would go with it).
    Delete {
        /// Zone name.
        zone: String,
        /// Delete a signed zone even then.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum RecordCommand {
    /// Add one record, given as 'OWNER TTL TYPE RDATA' (owner relative to the zone).
    Add {
        /// Zone name.
        zone: String,
        /// The record in presentation format.
        record: Vec<String>,
    },
    /// Replace the RRset OWNER TYPE with the given records.
    Set {
        /// Zone name.
        zone: String,
        /// Owner name (relative to the zone, or absolute with a trailing dot).
        owner: String,
        /// Record type.
        rtype: String,
        /// TTL of the RRset.
        #[arg(long, default_value_t = 3600)]
        ttl: u32,
        /// Record data, one argument per record, e.g. '10 mail.example.com.'.
        #[arg(required = true, value_name = "DATA")]
        rdata: Vec<String>,
    },
    /// List a zone's records.
    List {
        /// Zone name.
        zone: String,
    },
    /// Delete the RRset OWNER TYPE.
    Delete {
        /// Zone name.
        zone: String,
        /// Owner name (relative to the zone, or absolute with a trailing dot).
        owner: String,
        /// Record type.
        rtype: String,
    },
}

fn data_dir(c: &Common) -> PathBuf {
    c.data.clone().unwrap_or_else(|| PathBuf::from(config::DEFAULT_DATA))
}

/// The options every subcommand takes.
fn common(command: &Command) -> &Common {
    match command {
        Command::Serve { common, .. }
        | Command::Zone { common, .. }
        | Command::Record { common, .. }
        | Command::Token { common, .. }
        | Command::Account { common, .. }
        | Command::Aname { common, .. }
        | Command::Audit { common, .. }
        | Command::Dnssec { common, .. }
        | Command::Proxy { common, .. }
        | Command::Secondary { common, .. }
        | Command::Tsig { common, .. }
        | Command::Backup { common, .. }
        | Command::Restore { common, .. }
        | Command::Kek { common, .. }
        | Command::Bench { common, .. } => common,
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if !matches!(cli.command, Command::Serve { .. }) {
        // `serve` has [store] kek_file too, read with its configuration.
        storecmd::install_kek(common(&cli.command).kek_file.as_deref())?;
    }
    match cli.command {
        Command::Serve { config: file, dns, workers, api, flags, common } => {
            let raw = match &file {
                Some(f) => config::read(f)?,
                None => config::RawConfig::default(),
            };
            let kek_file = common.kek_file.clone().or_else(|| raw.store.kek_file.clone());
            storecmd::install_kek(kek_file.as_deref())?;
            let settings = config::settings(raw, common.data, &dns, workers, &api, flags)?;
            serve::run(settings)
        }
        Command::Zone { command, common } => {
            let dir = data_dir(&common);
            match command {
                ZoneCommand::Import { zone, file } => zonecmd::import(&dir, &zone, &file),
                ZoneCommand::Export { zone, as_served } => zonecmd::export(&dir, &zone, as_served),
                ZoneCommand::List => zonecmd::list(&dir),
                ZoneCommand::Delete { zone, force } => zonecmd::delete(&dir, &zone, force),
            }
        }
        Command::Record { command, common, api } => {
            let dir = data_dir(&common);
            let remote = client::Api::from_env(api.api.as_deref())?;
            match (command, remote) {
                (RecordCommand::Add { zone, record }, None) => {
                    zonecmd::record_add(&dir, &zone, &record.join(" "))
                }
                (RecordCommand::Add { .. }, Some(_)) => {
                    anyhow::bail!("record add works on the data directory; use record set with --api")
                }
                (RecordCommand::Set { zone, owner, rtype, ttl, rdata }, None) => {
                    zonecmd::record_set(&dir, &zone, &owner, &rtype, ttl, &rdata)
                }
                (RecordCommand::Set { zone, owner, rtype, ttl, rdata }, Some(a)) => {
                    client::record_set(&a, &zone, &zonecmd::absolute(&zone, &owner)?, &rtype, ttl, &rdata)
                }
                (RecordCommand::List { zone }, None) => zonecmd::record_list(&dir, &zone),
                (RecordCommand::List { zone }, Some(a)) => client::record_list(&a, &zone),
                (RecordCommand::Delete { zone, owner, rtype }, None) => {
                    zonecmd::record_delete(&dir, &zone, &owner, &rtype)
                }
                (RecordCommand::Delete { zone, owner, rtype }, Some(a)) => {
                    client::record_delete(&a, &zone, &zonecmd::absolute(&zone, &owner)?, &rtype)
                }
            }
        }
        Command::Token { command, common, api } => match command {
            TokenCommand::Create { account, zone, acme_only, ptr } => authcmd::token_create(
                &data_dir(&common),
                account.as_deref(),
                zone.as_deref(),
                acme_only,
                ptr.as_deref(),
            ),
            TokenCommand::Revoke { id } => {
                client::token_revoke(&client::Api::required(api.api.as_deref())?, id)
            }
        },
        Command::Account { command, api, common } => match client::Api::from_env(api.api.as_deref())? {
            Some(a) => match command {
                AccountCommand::Create { name } => client::account_create(&a, &name),
                AccountCommand::List => client::account_list(&a),
                AccountCommand::Show { name } => client::account_show(&a, name.as_deref()),
                AccountCommand::Limits { .. } => Err(anyhow::anyhow!(
                    "account limits are set on the data directory (--data), not through the API"
                )),
                AccountCommand::Prefixes { command: AccountPrefixesCommand::Set { name, prefixes } } => {
                    client::account_prefixes(&a, &name, Some(&prefixes))
                }
                AccountCommand::Prefixes { command: AccountPrefixesCommand::Show { name } } => {
                    client::account_prefixes(&a, &name, None)
                }
            },
            None => match command {
                AccountCommand::Create { name } => authcmd::account_create(&data_dir(&common), &name),
                AccountCommand::List => authcmd::account_list(&data_dir(&common)),
                AccountCommand::Show { name } => authcmd::account_show(&data_dir(&common), name.as_deref()),
                AccountCommand::Prefixes { command: AccountPrefixesCommand::Set { name, prefixes } } => {
                    authcmd::account_prefixes(&data_dir(&common), &name, Some(&prefixes))
                }
                AccountCommand::Prefixes { command: AccountPrefixesCommand::Show { name } } => {
                    authcmd::account_prefixes(&data_dir(&common), &name, None)
                }
                AccountCommand::Limits {
                    name,
                    records_per_rrset,
                    rrsets_per_name,
                    names_per_zone,
                    zones,
                    records,
                    tokens,
                } => authcmd::account_limits(
                    &data_dir(&common),
                    &name,
                    [records_per_rrset, rrsets_per_name, names_per_zone, zones, records, tokens],
                ),
            },
        },
        Command::Proxy { command, common } => {
            let dir = data_dir(&common);
            match command {
                ProxyCommand::Addresses { command: ProxyAddressesCommand::Set { addresses } } => {
                    proxycmd::addresses_set(&dir, &addresses)
                }
                ProxyCommand::Addresses { command: ProxyAddressesCommand::List } => {
                    proxycmd::addresses_list(&dir)
                }
                ProxyCommand::Enable { host, proxy_protocol, backend_http_port, backend_tls_port } => {
                    proxycmd::enable(&dir, &host, &proxy_protocol, backend_http_port, backend_tls_port)
                }
                ProxyCommand::Disable { host } => proxycmd::disable(&dir, &host),
                ProxyCommand::List => proxycmd::list(&dir),
                ProxyCommand::Check { host } => proxycmd::check(&dir, &host),
            }
        }
        Command::Audit { zone, limit, common } => zonecmd::audit(&data_dir(&common), zone.as_deref(), limit),
        Command::Dnssec { command, common } => {
            let dir = data_dir(&common);
            match command {
                DnssecCommand::Enable { zone, algorithm, nsec3, ksk_zsk, policy } => {
                    dnssecmd::enable(&dir, &zone, &algorithm, nsec3, ksk_zsk, policy.as_deref())
                }
                DnssecCommand::Disable { zone, now, force } => dnssecmd::disable(&dir, &zone, now, force),
                DnssecCommand::Status { zone } => dnssecmd::status(&dir, &zone),
                DnssecCommand::Ds { zone } => dnssecmd::ds(&dir, &zone),
                DnssecCommand::Maintain { zone, parents } => dnssecmd::maintain(&dir, &zone, &parents),
                DnssecCommand::ExportKeys { zone } => dnssecmd::export_keys(&dir, &zone),
                DnssecCommand::RemoveKey { zone, key_tag, force } => {
                    dnssecmd::remove_key(&dir, &zone, key_tag, force)
                }
                DnssecCommand::Roll { zone, what, algorithm } => {
                    dnssecmd::roll(&dir, &zone, &what, algorithm.as_deref())
                }
                DnssecCommand::SignFile { file, origin, algorithm, nsec3, threads, out } => {
                    dnssecmd::sign_file(&file, &origin, &algorithm, nsec3, threads, out.as_deref())
                }
            }
        }
        Command::Aname { command: AnameCommand::Status { zone }, common } => {
            zonecmd::aname_status(&data_dir(&common), zone.as_deref())
        }
        Command::Secondary { command, common } => {
            let dir = data_dir(&common);
            match command {
                SecondaryCommand::Add { address, tsig, catalog, zones } => {
                    authcmd::secondary_add(&dir, address, tsig.as_deref(), catalog, &zones)
                }
                SecondaryCommand::List => authcmd::secondary_list(&dir),
                SecondaryCommand::Remove { address } => authcmd::secondary_remove(&dir, address),
            }
        }
        Command::Tsig { command, common } => {
            let dir = data_dir(&common);
            match command {
                TsigCommand::Create { name, transfer: true, algorithm, .. } => {
                    authcmd::transfer_key_create(&dir, &name, &algorithm)
                }
                TsigCommand::Create { name, zone, acme_only, algorithm, .. } => {
                    let zone =
                        zone.ok_or_else(|| anyhow::anyhow!("--zone ZONE or --transfer is required"))?;
                    authcmd::tsig_create(&dir, &name, &zone, acme_only, &algorithm)
                }
                TsigCommand::Delete { name } => authcmd::tsig_delete(&dir, &name),
            }
        }
        Command::Backup { file, common } => storecmd::backup(&data_dir(&common), &file),
        Command::Restore { file, force, common } => storecmd::restore(&data_dir(&common), &file, force),
        Command::Kek { command: KekCommand::Create { file }, .. } => storecmd::kek_create(&file),
        Command::Kek { command: KekCommand::Rotate { new_file }, common } => {
            storecmd::kek_rotate(&data_dir(&common), &new_file)
        }
        Command::Bench { command: BenchCommand::Resign { zone, changes, unsigned }, common } => {
            benchcmd::resign(&data_dir(&common), &zone, changes, unsigned.as_deref())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        // One-shot commands log warnings only; `serve` sets up its own.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("SIXGATE_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init();
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the chain of causes joined.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("error: {msg}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Regression: `record set`'s record data was a field called `data`,
    /// which collided with the global `--data DIR` and panicked at runtime.
    #[test]
    fn record_set_parses_next_to_the_global_data_flag() {
        let cli = Cli::try_parse_from([
            "sixgate",
            "record",
            "set",
            "--data",
            "d",
            "example.test",
            "mail",
            "MX",
            "10 www",
        ]);
        let Ok(Cli { command: Command::Record { command: RecordCommand::Set { rdata, .. }, common, .. } }) =
            cli
        else {
            panic!("did not parse");
        };
        assert_eq!(rdata, vec!["10 www".to_string()]);
        assert_eq!(common.data, Some(PathBuf::from("d")));
    }
}
