//! `xgate policy check|test|explain`: policy tooling that needs no running gateway.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use xgate_catalog::Catalog;
use xgate_policy::{AccessRequest, PolicySet};

/// `xgate policy ...`.
#[derive(clap::Subcommand, Debug)]
pub enum PolicyCommand {
    /// Validate the policies and data files against the catalog; errors as `file:line:col`.
    Check {
        /// Policy directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Run the declarative cases of `DIR/tests/*.toml`; fails on a mismatch or on a policy
    /// no case exercises.
    Test {
        /// Policy directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Decide one request and say why.
    Explain(ExplainArgs),
}

/// `xgate policy explain`.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// Requester id.
    #[arg(long)]
    pub requester: String,
    /// Record type id (or give `--item`).
    #[arg(long = "type", required_unless_present = "item")]
    pub record_type: Option<String>,
    /// View of the record type.
    #[arg(long, default_value = "full")]
    pub view: String,
    /// Approval item code: explains every entry (or, with `--type`, that one).
    #[arg(long)]
    pub item: Option<String>,
    /// Purpose code.
    #[arg(long)]
    pub purpose: String,
    /// Request time, RFC 3339; default now.
    #[arg(long)]
    pub at: Option<String>,
    /// Decide as for a fetch carrying the subject's verified code (the
    /// explicit request: `context.explicit_request`).
    #[arg(long)]
    pub explicit_request: bool,
    /// Decide as when a consent of the subject on record covers the request
    /// (`context.consent`).
    #[arg(long)]
    pub consent: bool,
    /// Decide as for an applicant acting for the subject in this verified
    /// relation (`context.representation`, e.g. `spouse`).
    #[arg(long, default_value = "")]
    pub representation: String,
    /// Policy directory.
    #[arg(default_value = "policies")]
    pub dir: PathBuf,
}

fn load(dir: &Path) -> anyhow::Result<(Catalog, PolicySet)> {
    let catalog = Catalog::builtin()?;
    match PolicySet::load_dir(dir, &catalog) {
        Ok(set) => Ok((catalog, set)),
        Err(e) => {
            for issue in &e.errors {
                crate::outln!("{issue}")?;
            }
            bail!(
                "{} error{} in {}",
                e.errors.len(),
                if e.errors.len() == 1 { "" } else { "s" },
                dir.display()
            )
        }
    }
}

/// Runs one `xgate policy` command.
pub fn run(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Check { dir } => {
            let (_, set) = load(&dir)?;
            crate::outln!(
                "{}: ok, {} policies, {} purposes, {} items, {} requesters, version {}",
                dir.display(),
                set.policy_ids().len(),
                set.purposes().len(),
                set.items().len(),
                set.requesters().len(),
                set.version()
            )?;
            Ok(())
        }
        PolicyCommand::Test { dir } => test(&dir),
        PolicyCommand::Explain(args) => explain(args),
    }
}

fn test(dir: &Path) -> anyhow::Result<()> {
    let (catalog, set) = load(dir)?;
    let tests = dir.join("tests");
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(&tests).with_context(|| format!("reading {}", tests.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            files.push((path.display().to_string(), text));
        }
    }
    files.sort();
    if files.is_empty() {
        bail!("no `*.toml` case file in {}", tests.display());
    }
    let report = xgate_policy::run_cases(&set, &catalog, &files);
    for failure in &report.failures {
        crate::outln!("FAIL {}: {}", failure.case, failure.message)?;
    }
    for id in &report.uncovered {
        crate::outln!("UNCOVERED policy `{id}`: no case is decided by it")?;
    }
    crate::outln!(
        "{} cases, {} decisions, {} failed, {} policies uncovered",
        report.cases,
        report.decisions,
        report.failures.len(),
        report.uncovered.len()
    )?;
    if !report.passed() {
        bail!("policy tests failed");
    }
    Ok(())
}

fn explain(args: ExplainArgs) -> anyhow::Result<()> {
    let (_, set) = load(&args.dir)?;
    let now = match &args.at {
        Some(at) => OffsetDateTime::parse(at, &Rfc3339).with_context(|| format!("`--at {at}`"))?,
        None => OffsetDateTime::now_utc(),
    };
    let targets: Vec<(String, String)> = match (&args.record_type, &args.item) {
        (Some(t), _) => vec![(t.clone(), args.view.clone())],
        (None, Some(code)) => set
            .item(code)
            .with_context(|| format!("unknown approval item `{code}`"))?
            .entries
            .iter()
            .map(|e| (e.record_type.clone(), e.view.clone()))
            .collect(),
        (None, None) => bail!("give `--type` or `--item`"),
    };
    for (n, (record_type, view)) in targets.iter().enumerate() {
        if n > 0 {
            crate::outln!()?;
        }
        crate::outln!("== {record_type}.{view}")?;
        let explanation = set.explain(&AccessRequest {
            requester: &args.requester,
            record_type,
            view,
            purpose: &args.purpose,
            item: args.item.as_deref(),
            now,
            explicit_request: args.explicit_request,
            consent: args.consent,
            representation: &args.representation,
        });
        crate::outln!("{explanation}")?;
    }
    Ok(())
}
