//! The demo's proactive screening ("services looking for people"): the
//! civil affairs bureau screens every demo citizen for the elderly
//! allowance, the tax bureau every demo company for the small-taxpayer VAT
//! exemption, and the demo checks both answers against the ground truth —
//! the same conditions read straight from the departments' seeded
//! databases, without the gateway, the adapters or the catalog's
//! predicates.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use xgate_proto::v1::{Eligibility, ScreenResult, ScreenRun};
use xgate_tls::{Identity, devpki};

use crate::screen::{Sink, Start, Summary};

/// The benefits office and the tax bureau of the demo.
pub const ELDERLY_SCREENER: &str = "civil-affairs-bozhou";
pub const EXEMPTION_SCREENER: &str = "tax-bureau-bozhou";
const ELDERLY: &str = "ELDERLY-ALLOWANCE";
const EXEMPTION: &str = "SMALL-TAXPAYER-EXEMPTION";

/// One item's run and its check.
pub(super) struct ItemRun {
    pub item: &'static str,
    pub requester: &'static str,
    pub subjects: usize,
    pub summary: Summary,
    /// Eligible subjects, as the gateway answered.
    pub eligible: BTreeSet<String>,
    /// Eligible subjects, from the departments' databases.
    pub truth: BTreeSet<String>,
    pub elapsed: Duration,
}

impl ItemRun {
    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "item": self.item,
            "requester": self.requester,
            "run": self.summary.run_id,
            "subjects": self.subjects,
            "eligible": self.summary.eligible,
            "not_eligible": self.summary.not_eligible,
            "unknown": self.summary.unknown,
            "ground_truth": self.truth.len(),
            "matches_ground_truth": self.eligible == self.truth,
            "examples": self.eligible.iter().take(3).collect::<Vec<_>>(),
            "elapsed_ms": self.elapsed.as_millis(),
        })
    }

    pub(super) fn print(&self) -> std::io::Result<()> {
        let rate = self.subjects as f64 / self.elapsed.as_secs_f64().max(1e-3);
        crate::outln!(
            "{} screened {} subjects for {} in {:.2} s ({rate:.0}/s): {} eligible, {} not eligible, {} unknown — ground truth from the departments' databases: {} eligible, {}",
            self.requester,
            self.subjects,
            self.item,
            self.elapsed.as_secs_f64(),
            self.summary.eligible,
            self.summary.not_eligible,
            self.summary.unknown,
            self.truth.len(),
            if self.eligible == self.truth {
                "the same subjects"
            } else {
                "DIFFERENT subjects"
            }
        )?;
        let examples: Vec<&str> = self.eligible.iter().take(3).map(String::as_str).collect();
        crate::outln!("  for example: {}", examples.join(", "))
    }
}

/// Collects the eligible subjects of a run.
struct Eligible<'a> {
    subjects: &'a [String],
    eligible: BTreeSet<String>,
}

impl Sink for Eligible<'_> {
    fn header(&mut self, _run: &ScreenRun) -> anyhow::Result<()> {
        Ok(())
    }

    fn result(&mut self, r: &ScreenResult) -> anyhow::Result<()> {
        if r.eligibility() == Eligibility::Eligible
            && let Some(id) = usize::try_from(r.seq)
                .ok()
                .and_then(|i| self.subjects.get(i))
        {
            self.eligible.insert(id.clone());
        }
        Ok(())
    }
}

async fn screen_item(
    url: &str,
    pki: &devpki::DevPki,
    requester: &'static str,
    item: &'static str,
    subjects: &[String],
    truth: BTreeSet<String>,
) -> anyhow::Result<ItemRun> {
    let tls = pki.files(&Identity::Requester(requester.into()));
    let mut sink = Eligible {
        subjects,
        eligible: BTreeSet::new(),
    };
    let started = Instant::now();
    let summary = crate::screen::screen(url, &tls, Start::New(item), subjects, &mut sink).await?;
    Ok(ItemRun {
        item,
        requester,
        subjects: subjects.len(),
        summary,
        eligible: sink.eligible,
        truth,
        elapsed: started.elapsed(),
    })
}

/// Both runs, each checked against the ground truth (an error when the
/// gateway's answer differs from it).
pub(super) async fn run(
    url: &str,
    pki: &devpki::DevPki,
    work: &Path,
) -> anyhow::Result<(ItemRun, ItemRun)> {
    let population = xgate_synth::Population::generate(
        xgate_synth::DEFAULT_CITIZENS,
        xgate_synth::DEFAULT_COMPANIES,
    );
    let citizens: Vec<String> = population
        .citizens
        .iter()
        .map(|c| c.id_number.clone())
        .collect();
    let companies: Vec<String> = population
        .companies
        .iter()
        .map(|c| c.uscc.clone())
        .collect();
    let data = work.join("data");
    let (elderly_truth, exemption_truth) =
        tokio::try_join!(elderly_truth(&data), exemption_truth(&data))?;
    let (elderly, exemption) = tokio::try_join!(
        screen_item(
            url,
            pki,
            ELDERLY_SCREENER,
            ELDERLY,
            &citizens,
            elderly_truth
        ),
        screen_item(
            url,
            pki,
            EXEMPTION_SCREENER,
            EXEMPTION,
            &companies,
            exemption_truth
        ),
    )?;
    for run in [&elderly, &exemption] {
        anyhow::ensure!(
            run.eligible == run.truth,
            "screening for {} disagrees with the departments' data: the gateway found {:?}, the databases {:?}",
            run.item,
            run.eligible.difference(&run.truth).collect::<Vec<_>>(),
            run.truth.difference(&run.eligible).collect::<Vec<_>>()
        );
    }
    Ok((elderly, exemption))
}

async fn open(data: &Path, department: &str) -> anyhow::Result<SqlitePool> {
    let path = data.join(format!("{department}.db"));
    let options = SqliteConnectOptions::new().filename(&path).read_only(true);
    SqlitePool::connect_with(options)
        .await
        .with_context(|| format!("opening `{}`", path.display()))
}

async fn ids(
    pool: &SqlitePool,
    sql: &'static str,
    bind: Option<&str>,
) -> anyhow::Result<BTreeSet<String>> {
    let mut query = sqlx::query_scalar::<_, String>(sql);
    if let Some(value) = bind {
        query = query.bind(value.to_owned());
    }
    Ok(query.fetch_all(pool).await?.into_iter().collect())
}

/// Today in China Standard Time, as the gateway's predicates see it.
fn today() -> time::Date {
    time::OffsetDateTime::now_utc()
        .to_offset(xgate::fetch::LOCAL_OFFSET)
        .date()
}

/// Registered in Bozhou, 60 or older, no pension being paid.
async fn elderly_truth(data: &Path) -> anyhow::Result<BTreeSet<String>> {
    let police = open(data, "public-security").await?;
    let social = open(data, "human-resources-social-security").await?;
    let registered = ids(
        &police,
        "SELECT id_number FROM household_registration
         WHERE status = 'active' AND instr(registered_address, '亳州市') > 0",
        None,
    )
    .await?;
    let today = today();
    let born: Vec<(String, String)> =
        sqlx::query_as("SELECT id_number, birth_date FROM resident_identity_card")
            .fetch_all(&police)
            .await?;
    let old: BTreeSet<String> = born
        .into_iter()
        .filter(|(_, birth)| {
            time::Date::parse(
                birth,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .is_ok_and(|b| {
                let mut years = today.year() - b.year();
                if (u8::from(today.month()), today.day()) < (u8::from(b.month()), b.day()) {
                    years -= 1;
                }
                years >= 60
            })
        })
        .map(|(id, _)| id)
        .collect();
    let pensioned = ids(
        &social,
        "SELECT id_number FROM pension_entitlement WHERE status = 'paying'",
        None,
    )
    .await?;
    Ok(registered
        .intersection(&old)
        .filter(|id| !pensioned.contains(*id))
        .cloned()
        .collect())
}

/// A small-scale taxpayer in normal standing, with a licence in business
/// and in term, and no enforcement case in progress.
async fn exemption_truth(data: &Path) -> anyhow::Result<BTreeSet<String>> {
    let tax = open(data, "tax").await?;
    let market = open(data, "market-regulation").await?;
    let court = open(data, "court").await?;
    let small = ids(
        &tax,
        "SELECT uscc FROM tax_registration WHERE taxpayer_type = 'small_scale' AND status = 'normal'",
        None,
    )
    .await?;
    let today = today().to_string();
    let licensed = ids(
        &market,
        "SELECT uscc FROM business_licence WHERE status = 'in_business'
         AND (business_term_until IS NULL OR business_term_until >= $1)",
        Some(&today),
    )
    .await?;
    let enforced = ids(
        &court,
        "SELECT uscc FROM enforcement_case_record WHERE status = 'in_progress'",
        None,
    )
    .await?;
    Ok(small
        .intersection(&licensed)
        .filter(|id| !enforced.contains(*id))
        .cloned()
        .collect())
}
