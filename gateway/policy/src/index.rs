//! Which policies a decision evaluates. Cedar evaluates every policy of the set it is
//! given; here each (requester, record type) pair gets only the policies that could apply
//! to it (by [`crate::shape::possible_ids`]), so a decision's cost does not grow with the
//! policies of other requesters and other record types. Leaving out a policy that cannot
//! apply changes no decision.

use std::collections::{BTreeSet, HashMap};

use cedar_policy::PolicySet;

/// A validated policy and the requests it is limited to.
pub(crate) struct Scoped {
    pub(crate) policy: cedar_policy::Policy,
    /// Requester ids it can apply to; `None`: any.
    pub(crate) requesters: Option<BTreeSet<String>>,
    /// Record type ids it can apply to; `None`: any.
    pub(crate) record_types: Option<BTreeSet<String>>,
    /// Whether it reads the request time (`context.now`, `context.local_time`).
    pub(crate) reads_time: bool,
}

/// The policies for one (requester, record type) pair.
pub(crate) struct Bucket {
    pub(crate) policies: PolicySet,
    /// Whether any of them reads the request time, so decisions vary by the minute.
    pub(crate) reads_time: bool,
}

impl Scoped {
    fn applies_to(&self, requester: Option<&str>, record_type: &str) -> bool {
        let requester_ok = match (&self.requesters, requester) {
            (None, _) => true,
            (Some(ids), Some(requester)) => ids.contains(requester),
            (Some(_), None) => false,
        };
        requester_ok
            && self
                .record_types
                .as_ref()
                .is_none_or(|ids| ids.contains(record_type))
    }
}

/// The policy subsets, per requester and per record type (by catalog position).
pub(crate) struct PolicyIndex {
    /// For requesters no policy names.
    others: Vec<Bucket>,
    named: HashMap<Box<str>, Vec<Bucket>>,
}

impl PolicyIndex {
    /// `record_types`: the catalog's record type ids, in the order decisions index them.
    pub(crate) fn build(scoped: &[Scoped], record_types: &[&str]) -> Result<PolicyIndex, String> {
        let requesters: BTreeSet<&str> = scoped
            .iter()
            .filter_map(|s| s.requesters.as_ref())
            .flatten()
            .map(String::as_str)
            .collect();
        let buckets = |requester: Option<&str>| -> Result<Vec<Bucket>, String> {
            record_types
                .iter()
                .map(|record_type| {
                    let applying: Vec<&Scoped> = scoped
                        .iter()
                        .filter(|s| s.applies_to(requester, record_type))
                        .collect();
                    let policies =
                        PolicySet::from_policies(applying.iter().map(|s| s.policy.clone()))
                            .map_err(|e| format!("cannot index the policies: {e}"))?;
                    Ok(Bucket {
                        policies,
                        reads_time: applying.iter().any(|s| s.reads_time),
                    })
                })
                .collect()
        };
        let mut named = HashMap::with_capacity(requesters.len());
        for requester in requesters {
            named.insert(requester.into(), buckets(Some(requester))?);
        }
        Ok(PolicyIndex {
            others: buckets(None)?,
            named,
        })
    }

    /// The policies that could apply to `requester` reading the record type at
    /// `record_type` (its catalog position).
    pub(crate) fn policies(&self, requester: &str, record_type: usize) -> Option<&Bucket> {
        self.named
            .get(requester)
            .unwrap_or(&self.others)
            .get(record_type)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn scoped(id: &str, requesters: Option<&[&str]>, record_types: Option<&[&str]>) -> Scoped {
        let set = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect();
        Scoped {
            policy: cedar_policy::Policy::from_str("permit(principal, action, resource);")
                .unwrap()
                .new_id(cedar_policy::PolicyId::new(id)),
            requesters: requesters.map(set),
            record_types: record_types.map(set),
            reads_time: false,
        }
    }

    fn ids(index: &PolicyIndex, requester: &str, record_type: usize) -> Vec<String> {
        let mut ids: Vec<String> = index
            .policies(requester, record_type)
            .unwrap()
            .policies
            .policies()
            .map(|p| p.id().to_string())
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn each_pair_gets_the_policies_that_could_apply() {
        let index = PolicyIndex::build(
            &[
                scoped("hall", Some(&["hall"]), None),
                scoped("fund", Some(&["fund"]), Some(&["a", "b"])),
                scoped("guard", None, Some(&["b"])),
                scoped("everyone", None, None),
            ],
            &["a", "b", "c"],
        )
        .unwrap();
        assert_eq!(ids(&index, "hall", 0), ["everyone", "hall"]);
        assert_eq!(ids(&index, "hall", 1), ["everyone", "guard", "hall"]);
        assert_eq!(ids(&index, "fund", 1), ["everyone", "fund", "guard"]);
        assert_eq!(ids(&index, "fund", 2), ["everyone"]);
        assert_eq!(ids(&index, "stranger", 1), ["everyone", "guard"]);
        assert!(index.policies("hall", 3).is_none());
    }
}
