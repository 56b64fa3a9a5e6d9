//! AFL++ entry point of [`xgate_fuzz::audit_export`] (built by `run.sh` with `cargo afl build`).
fn main() {
    afl::fuzz!(|data: &[u8]| xgate_fuzz::audit_export(data));
}
