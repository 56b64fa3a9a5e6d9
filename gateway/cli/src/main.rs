//! The `xgate` binary: gateway server, client, dev PKI and demo. Everything
//! is in the library ([`xgate_cli::command`]); this file only chooses the
//! allocator.

// mimalloc instead of glibc malloc: under load glibc's arena locks and
// consolidation took ~20 % of the gateway's CPU (BENCHMARKS.md, issue 5).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    xgate_cli::command::main()
}
