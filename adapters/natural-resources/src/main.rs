//! `xgate-adapter-natural-resources`: the Natural Resources Bureau's
//! (自然资源局) adapter. `seed` builds its SQLite database from the synthetic
//! population; `serve` opens that database read-only and serves it to the
//! gateway through the adapter SDK (gRPC over mTLS). The bureau is its
//! tables ([`db`]) and its records ([`records`]); the rest is shared
//! ([`xgate_synth::cli`]).

mod db;
mod records;
#[cfg(test)]
mod tests;

use xgate_synth::DepartmentSpec;

/// The Natural Resources Bureau.
static NATURAL_RESOURCES: DepartmentSpec = DepartmentSpec {
    id: db::DEPARTMENT,
    name: "Natural Resources Bureau (自然资源局)",
    tables: db::TABLES,
    generate: records::generate,
};

fn main() -> anyhow::Result<()> {
    xgate_synth::cli::main(&NATURAL_RESOURCES)
}
