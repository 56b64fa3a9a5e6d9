//! `explain`: why one request was allowed or denied, policy by policy.

use std::fmt;

use cedar_policy::{EntityId, EntityUid, Request};

use crate::{AccessRequest, Decision, PolicySet, entities};

/// The decision on one request and the facts behind it, one line each.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// What [`PolicySet::decide`] answers.
    pub decision: Decision,
    /// Human-readable findings, in the order they were checked.
    pub lines: Vec<String>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            writeln!(f, "{line}")?;
        }
        let verdict = if self.decision.allowed {
            "ALLOW"
        } else {
            "DENY"
        };
        write!(
            f,
            "decision: {verdict} ({})",
            self.decision.policy_ids.join(", ")
        )?;
        if let Some(quota) = self.decision.daily_quota {
            write!(f, ", daily quota {quota}")?;
        }
        for e in &self.decision.errors {
            write!(f, "\nerror: {e}")?;
        }
        Ok(())
    }
}

impl PolicySet {
    /// Decides `req` and says why: the requester and its groups, the view, the item, and
    /// for every policy that could apply whether it does.
    pub fn explain(&self, req: &AccessRequest<'_>) -> Explanation {
        let decision = self.decide(req);
        let mut lines = Vec::new();
        match self.requester(req.requester) {
            Some(r) if r.groups.is_empty() => {
                lines.push(format!("requester `{}` ({}), in no group", r.id, r.name));
            }
            Some(r) => lines.push(format!(
                "requester `{}` ({}), in groups {}",
                r.id,
                r.name,
                r.groups.join(", ")
            )),
            None => lines.push(format!(
                "requester `{}` is not declared in requesters.toml",
                req.requester
            )),
        }
        match self.purpose(req.purpose) {
            Some(p) => lines.push(format!(
                "purpose `{}`: {} ({})",
                p.code, p.name, p.legal_basis
            )),
            None => lines.push(format!(
                "purpose `{}` is not declared in purposes.toml",
                req.purpose
            )),
        }
        if let Some(code) = req.item {
            match self.check_item(code, req) {
                Ok(()) => lines.push(format!("approval item `{code}` needs this view")),
                Err(e) => lines.push(e),
            }
        }
        let view_id = entities::view_id(req.record_type, req.view);
        let Some(view) = self.views.get(view_id.as_str()) else {
            lines.push(self.unknown_view(req));
            return Explanation { decision, lines };
        };
        if view.not_shared {
            lines.push(format!(
                "record type `{}` is not_shared: never released",
                req.record_type
            ));
            return Explanation { decision, lines };
        }
        let minute = Some(req.now.unix_timestamp().div_euclid(60));
        let candidates = self
            .index
            .policies(req.requester, view.type_index)
            .map(|b| b.policies.policies().collect::<Vec<_>>())
            .unwrap_or_default();
        if candidates.is_empty() {
            lines.push(format!(
                "no policy names this requester (or its groups) together with `{}`",
                req.record_type
            ));
        }
        let principal = EntityUid::from_type_name_and_id(
            self.requester_type.clone(),
            EntityId::new(req.requester),
        );
        let request = crate::context(req, minute).and_then(|c| {
            Request::new(
                principal,
                self.read_action.clone(),
                view.uid.clone(),
                c,
                None,
            )
            .map_err(|e| e.to_string())
        });
        match request {
            Ok(request) => {
                for policy in candidates {
                    let effect = match policy.effect() {
                        cedar_policy::Effect::Permit => "permit",
                        cedar_policy::Effect::Forbid => "forbid",
                    };
                    let applies = cedar_policy::PolicySet::from_policies([policy.clone()])
                        .map(|one| {
                            let response =
                                self.authorizer
                                    .is_authorized(&request, &one, &self.entities);
                            response.diagnostics().reason().next().is_some()
                        })
                        .unwrap_or(false);
                    let id: &str = policy.id().as_ref();
                    lines.push(format!(
                        "{effect} `{id}`: {}",
                        if applies {
                            "applies"
                        } else {
                            "does not apply (its conditions are false for this request)"
                        }
                    ));
                }
            }
            Err(e) => lines.push(format!("cannot build the request: {e}")),
        }
        if !decision.allowed
            && decision
                .policy_ids
                .iter()
                .any(|id| id == crate::DEFAULT_DENY)
        {
            lines.push("no permit policy applies: default deny".to_owned());
        }
        Explanation { decision, lines }
    }
}
