//! Release is a type: outside the audit module no code can turn an unsealed
//! outcome into a wire `RecordResult`, forge a sealed one, or take a
//! release's records out.
//!
//! Each case in `tests/compile-fail/` is compiled by rustc against the
//! gateway library this test was built with (the rlibs beside the test
//! binary), and must fail with the error its first line names. A control
//! case that uses the sealed path correctly must compile, so a broken set-up
//! cannot pass for a refusal. (trybuild would type-check every dependency
//! again in its own target dir: minutes on CI's 2 cores for four files.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The newest `lib<name>-*.rlib` in `deps`: the one this test links.
fn rlib(deps: &Path, name: &str) -> PathBuf {
    let prefix = format!("lib{name}-");
    std::fs::read_dir(deps)
        .expect("deps dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".rlib"))
        })
        .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no {prefix}*.rlib in {}", deps.display()))
}

/// Compiles `case` as a library against the gateway; rustc's stderr on failure.
fn compile(case: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().expect("test binary");
    let deps = exe.parent().expect("deps dir");
    let out = tempfile::tempdir().expect("tempdir");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.args([
        "--edition",
        "2024",
        "--crate-type",
        "lib",
        "--emit",
        "metadata",
    ])
    .arg("--out-dir")
    .arg(out.path())
    .arg(format!("-Ldependency={}", deps.display()));
    // Only the gateway: its dependencies resolve by hash from the deps dir,
    // and the cases reach the wire types through its re-exports.
    cmd.arg("--extern")
        .arg(format!("xgate={}", rlib(deps, "xgate").display()));
    let output = cmd.arg(case).output().expect("run rustc");
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/compile-fail")
        .join(name)
}

#[test]
fn the_sealed_path_compiles() {
    if let Err(stderr) = compile(&case("control_sealed_becomes_a_result.rs")) {
        panic!("the control case must compile:\n{stderr}");
    }
}

#[test]
fn only_sealed_outcomes_become_record_results() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compile-fail");
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).expect("cases").flatten() {
        let path = entry.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("control_") || !name.ends_with(".rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("case");
        // First line: `// error: <text rustc must print>`.
        let expected = source
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// error: "))
            .unwrap_or_else(|| panic!("{name}: first line must be `// error: ...`"));
        match compile(&path) {
            Ok(()) => panic!("{name} compiled, but must not"),
            Err(stderr) => assert!(
                stderr.contains(expected),
                "{name} failed, but not with `{expected}`:\n{stderr}"
            ),
        }
        cases += 1;
    }
    assert!(cases >= 3, "only {cases} compile-fail cases found");
}
