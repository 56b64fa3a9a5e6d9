//! `xgate-adapter-sql`: serves one department's record types from a
//! relational database described by a mapping file; `check` validates the
//! mapping. The command is [`xgate_adapter_sql::cli`].

fn main() -> std::process::ExitCode {
    xgate_adapter_sql::cli::main()
}
