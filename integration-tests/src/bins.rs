//! Locating the binaries under test.
//!
//! `cargo build --workspace --bins && cargo nextest run --workspace` puts the binaries and the
//! test executables in one target folder: tests run as `target/<profile>/deps/<test>-<hash>`,
//! binaries sit in `target/<profile>/`.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The gateway binary.
pub const GATEWAY: &str = "xgate";

/// The adapter binary of `department`, e.g. `xgate-adapter-tax`.
pub fn adapter_name(department: &str) -> String {
    format!("xgate-adapter-{department}")
}

/// The folder the binaries are built into: the test executable's folder, or its parent when
/// that is `deps`.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let dir = exe
        .parent()
        .with_context(|| format!("test executable `{}` has no folder", exe.display()))?;
    Ok(if dir.file_name().is_some_and(|name| name == "deps") {
        dir.parent().unwrap_or(dir).to_path_buf()
    } else {
        dir.to_path_buf()
    })
}

/// The path of binary `name`, or an error naming the command that builds it.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir()?.join(executable(name));
    ensure_file(&path, name)?;
    Ok(path)
}

fn executable(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

fn ensure_file(path: &Path, name: &str) -> anyhow::Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        anyhow::bail!(
            "binary `{name}` not found at `{}`; build the binaries first: \
             `cargo build --workspace --bins` (or `cargo build --bin {name}`)",
            path.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_build_command() {
        let err = binary("xgate-no-such-binary").expect_err("missing binary");
        let message = err.to_string();
        assert!(message.contains("`xgate-no-such-binary`"), "{message}");
        assert!(
            message.contains("cargo build --bin xgate-no-such-binary"),
            "{message}"
        );
    }

    #[test]
    fn binaries_live_above_deps() {
        let dir = bin_dir().expect("bin dir");
        assert_ne!(dir.file_name().and_then(|n| n.to_str()), Some("deps"));
    }

    #[test]
    fn adapter_binaries_are_named_after_the_department() {
        assert_eq!(adapter_name("tax"), "xgate-adapter-tax");
    }
}
