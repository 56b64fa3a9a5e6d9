//! AFL++ entry point of [`xgate_fuzz::mapping`] (built by `run.sh` with `cargo afl build`).
fn main() {
    afl::fuzz!(|data: &[u8]| xgate_fuzz::mapping(data));
}
