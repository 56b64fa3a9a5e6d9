//! The benchmark harness works: a tiny `xgate-bench e2e` run (1 s per arm, concurrency 2)
//! drives every arm — direct to the bench adapter, through nginx when it is installed, and
//! through the gateway — over mTLS with zero errors. Counts only: no timing is asserted.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;
use xgate_integration_tests::bins;

fn nginx_installed() -> bool {
    Path::new("/usr/sbin/nginx").is_file()
        || std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join("nginx").is_file()))
}

#[tokio::test]
async fn a_tiny_e2e_run_drives_every_arm_without_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("e2e.json");
    let mut command = Command::new(bins::binary("xgate-bench").expect("xgate-bench binary"));
    command
        .args([
            "e2e",
            "--runs",
            "1",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--concurrency",
            "2",
            "--connections",
            "1",
            "--json",
        ])
        .arg(&json)
        .kill_on_drop(true);
    if !nginx_installed() {
        println!(
            "nginx is not installed: the nginx arm is skipped (integration-tests/load/install-tools.sh)"
        );
    }
    // A hang guard only: the run itself takes a few seconds.
    let output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("xgate-bench finished")
        .expect("xgate-bench ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "xgate-bench failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json report")).expect("json");
    let arms = report["arms"].as_array().expect("arms");
    let names: Vec<&str> = arms.iter().filter_map(|a| a["arm"].as_str()).collect();
    let expected = if nginx_installed() { 3 } else { 2 };
    assert_eq!(arms.len(), expected, "arms: {names:?}\n{stdout}");
    assert!(names.iter().any(|n| n.starts_with("(a)")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("(c)")), "{names:?}");
    for arm in arms {
        let run = &arm["runs"][0];
        assert!(run["operations"].as_u64().expect("operations") > 0, "{arm}");
        assert_eq!(run["errors"].as_u64(), Some(0), "{arm}");
        // Every record of every answer came back OK / FOUND.
        let records = run["record_status"].as_object().expect("record statuses");
        assert!(
            records
                .keys()
                .all(|k| k == "RECORD_STATUS_OK" || k == "LOOKUP_STATUS_FOUND"),
            "{records:?}"
        );
    }
    if let Some(check) = report["h2load"].as_object() {
        assert_eq!(check["adapter_failed"].as_u64(), Some(0), "{check:?}");
        assert!(
            check["adapter_ok"].as_u64().expect("adapter_ok") > 0,
            "{check:?}"
        );
    }
}
