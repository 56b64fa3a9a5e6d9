//! AFL++ entry point of [`xgate_fuzz::ids`] (built by `run.sh` with `cargo afl build`).
fn main() {
    afl::fuzz!(|data: &[u8]| xgate_fuzz::ids(data));
}
