//! Rebuilds the crate when a file under `records/` changes: `include_dir!` embeds the
//! directory but, on stable Rust, does not tell cargo to watch it.

fn main() {
    println!("cargo::rerun-if-changed=records");
}
