//! `xgate-demo-seed --out DIR`: writes `DIR/<department>.db` (SQLite) for every department
//! of [`xgate_demo_data::DEPARTMENTS`], from the synthetic population (the demo's by
//! default; `--citizens` / `--companies` for a larger one, e.g. the screening benchmark).

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "Seed the demo departments' SQLite databases")]
struct Args {
    /// Directory to write `<department>.db` files into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Only this department (repeatable); all when absent.
    #[arg(long = "department")]
    departments: Vec<String>,
    /// Citizens in the population.
    #[arg(long, default_value_t = xgate_synth::DEFAULT_CITIZENS)]
    citizens: u32,
    /// Companies in the population.
    #[arg(long, default_value_t = xgate_synth::DEFAULT_COMPANIES)]
    companies: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    for spec in xgate_demo_data::DEPARTMENTS {
        if !args.departments.is_empty() && !args.departments.iter().any(|d| d == spec.id) {
            continue;
        }
        let path = args.out.join(format!("{}.db", spec.id));
        let report = spec.seed(&path, args.citizens, args.companies).await?;
        println!("{}: {} rows -> {}", spec.id, report.total(), path.display());
    }
    Ok(())
}
