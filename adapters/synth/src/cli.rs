//! The command line of every synthetic adapter: `seed` builds the
//! department's SQLite database from the synthetic population; `serve` opens
//! that database read-only and serves it to the gateway through the adapter
//! SDK (gRPC over mTLS).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use xgate_adapter_sdk::AdapterArgs;

use crate::department::DepartmentSpec;
use crate::population::{DEFAULT_CITIZENS, DEFAULT_COMPANIES};
use crate::store::SeedReport;

// No doc comment: clap would take it for the about text, which is the
// department's (see `command`).
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Creates the database (replacing any file at PATH) from the synthetic
    /// population and prints the rows written per record type.
    Seed {
        /// Database file to create.
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        /// Citizens in the population.
        #[arg(long, default_value_t = DEFAULT_CITIZENS)]
        citizens: u32,
        /// Companies in the population.
        #[arg(long, default_value_t = DEFAULT_COMPANIES)]
        companies: u32,
    },
    /// Opens an existing database read-only and serves it to the gateway.
    Serve {
        /// Database file made by `seed`.
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
        #[command(flatten)]
        adapter: AdapterArgs,
    },
}

/// A department binary's whole `main`: [`run`] on a multi-threaded runtime.
/// Not `#[tokio::main]` in each binary: a release build compiles the futures
/// a binary polls into the binary's own crate, so every department binary
/// compiled the SDK's server again (half a minute each); built here, once.
pub fn main(spec: &'static DepartmentSpec) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run(spec))
}

/// Runs the adapter of `spec` with the process's arguments, exiting as clap
/// does on a usage error or `--help`.
pub async fn run(spec: &'static DepartmentSpec) -> anyhow::Result<()> {
    xgate_adapter_sdk::init_tracing();
    let mut matches = command(spec).get_matches();
    let cli = Cli::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit());
    match cli.command {
        Command::Seed {
            db,
            citizens,
            companies,
        } => {
            let started = Instant::now();
            let report = spec
                .seed(&db, citizens, companies)
                .await
                .with_context(|| format!("cannot seed `{}`", db.display()))?;
            print!(
                "{}",
                seed_summary(&db, citizens, companies, started.elapsed(), &report)
            );
            Ok(())
        }
        Command::Serve { db, adapter } => {
            let department = spec
                .open(&db)
                .await
                .with_context(|| format!("cannot open `{}`", db.display()))?;
            tracing::info!(db = %db.display(), "database opened read-only");
            xgate_adapter_sdk::serve(department, adapter).await
        }
    }
}

/// The command line, named and described for `spec`'s adapter.
fn command(spec: &DepartmentSpec) -> clap::Command {
    Cli::command()
        .display_name(format!("xgate-adapter-{}", spec.id))
        .about(format!("{} adapter for xgate", spec.name))
}

/// What `seed` prints: where, from what and how fast, then the rows written
/// per record type and in all.
fn seed_summary(
    db: &Path,
    citizens: u32,
    companies: u32,
    took: Duration,
    report: &SeedReport,
) -> String {
    let mut out = format!(
        "seeded {} from {citizens} citizens and {companies} companies in {:.2} s\n",
        db.display(),
        took.as_secs_f64()
    );
    for (record_type, rows) in &report.counts {
        let _ = writeln!(out, "  {record_type:<34} {rows:>7}");
    }
    let _ = writeln!(out, "  {:<34} {:>7}", "total", report.total());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::population::Population;
    use crate::records::Records;

    fn nothing(_: &Population) -> Records {
        Vec::new()
    }

    static TAX: DepartmentSpec = DepartmentSpec {
        id: "tax",
        name: "Taxation Bureau (税务局)",
        tables: &[],
        generate: nothing,
    };

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        let mut matches = command(&TAX).try_get_matches_from(args)?;
        Ok(Cli::from_arg_matches_mut(&mut matches)?.command)
    }

    #[test]
    fn seed_takes_a_path_and_defaults_to_the_default_population() {
        let seed = parse(&["xgate-adapter-tax", "seed", "--db", "tax.db"]).unwrap();
        let Command::Seed {
            db,
            citizens,
            companies,
        } = seed
        else {
            panic!("not seed: {seed:?}");
        };
        assert_eq!(
            (db, citizens, companies),
            (PathBuf::from("tax.db"), 1000, 200)
        );
        let small = [
            "xgate-adapter-tax",
            "seed",
            "--db",
            "t.db",
            "--citizens",
            "20",
            "--companies",
            "5",
        ];
        assert!(matches!(
            parse(&small).unwrap(),
            Command::Seed {
                citizens: 20,
                companies: 5,
                ..
            }
        ));
        assert!(parse(&["xgate-adapter-tax", "seed"]).is_err());
        assert!(
            parse(&[
                "xgate-adapter-tax",
                "seed",
                "--db",
                "t.db",
                "--citizens",
                "-1"
            ])
            .is_err()
        );
    }

    #[test]
    fn serve_takes_a_path_and_the_sdk_arguments() {
        let args = [
            "xgate-adapter-tax",
            "serve",
            "--db",
            "tax.db",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--ca",
            "ca.pem",
            "--gateway",
            "https://127.0.0.1:7443",
        ];
        let Command::Serve { db, adapter } = parse(&args).unwrap() else {
            panic!("not serve");
        };
        assert_eq!(db, PathBuf::from("tax.db"));
        assert_eq!(adapter.cert, PathBuf::from("c.pem"));
        assert_eq!(adapter.gateway.as_deref(), Some("https://127.0.0.1:7443"));
        let missing_cert = ["xgate-adapter-tax", "serve", "--db", "tax.db"];
        assert!(parse(&missing_cert).is_err());
    }

    #[test]
    fn the_command_is_named_and_described_for_its_department() {
        let mut command = command(&TAX);
        assert_eq!(
            command.render_version(),
            format!("xgate-adapter-tax {}\n", env!("CARGO_PKG_VERSION"))
        );
        let help = command.render_help().to_string();
        assert!(
            help.starts_with("Taxation Bureau (税务局) adapter for xgate\n"),
            "{help}"
        );
        assert!(help.contains("seed   Creates the database"), "{help}");
    }

    #[test]
    fn the_summary_lists_rows_per_type_and_the_total() {
        let report = SeedReport {
            counts: vec![("tax_registration", 200), ("taxpayer_credit_rating", 546)],
        };
        let summary = seed_summary(
            Path::new("tax.db"),
            1000,
            200,
            Duration::from_millis(543),
            &report,
        );
        assert_eq!(
            summary,
            "seeded tax.db from 1000 citizens and 200 companies in 0.54 s\n\
             \x20 tax_registration                       200\n\
             \x20 taxpayer_credit_rating                 546\n\
             \x20 total                                  746\n"
        );
    }
}
