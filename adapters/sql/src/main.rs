//! `xgate-adapter-sql`: serves one department's record types from a
//! relational database described by a mapping file (see the crate docs of
//! `xgate_adapter_sql`). `check` validates the mapping (and, connected, the
//! queries' columns) and exits 1 with every problem found.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use xgate_adapter_sdk::AdapterArgs;
use xgate_adapter_sql::{Mapping, SqlDepartment, SqlError};
use xgate_catalog::Catalog;

/// Generic SQL adapter for xgate: serves catalog record types from SQLite,
/// PostgreSQL or MySQL/MariaDB tables described by a mapping file.
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Option<ServeArgs>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Checks the mapping against the catalog and, when the database answers,
    /// against the queries' columns; exits 1 with every problem found.
    Check {
        #[command(flatten)]
        source: Source,
    },
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

// The mapping flags are repeated here rather than flattened from `Source`:
// clap decides whether an optional flattened group is present from its own
// direct arguments only.
#[derive(Args, Debug, Clone)]
struct ServeArgs {
    /// The department's mapping file (TOML).
    #[arg(long, value_name = "FILE", env = "XGATE_SQL_MAPPING")]
    mapping: PathBuf,
    /// Database URL, overriding the mapping's `[database] url`.
    #[arg(long, value_name = "URL", env = "XGATE_SQL_DATABASE_URL")]
    database_url: Option<String>,
    #[command(flatten)]
    adapter: AdapterArgs,
}

impl ServeArgs {
    fn source(&self) -> Source {
        Source {
            mapping: self.mapping.clone(),
            database_url: self.database_url.clone(),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    xgate_adapter_sdk::init_tracing();
    let cli = Cli::parse();
    let result = match (cli.command, cli.serve) {
        (Some(Command::Check { source }), _) => check(&source).await,
        (None, Some(args)) => serve(args).await,
        (None, None) => Err(anyhow::anyhow!(
            "nothing to do: pass --mapping FILE and the adapter flags, or `check --mapping FILE`"
        )),
    };
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
            xgate_adapter_sql::join_errors(&errors)
        )),
        Err(e) => Err(e.into()),
    }
}

async fn check(source: &Source) -> anyhow::Result<()> {
    let department = connect(source).await?;
    let types = xgate_adapter_sdk::Department::record_types(&department);
    department.close().await;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: ok, {} record type{} checked against the catalog and the database",
        source.mapping.display(),
        types.len(),
        if types.len() == 1 { "" } else { "s" }
    )?;
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let department = connect(&args.source()).await?;
    tracing::info!(mapping = %args.mapping.display(), "mapping checked, database connected");
    xgate_adapter_sdk::serve(department, args.adapter).await
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(args)
    }

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_takes_the_mapping_and_the_sdk_flags() {
        let cli = parse(&[
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
        let serve = cli.serve.unwrap();
        assert!(cli.command.is_none());
        assert_eq!(serve.mapping, PathBuf::from("m.toml"));
        assert_eq!(serve.database_url.as_deref(), Some("sqlite:x.db"));
        assert_eq!(serve.adapter.cert, PathBuf::from("c.pem"));
        assert_eq!(serve.adapter.listen.port(), 7000);
    }

    #[test]
    fn check_needs_only_the_mapping() {
        let cli = parse(&["xgate-adapter-sql", "check", "--mapping", "m.toml"]).unwrap();
        let Some(Command::Check { source }) = cli.command else {
            panic!("not check");
        };
        assert_eq!(source.mapping, PathBuf::from("m.toml"));
        assert!(source.database_url.is_none());
        assert!(parse(&["xgate-adapter-sql", "check"]).is_err());
    }
}
