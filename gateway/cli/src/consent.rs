//! `xgate consent grant|revoke|list`: the subject's consents, as the citizen
//! platform (`--cert` of `xgate://platform/<id>`, naming `--subject`) or as
//! an approval system (`--cert` of `xgate://requester/<id>`, with the
//! subject's `--code`) records and reads them.

use anyhow::Context as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use xgate_proto::v1::consent_client::ConsentClient;
use xgate_proto::v1::{
    ConsentRecord, GrantConsentRequest, ListConsentsRequest, RevokeConsentRequest, Subject,
};

use crate::ClientTls;

/// `xgate consent ...`.
#[derive(clap::Subcommand, Debug)]
pub enum ConsentCommand {
    /// Record a consent.
    Grant(GrantArgs),
    /// Revoke a consent by id.
    Revoke {
        #[command(flatten)]
        tls: ClientTls,
        #[arg(long)]
        id: String,
        /// An approval system: a fresh code of the consent's subject.
        #[arg(long)]
        code: Option<String>,
    },
    /// List a subject's consents.
    List {
        #[command(flatten)]
        tls: ClientTls,
        #[command(flatten)]
        who: Who,
    },
}

/// The subject: the platform names it, an approval system shows its code.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct Who {
    /// The subject's ID number (the citizen platform).
    #[arg(long)]
    pub subject: Option<String>,
    /// A fresh subject code (an approval system); spent.
    #[arg(long)]
    pub code: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct GrantArgs {
    #[command(flatten)]
    pub tls: ClientTls,
    #[command(flatten)]
    pub who: Who,
    /// Requester id or `group:<id>`; an approval system: itself (omit).
    #[arg(long, default_value = "")]
    pub grantee: String,
    /// Purpose code.
    #[arg(long)]
    pub purpose: String,
    /// Record types, comma separated (or give `--item`).
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Approval item code.
    #[arg(long, default_value = "")]
    pub item: String,
    /// Until when, RFC 3339 (at most a year ahead).
    #[arg(long)]
    pub until: String,
    /// The citizen platform: the signed consent form's reference.
    #[arg(long, default_value = "")]
    pub evidence: String,
}

fn subject(id: &str) -> Subject {
    Subject {
        kind: xgate_proto::kind::to_proto(crate::fetch::guess_kind(id)) as i32,
        id: id.to_owned(),
    }
}

fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!(
        "the gateway refused ({:?}): {}",
        status.code(),
        status.message()
    )
}

pub async fn run(command: ConsentCommand) -> anyhow::Result<()> {
    let connect = async |tls: &ClientTls| -> anyhow::Result<_> {
        Ok(ConsentClient::new(
            crate::client::connect(&tls.gateway, &tls.files()).await?,
        ))
    };
    match command {
        ConsentCommand::Grant(args) => {
            let until = OffsetDateTime::parse(&args.until, &Rfc3339)
                .with_context(|| format!("--until `{}` is not RFC 3339", args.until))?;
            let record = connect(&args.tls)
                .await?
                .grant(GrantConsentRequest {
                    subject_code: args.who.code.unwrap_or_default(),
                    subject: args.who.subject.as_deref().map(subject),
                    grantee: args.grantee,
                    purpose: args.purpose,
                    record_types: args.types,
                    approval_item: args.item,
                    valid_until: Some(std::time::SystemTime::from(until).into()),
                    evidence_ref: args.evidence,
                })
                .await
                .map_err(refused)?
                .into_inner();
            print(&record)
        }
        ConsentCommand::Revoke { tls, id, code } => {
            let record = connect(&tls)
                .await?
                .revoke(RevokeConsentRequest {
                    id,
                    subject_code: code.unwrap_or_default(),
                })
                .await
                .map_err(refused)?
                .into_inner();
            print(&record)
        }
        ConsentCommand::List { tls, who } => {
            let consents = connect(&tls)
                .await?
                .list(ListConsentsRequest {
                    subject_code: who.code.unwrap_or_default(),
                    subject: who.subject.as_deref().map(subject),
                })
                .await
                .map_err(refused)?
                .into_inner()
                .consents;
            if consents.is_empty() {
                crate::outln!("no consent on record")?;
            }
            for c in &consents {
                print(c)?;
            }
            Ok(())
        }
    }
}

fn print(c: &ConsentRecord) -> anyhow::Result<()> {
    let at =
        |t: Option<&prost_types::Timestamp>| t.map_or_else(|| "-".to_owned(), ToString::to_string);
    crate::outln!("{}", c.id)?;
    crate::outln!("  grantee:    {}", c.grantee)?;
    crate::outln!("  purpose:    {}", c.purpose)?;
    let item = if c.approval_item.is_empty() {
        String::new()
    } else {
        format!(" (item {})", c.approval_item)
    };
    crate::outln!("  types:      {}{item}", c.record_types.join(", "))?;
    crate::outln!(
        "  valid:      {} .. {}{}",
        at(c.granted_at.as_ref()),
        at(c.valid_until.as_ref()),
        c.revoked_at
            .as_ref()
            .map_or_else(String::new, |r| format!("   REVOKED {r}"))
    )?;
    crate::outln!("  evidence:   {}   by {}", c.evidence, c.granted_by)?;
    Ok(())
}
