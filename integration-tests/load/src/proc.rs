//! Resident memory of a process, as the kernel reports it.

use anyhow::Context as _;

/// `VmRSS` of process `pid`, in bytes.
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading `{path}`"))?;
    parse_vm_rss(&text).with_context(|| format!("no VmRSS line in `{path}`"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_kib() {
        let status = "Name:\txgate\nVmPeak:\t  90000 kB\nVmRSS:\t   40960 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(40960 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn own_process_has_a_resident_size() {
        let rss = rss_bytes(std::process::id()).expect("own rss");
        assert!(rss > 0);
    }
}
