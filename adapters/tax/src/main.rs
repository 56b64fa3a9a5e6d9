//! `xgate-adapter-tax`: the Taxation Bureau's (税务局) adapter. `seed` builds
//! its SQLite database from the synthetic population; `serve` opens that
//! database read-only and serves it to the gateway through the adapter SDK
//! (gRPC over mTLS). The bureau is its tables ([`db`]) and its records
//! ([`records`]); the rest is shared ([`xgate_synth::cli`]).

mod db;
mod records;
#[cfg(test)]
mod tests;

use xgate_synth::DepartmentSpec;

/// The Taxation Bureau.
static TAX: DepartmentSpec = DepartmentSpec {
    id: db::DEPARTMENT,
    name: "Taxation Bureau (税务局)",
    tables: db::TABLES,
    generate: records::generate,
};

fn main() -> anyhow::Result<()> {
    xgate_synth::cli::main(&TAX)
}
