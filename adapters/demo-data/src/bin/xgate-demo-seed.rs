//! `xgate-demo-seed --out DIR`: writes `DIR/<department>.db` (SQLite) for every department
//! of [`xgate_demo_data::DEPARTMENTS`], from the default synthetic population.

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
        let report = spec
            .seed(
                &path,
                xgate_synth::DEFAULT_CITIZENS,
                xgate_synth::DEFAULT_COMPANIES,
            )
            .await?;
        println!("{}: {} rows -> {}", spec.id, report.total(), path.display());
    }
    Ok(())
}
