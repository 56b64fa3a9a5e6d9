//! `include_dir!` tracks the files it embeds but not new ones: rebuild when `policies/` changes.

fn main() {
    println!("cargo::rerun-if-changed=../../policies");
}
