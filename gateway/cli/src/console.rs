//! `xgate console login`: a one-time sign-in URL for the web console, asked
//! for over mutual TLS with the certificate the browser session will act as
//! (auditor, department, admin or requester).

use xgate_proto::v1::SignInRequest;
use xgate_proto::v1::console_client::ConsoleClient;

use crate::ClientTls;

/// `xgate console ...`.
#[derive(clap::Subcommand, Debug)]
pub enum ConsoleCommand {
    /// Print a sign-in URL for the web console: it works once, for a minute,
    /// and the session it opens acts as the certificate given here.
    Login(LoginArgs),
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    #[command(flatten)]
    pub tls: ClientTls,
}

pub async fn run(command: ConsoleCommand) -> anyhow::Result<()> {
    let ConsoleCommand::Login(args) = command;
    let (url, identity, expires_at) = login(&args.tls).await?;
    crate::outln!("{url}")?;
    eprintln!("open it in a browser before {expires_at} (once); you will be {identity}");
    Ok(())
}

/// The sign-in URL, who it signs in, and when it expires.
pub async fn login(tls: &ClientTls) -> anyhow::Result<(String, String, String)> {
    let channel = crate::client::connect(&tls.gateway, &tls.files()).await?;
    let answer = ConsoleClient::new(channel)
        .sign_in(SignInRequest {})
        .await
        .map_err(|s| {
            anyhow::anyhow!(
                "the gateway refused a console sign-in ({:?}): {}",
                s.code(),
                s.message()
            )
        })?
        .into_inner();
    let expires_at = answer
        .expires_at
        .map_or_else(|| "-".to_owned(), |t| t.to_string());
    Ok((answer.url, answer.identity, expires_at))
}
