//! The `sixgate` binary: command line, configuration, logging and wiring.
//! All behaviour lives in the library crates.

mod config;
mod demo;
mod serve;
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
    /// Change single records.
    Record {
        #[command(subcommand)]
        command: RecordCommand,
        #[command(flatten)]
        common: Common,
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
    /// Delete a zone.
    Delete {
        /// Zone name.
        zone: String,
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

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config: file, dns, workers, common } => {
            let raw = match &file {
                Some(f) => config::read(f)?,
                None => config::RawConfig::default(),
            };
            let settings = config::settings(raw, common.data, &dns, workers)?;
            serve::run(settings)
        }
        Command::Zone { command, common } => {
            let dir = data_dir(&common);
            match command {
                ZoneCommand::Import { zone, file } => zonecmd::import(&dir, &zone, &file),
                ZoneCommand::Export { zone, as_served } => zonecmd::export(&dir, &zone, as_served),
                ZoneCommand::List => zonecmd::list(&dir),
                ZoneCommand::Delete { zone } => zonecmd::delete(&dir, &zone),
            }
        }
        Command::Record { command, common } => {
            let dir = data_dir(&common);
            match command {
                RecordCommand::Add { zone, record } => zonecmd::record_add(&dir, &zone, &record.join(" ")),
                RecordCommand::Delete { zone, owner, rtype } => {
                    zonecmd::record_delete(&dir, &zone, &owner, &rtype)
                }
            }
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
