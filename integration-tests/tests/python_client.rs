//! A client in another language: `examples/python/xgate_client.py` (grpcio,
//! stubs generated from `proto/` at run time) against `xgate demo
//! --ready-file`, as its README tells a new user to run it. Skipped, saying
//! why, where there is no python3 with the venv module.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::process::Command;
use xgate_integration_tests::bins;
use xgate_integration_tests::process::log_tail;

/// The demo seeds 20 databases and makes its own fetches before it is ready.
const DEMO_READY_TIMEOUT: Duration = Duration::from_secs(240);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/python")
}

/// Whether `python3 ARGS` runs and exits 0.
async fn python3_runs(args: &[&str]) -> bool {
    Command::new("python3")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// The example's venv (`examples/python/setup.sh`, which `.ci/run` runs
/// first), or `None` with the reason to skip.
async fn python_venv() -> anyhow::Result<Option<PathBuf>> {
    if !python3_runs(&["--version"]).await {
        eprintln!("SKIPPED: no python3 on PATH; the Python client example is not tested");
        return Ok(None);
    }
    if !python3_runs(&["-m", "venv", "--help"]).await {
        eprintln!(
            "SKIPPED: python3 has no venv module (Debian: apt-get install python3-venv); \
             the Python client example is not tested"
        );
        return Ok(None);
    }
    let dir = example_dir();
    let output = Command::new("bash")
        .arg(dir.join("setup.sh"))
        .stdin(Stdio::null())
        .output()
        .await
        .context("running examples/python/setup.sh")?;
    anyhow::ensure!(
        output.status.success(),
        "examples/python/setup.sh failed (pip needs PyPI):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(Some(dir.join(".venv/bin/python")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_client_runs_against_the_demo() -> anyhow::Result<()> {
    let Some(python) = python_venv().await? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let ready = dir.path().join("ready.json");
    let demo_out = dir.path().join("demo.out");
    let demo_err = dir.path().join("demo.err");
    let mut demo = Command::new(bins::binary(bins::GATEWAY)?)
        .arg("demo")
        .arg("--workdir")
        .arg(dir.path().join("demo"))
        .arg("--ready-file")
        .arg(&ready)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&demo_out)?)
        .stderr(std::fs::File::create(&demo_err)?)
        .kill_on_drop(true)
        .spawn()
        .context("starting `xgate demo`")?;
    let demo_logs = || format!("demo stderr:\n{}", log_tail(&demo_err));

    let started = Instant::now();
    while !ready.exists() {
        if let Some(status) = demo.try_wait()? {
            panic!(
                "`xgate demo` exited with {status} before it was ready\n{}",
                demo_logs()
            );
        }
        assert!(
            started.elapsed() < DEMO_READY_TIMEOUT,
            "no ready file within {} s\n{}",
            DEMO_READY_TIMEOUT.as_secs(),
            demo_logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&ready)?)?;
    assert!(
        doc["gateway"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:"),
        "{doc}"
    );

    let client = tokio::time::timeout(
        CLIENT_TIMEOUT,
        Command::new(&python)
            .arg(example_dir().join("xgate_client.py"))
            .arg("--ready")
            .arg(&ready)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .context("the Python client did not finish in time")??;
    let stdout = String::from_utf8_lossy(&client.stdout);
    let stderr = String::from_utf8_lossy(&client.stderr);
    let context = || format!("stdout:\n{stdout}\nstderr:\n{stderr}\n{}", demo_logs());
    assert!(client.status.success(), "{}", context());
    for expected in [
        "1. Fetch by record types",
        "real_estate_title: RECORD_STATUS_OK",
        "Struct numbers arrive as float",
        "violation subject.id: check character",
        "violation record_types[1]: unknown record type `no_such_record`",
        "real_estate_title.summary: RECORD_STATUS_OK",
        "python client: every check passed",
    ] {
        assert!(
            stdout.contains(expected),
            "`{expected}` missing\n{}",
            context()
        );
    }

    // SIGTERM stops the demo (and its adapters) cleanly; the ready file goes.
    let pid = demo.id().context("the demo has exited")?;
    let kill = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await?;
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(30), demo.wait())
        .await
        .context("the demo did not stop within 30 s of SIGTERM")??;
    assert!(status.success(), "demo exit {status}\n{}", demo_logs());
    assert!(!ready.exists(), "the ready file outlived the demo");
    Ok(())
}
