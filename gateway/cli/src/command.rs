//! The `xgate` command itself: its arguments and the dispatch to the
//! subcommands. In the library rather than in `main.rs`: a release build
//! compiles the async code a binary drives (the futures `block_on` polls)
//! into the binary's own crate again, so a `main.rs` that awaited the
//! subcommands doubled their build time; now `main.rs` only calls [`main`].

use std::path::PathBuf;
use std::process::ExitCode;

use crate as cli;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "xgate",
    version,
    about = "Inter-departmental data-sharing exchange gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Configuration file (TOML).
        #[arg(long, env = "XGATE_CONFIG")]
        config: PathBuf,
    },
    /// Fetch records about a subject, as an approval system would.
    Fetch(cli::fetch::FetchArgs),
    /// List the record types the gateway knows and which have a source.
    Types(cli::fetch::TypesArgs),
    /// Development PKI.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Onboard a department adapter: conformance check, register,
    /// deregister, list.
    Adapter {
        #[command(subcommand)]
        command: cli::adapter::AdapterCommand,
    },
    /// The audit log: query, verify, subject access report, export.
    Audit {
        #[command(subcommand)]
        command: cli::audit::AuditCommand,
    },
    /// Run the whole exchange locally: dev PKI, seeded databases, adapters,
    /// gateway, and a fetch of every record type.
    Demo(cli::demo::DemoArgs),
    /// Check, test and explain access policies.
    Policy {
        #[command(subcommand)]
        command: cli::policy::PolicyCommand,
    },
    /// Subject codes (the scannable resident code): an issuer key, a code
    /// as text, terminal QR code and PNG.
    Code {
        #[command(subcommand)]
        command: cli::code::CodeCommand,
    },
    /// A subject's consents: grant, revoke, list (the citizen platform, or
    /// an approval system with the subject's code).
    Consent {
        #[command(subcommand)]
        command: cli::consent::ConsentCommand,
    },
    /// Rate a record type of an answer received (a requester, with the
    /// answer's receipt file).
    Rate(cli::evaluation::RateArgs),
    /// Department scorecards over 7 or 30 days (a department: its own;
    /// auditors and admins: all).
    Scorecard(cli::evaluation::ScorecardArgs),
    /// Objections against released records: file, list, watch (the filer);
    /// ack, dispose (the owning department); close (the filer).
    Objection {
        #[command(subcommand)]
        command: cli::evaluation::ObjectionCommand,
    },
    /// The web console: `login` prints a one-time sign-in URL for the
    /// certificate given (auditor, department, admin or requester).
    Console {
        #[command(subcommand)]
        command: cli::console::ConsoleCommand,
    },
    /// Proactive screening: which subjects of a list qualify for a
    /// screening item (yes/no only), as CSV or JSON lines, resumable.
    Screen(cli::screen::ScreenArgs),
    /// Gateway replicas sharing one database: policy sets, heartbeats,
    /// audit chain heads.
    Cluster {
        #[command(subcommand)]
        command: cli::cluster::ClusterCommand,
    },
}

#[derive(Subcommand, Debug)]
enum CertsCommand {
    /// Create a development CA and certificates for the gateway, the demo
    /// requesters, every catalog department, an operator and an auditor.
    Init {
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue one certificate from the development CA (e.g. a new
    /// department's adapter certificate).
    Issue(cli::certs::IssueArgs),
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config } => {
            let config = xgate::config::Config::load(&config)?;
            let tracer = xgate::telemetry::init_tracing(
                tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
                config.telemetry.otlp_endpoint().as_deref(),
            )?;
            let shutdown = xgate::server::shutdown_signal_armed()?;
            let gateway = xgate::server::start(&config).await?;
            // The line launchers wait for; logs go to stderr.
            crate::outln!("listening on {}", gateway.addr)?;
            shutdown.await;
            tracing::info!("shutting down");
            let stopped = gateway.stop().await;
            // Flushes spans not yet exported.
            if let Err(e) = tracer.shutdown() {
                tracing::debug!(error = %e, "tracer shutdown");
            }
            stopped
        }
        Command::Fetch(args) => cli::fetch::run(args).await,
        Command::Types(args) => cli::fetch::types(args).await,
        Command::Audit { command } => cli::audit::run(command).await,
        Command::Certs {
            command: CertsCommand::Init { out },
        } => {
            let catalog = xgate_catalog::Catalog::builtin()?;
            let identities = cli::certs::demo_identities(&catalog);
            let pki = xgate_tls::devpki::init(&out, &identities)?;
            crate::outln!(
                "development CA and {} certificates written to {}",
                identities.len(),
                pki.dir.display()
            )?;
            for id in &identities {
                crate::outln!("  {id:<48} {}.pem", id.file_stem())?;
            }
            Ok(())
        }
        Command::Certs {
            command: CertsCommand::Issue(args),
        } => {
            let catalog = xgate_catalog::Catalog::builtin()?;
            let files = cli::certs::issue(&args, &catalog)?;
            crate::outln!("certificate: {}", files.cert.display())?;
            crate::outln!("key:         {}", files.key.display())?;
            crate::outln!("CA:          {}", files.ca.display())?;
            Ok(())
        }
        Command::Adapter { command } => cli::adapter::run(command).await,
        Command::Policy { command } => cli::policy::run(command),
        Command::Cluster { command } => cli::cluster::run(command).await,
        Command::Console { command } => cli::console::run(command).await,
        Command::Screen(args) => cli::screen::run(args).await,
        Command::Code { command } => cli::code::run(command),
        Command::Consent { command } => cli::consent::run(command).await,
        Command::Rate(args) => cli::evaluation::rate(args).await,
        Command::Scorecard(args) => cli::evaluation::scorecard(args).await,
        Command::Objection { command } => cli::evaluation::run(command).await,
        Command::Demo(args) => {
            let logs = args.workdir.join("logs");
            std::fs::create_dir_all(&logs)?;
            let log = std::fs::File::create(logs.join("gateway.log"))?;
            let _tracer = xgate::telemetry::init_tracing(
                tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(log)),
                xgate_proto::telemetry::endpoint_from_env().as_deref(),
            )?;
            cli::demo::run(args).await
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Parses the command line, runs the command on a multi-threaded runtime
/// and maps the outcome to the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("xgate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // `xgate fetch ... | head`: the reader left; not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// The help of `--cert` under `path` (subcommand names).
    fn cert_help(path: &[&str]) -> String {
        let mut command = Cli::command();
        command.build();
        let mut sub = &command;
        for name in path {
            sub = sub
                .find_subcommand(name)
                .unwrap_or_else(|| panic!("no subcommand `{name}`"));
        }
        sub.get_arguments()
            .find(|a| a.get_id() == "cert")
            .and_then(|a| a.get_help())
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn each_command_says_which_certificate_it_needs() {
        assert!(cert_help(&["fetch"]).contains("xgate://requester/"));
        for (path, wants) in [
            (&["adapter", "register"][..], "xgate://department/"),
            (&["adapter", "deregister"][..], "xgate://admin/"),
            (&["adapter", "list"][..], "xgate://admin/"),
            (&["types"][..], "any identity"),
        ] {
            let help = cert_help(path);
            assert!(help.contains(wants), "{path:?}: {help}");
            assert!(
                !help.contains("to fetch"),
                "{path:?} copies fetch's help: {help}"
            );
        }
    }
}
