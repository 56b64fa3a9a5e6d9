//! Policies tests write beside the repository's data files
//! ([`crate::TestEnv::write_policy_set`]): small grants one fixture department can serve.

/// The provident fund may read driving licences for general approval.
pub const PF_LICENCES: &str = r#"
@id("pf-licences")
permit (
    principal == Requester::"provident-fund-bozhou",
    action == Action::"read",
    resource in RecordType::"driving_licence"
)
when { context.purpose == "GENERAL-APPROVAL" };
"#;

/// [`PF_LICENCES`] metered: `quota` licences per requester and day.
pub fn pf_licences_with_quota(quota: u32) -> String {
    PF_LICENCES
        .replace("pf-licences", "pf-licences-metered")
        .replacen("@id", &format!("@daily_quota(\"{quota}\")\n@id"), 1)
}
