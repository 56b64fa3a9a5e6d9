//! `xgate-adapter-tax`: the Taxation Bureau's (税务局)
//! adapter. `seed` builds its SQLite database from the synthetic population;
//! `serve` opens that database read-only and serves it to the gateway
//! through the adapter SDK (gRPC over mTLS).

mod db;
mod department;
mod records;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use xgate_adapter_sdk::AdapterArgs;
use xgate_synth::{DEFAULT_CITIZENS, DEFAULT_COMPANIES};

use crate::department::Tax;

#[derive(Parser, Debug)]
#[command(version, about = "Taxation Bureau (税务局) adapter for xgate")]
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    xgate_adapter_sdk::init_tracing();
    match Cli::parse().command {
        Command::Seed {
            db,
            citizens,
            companies,
        } => {
            let started = Instant::now();
            let report = db::seed(&db, citizens, companies)
                .await
                .with_context(|| format!("cannot seed `{}`", db.display()))?;
            println!(
                "seeded {} from {citizens} citizens and {companies} companies in {:.2} s",
                db.display(),
                started.elapsed().as_secs_f64()
            );
            for (record_type, rows) in &report.counts {
                println!("  {record_type:<34} {rows:>7}");
            }
            println!("  {:<34} {:>7}", "total", report.total());
            Ok(())
        }
        Command::Serve { db, adapter } => {
            let department = Tax::open(&db)
                .await
                .with_context(|| format!("cannot open `{}`", db.display()))?;
            tracing::info!(db = %db.display(), "database opened read-only");
            xgate_adapter_sdk::serve(department, adapter).await
        }
    }
}
