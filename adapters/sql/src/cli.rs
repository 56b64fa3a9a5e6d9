//! The `xgate-adapter-sql` command: serves one department's record types
//! from a relational database described by a mapping file (see the crate
//! docs). `check` validates the mapping (and, connected, the queries'
//! columns) and exits 1 with every problem found. Library code, not
//! `main.rs`: a release build compiles the futures a binary polls into the
//! binary's own crate again, so the binary only calls [`main`].

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::{Mapping, SqlDepartment, SqlError};
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use xgate_adapter_sdk::AdapterArgs;
use xgate_catalog::Catalog;

/// Generic SQL adapter for xgate: serves catalog record types from SQLite,
/// PostgreSQL or MySQL/MariaDB tables described by a mapping file.
// Two parsers chosen by the first argument: the serve flags are required,
// the check command has none of them. The serve parser also lists `check`
// as a subcommand, so `--help` shows it.
#[derive(Parser, Debug)]
#[command(name = "xgate-adapter-sql", version, disable_help_subcommand = true)]
struct ServeCli {
    #[command(subcommand)]
    command: Option<SqlCommand>,
    #[command(flatten)]
    source: Source,
    #[command(flatten)]
    adapter: AdapterArgs,
}

#[derive(Subcommand, Debug)]
enum SqlCommand {
    /// Check the mapping against the catalog and, connected, the database
    /// (columns and their types), print warnings, and exit; 1 on any
    /// problem. Takes only --mapping and --database-url.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    source: Source,
}

/// Checks the mapping against the catalog and, connected to the database,
/// the queries' columns; exits 1 with every problem found.
#[derive(Parser, Debug)]
#[command(name = "xgate-adapter-sql check", version)]
struct CheckCli {
    #[command(flatten)]
    source: Source,
}

#[derive(Args, Debug, Clone)]
struct Source {
    /// The department's mapping file (TOML).
    #[arg(long, value_name = "FILE", env = "XGATE_SQL_MAPPING")]
    mapping: PathBuf,
    /// Database URL, overriding the mapping's `[database] url`.
    #[arg(long, value_name = "URL", env = "XGATE_SQL_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug)]
enum Invocation {
    // Boxed: the serve flags are large, and this is parsed once.
    Serve(Box<ServeCli>),
    Check(CheckCli),
}

fn parse(mut args: Vec<OsString>) -> Result<Invocation, clap::Error> {
    if args.get(1).is_some_and(|a| a == "check") {
        args.remove(1);
        CheckCli::try_parse_from(args).map(Invocation::Check)
    } else {
        ServeCli::try_parse_from(args).map(|cli| match cli.command {
            Some(SqlCommand::Check(check)) => Invocation::Check(CheckCli {
                source: check.source,
            }),
            None => Invocation::Serve(Box::new(cli)),
        })
    }
}

/// The binary's `main`: parses the arguments, runs `serve` or `check`.
pub fn main() -> ExitCode {
    xgate_adapter_sdk::init_tracing();
    let invocation = parse(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime");
    let result = runtime.and_then(|runtime| {
        runtime.block_on(async {
            match invocation {
                Invocation::Check(cli) => check(&cli.source).await,
                Invocation::Serve(cli) => serve(*cli).await,
            }
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn connect(source: &Source) -> anyhow::Result<SqlDepartment> {
    let catalog = Catalog::builtin().context("loading the record catalog")?;
    let mapping = Mapping::load(&source.mapping)?;
    match SqlDepartment::connect(&mapping, &catalog, source.database_url.as_deref()).await {
        Ok(department) => Ok(department),
        Err(SqlError::Mapping(errors)) => Err(anyhow::anyhow!(
            "the mapping has {} problem{}:\n{}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            crate::join_errors(&errors)
        )),
        Err(e) => Err(e.into()),
    }
}

async fn check(source: &Source) -> anyhow::Result<()> {
    let department = connect(source).await?;
    let types = xgate_adapter_sdk::Department::record_types(&department);
    department.close().await;
    let mut out = std::io::stdout().lock();
    for warning in department.warnings() {
        writeln!(out, "warning: {warning}")?;
    }
    let warned = department.warnings().len();
    writeln!(
        out,
        "{}: ok, {} record type{} checked against the catalog and the database{}",
        source.mapping.display(),
        types.len(),
        if types.len() == 1 { "" } else { "s" },
        match warned {
            0 => String::new(),
            1 => ", 1 warning".to_owned(),
            n => format!(", {n} warnings"),
        }
    )?;
    Ok(())
}

async fn serve(cli: ServeCli) -> anyhow::Result<()> {
    let department = connect(&cli.source).await?;
    for warning in department.warnings() {
        tracing::warn!(%warning, "mapping");
    }
    tracing::info!(mapping = %cli.source.mapping.display(), "mapping checked, database connected");
    xgate_adapter_sdk::serve(department, cli.adapter).await
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn run(args: &[&str]) -> Result<Invocation, clap::Error> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn the_clis_are_consistent() {
        ServeCli::command().debug_assert();
        CheckCli::command().debug_assert();
    }

    #[test]
    fn serve_takes_the_mapping_and_the_sdk_flags() {
        let invocation = run(&[
            "xgate-adapter-sql",
            "--mapping",
            "m.toml",
            "--database-url",
            "sqlite:x.db",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
            "--ca",
            "ca.pem",
            "--listen",
            "127.0.0.1:7000",
        ])
        .unwrap();
        let Invocation::Serve(cli) = invocation else {
            panic!("not serve: {invocation:?}");
        };
        assert_eq!(cli.source.mapping, PathBuf::from("m.toml"));
        assert_eq!(cli.source.database_url.as_deref(), Some("sqlite:x.db"));
        assert_eq!(cli.adapter.cert, PathBuf::from("c.pem"));
        assert_eq!(cli.adapter.listen.port(), 7000);
        let no_cert = run(&["xgate-adapter-sql", "--mapping", "m.toml"]);
        assert!(no_cert.is_err());
    }

    #[test]
    fn help_lists_check_as_a_subcommand() {
        let help = ServeCli::command().render_help().to_string();
        assert!(
            help.lines().any(|l| l.trim_start().starts_with("check ")),
            "{help}"
        );
        // given after the serve flags it is the check command too
        let mut args = vec!["xgate-adapter-sql", "--mapping", "m.toml"];
        args.extend(["--cert", "c.pem", "--key", "k.pem", "--ca", "ca.pem"]);
        args.extend(["check", "--mapping", "n.toml"]);
        let invocation = run(&args).unwrap();
        let Invocation::Check(cli) = invocation else {
            panic!("not check: {invocation:?}");
        };
        assert_eq!(cli.source.mapping, PathBuf::from("n.toml"));
    }

    #[test]
    fn check_needs_only_the_mapping() {
        let invocation = run(&["xgate-adapter-sql", "check", "--mapping", "m.toml"]).unwrap();
        let Invocation::Check(cli) = invocation else {
            panic!("not check: {invocation:?}");
        };
        assert_eq!(cli.source.mapping, PathBuf::from("m.toml"));
        assert!(cli.source.database_url.is_none());
        assert!(run(&["xgate-adapter-sql", "check", "--cert", "c.pem"]).is_err());
    }
}
