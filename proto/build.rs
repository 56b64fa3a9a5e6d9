//! Compiles `xgate/v1/*.proto` in pure Rust (protox, no system `protoc`) and
//! generates the tonic client/server code plus a descriptor set for reflection.

use std::path::PathBuf;

use prost::Message as _;

const PROTOS: &[&str] = &[
    "xgate/v1/common.proto",
    "xgate/v1/exchange.proto",
    "xgate/v1/registry.proto",
    "xgate/v1/adapter.proto",
    "xgate/v1/admin.proto",
    "xgate/v1/audit.proto",
    "xgate/v1/consent.proto",
    "xgate/v1/evaluation.proto",
    "xgate/v1/console.proto",
    "xgate/v1/screening.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // protox does not emit these itself.
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("xgate_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .bytes(".xgate.v1.TypeAnswer.records_json")
        .compile_fds(fds)?;
    Ok(())
}
