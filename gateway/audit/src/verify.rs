//! Verification: every chain of a store (or of an export) leaf by leaf,
//! its stored tree hashes, its checkpoints and their signatures; a chain
//! against a checkpoint held outside the store; receipts; proofs.
//!
//! Per entry the walk hashes the leaf data once, pushes the leaf through a
//! frontier (one node hash per entry on average) and checks the structure
//! of the encoding without building strings — what keeps it at millions of
//! decisions per second. Trust: the caller names the public keys
//! ([`PublicKeys`]); every checkpoint must be signed by one of them.

use std::collections::BTreeMap;
use std::io::BufRead;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::Stream;
use serde::{Deserialize, Serialize};

use crate::AuditError;
use crate::entry::{Entry, hex32};
use crate::keys::{PublicKey, PublicKeys};
use crate::merkle::{
    self, Frontier, Hash, consistency_subtrees, inclusion_subtrees, leaf_hash, verify_inclusion,
};
use crate::note::SignedCheckpoint;
use crate::receipt::Receipt;
use crate::store::{ChainHead, Store, StoredCheckpoint};

/// Entries read per page when verifying or exporting.
const PAGE: usize = 10_000;

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bad {
    pub chain: String,
    pub index: u64,
    pub why: String,
}

/// What verification found about one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    pub instance: String,
    pub entries: u64,
    pub decisions: u64,
    /// Root of the entries read (hex).
    pub root: String,
    pub checkpoints: u64,
    pub checkpoints_verified: u64,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub chains: Vec<ChainReport>,
    pub first_bad: Option<Bad>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }

    pub fn entries(&self) -> u64 {
        self.chains.iter().map(|c| c.entries).sum()
    }

    pub fn decisions(&self) -> u64 {
        self.chains.iter().map(|c| c.decisions).sum()
    }

    pub fn checkpoints_verified(&self) -> u64 {
        self.chains.iter().map(|c| c.checkpoints_verified).sum()
    }
}

impl std::fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let checkpoints: u64 = self.chains.iter().map(|c| c.checkpoints).sum();
        match &self.first_bad {
            None => write!(
                f,
                "audit log OK: {} chain{}, {} entries ({} decisions), every tree intact, {} of {} checkpoints verified",
                self.chains.len(),
                if self.chains.len() == 1 { "" } else { "s" },
                self.entries(),
                self.decisions(),
                self.checkpoints_verified(),
                checkpoints
            ),
            Some(b) => write!(
                f,
                "audit log BROKEN in chain `{}` at entry {}: {} ({} chain{}, {} entries read)",
                b.chain,
                b.index,
                b.why,
                self.chains.len(),
                if self.chains.len() == 1 { "" } else { "s" },
                self.entries()
            ),
        }
    }
}

/// A checkpoint as the walk uses it.
#[derive(Debug, Clone)]
struct Cp {
    id: String,
    size: u64,
    root: Hash,
    note: String,
}

impl From<&StoredCheckpoint> for Cp {
    fn from(c: &StoredCheckpoint) -> Cp {
        Cp {
            id: format!("#{}", c.id),
            size: c.size,
            root: c.root,
            note: c.note.clone(),
        }
    }
}

/// Incremental verifier of one chain: feed leaves in index order, then
/// [`ChainCheck::finish`].
struct ChainCheck {
    instance: String,
    frontier: Frontier,
    entries: u64,
    decisions: u64,
    checkpoints: Vec<Cp>,
    /// Roots computed at the sizes checkpoints (or a trusted head) name.
    roots: BTreeMap<u64, Option<Hash>>,
    bad: Option<(u64, String)>,
}

impl ChainCheck {
    fn new(instance: &str, checkpoints: Vec<Cp>, extra_sizes: &[u64]) -> ChainCheck {
        let mut roots: BTreeMap<u64, Option<Hash>> = checkpoints
            .iter()
            .map(|c| c.size)
            .chain(extra_sizes.iter().copied())
            .map(|s| (s, None))
            .collect();
        if let Some(slot) = roots.get_mut(&0) {
            *slot = Some(merkle::empty_root());
        }
        ChainCheck {
            instance: instance.to_owned(),
            frontier: Frontier::new(),
            entries: 0,
            decisions: 0,
            checkpoints,
            roots,
            bad: None,
        }
    }

    fn bad(&mut self, index: u64, why: String) {
        if self.bad.is_none() {
            self.bad = Some((index, why));
        }
    }

    /// Entries verified good so far (the prefix before the first bad one).
    fn good(&self) -> u64 {
        self.frontier.size()
    }

    fn push(&mut self, index: u64, data: &[u8], stored_nodes: Option<&[u8]>) {
        self.entries += 1;
        if self.bad.is_some() {
            return;
        }
        let expected = self.frontier.size();
        if index != expected {
            if index > expected {
                self.bad(
                    expected,
                    format!("missing (deleted): the next entry present is {index}"),
                );
            } else {
                self.bad(
                    index,
                    format!("duplicate or out of order: expected entry {expected}"),
                );
            }
            return;
        }
        match Entry::scan(data) {
            Err(e) => return self.bad(index, format!("unreadable: {e}")),
            Ok(scan) if scan.chain != self.instance => {
                return self.bad(
                    index,
                    format!("belongs to chain `{}` (moved between chains)", scan.chain),
                );
            }
            Ok(scan) if scan.index != index => {
                return self.bad(
                    index,
                    format!(
                        "holds entry {} (reordered, inserted or renumbered here)",
                        scan.index
                    ),
                );
            }
            Ok(scan) => self.decisions += scan.decisions as u64,
        }
        let leaf = leaf_hash(data);
        if let Some(stored) = stored_nodes
            && stored.get(..32) != Some(leaf.as_slice())
        {
            return self.bad(
                index,
                "content does not match its stored hash (modified)".into(),
            );
        }
        let nodes = self.frontier.push(leaf);
        if let Some(stored) = stored_nodes {
            let level = nodes
                .iter()
                .enumerate()
                .find(|(l, h)| stored.get(l * 32..l * 32 + 32) != Some(h.as_slice()))
                .map(|(l, _)| l);
            if let Some(level) = level {
                let first = index + 1 - (1u64 << level);
                return self.bad(
                    first,
                    format!(
                        "entries {first}..={index} do not hash to the stored tree (one was replaced, inserted or reordered)"
                    ),
                );
            }
            if stored.len() != nodes.len() * 32 {
                return self.bad(index, "stored tree hashes have the wrong length".into());
            }
        }
        let size = self.frontier.size();
        if let Some(slot) = self.roots.get_mut(&size) {
            *slot = Some(self.frontier.root());
        }
    }

    /// Checks the head row and the checkpoints against what was read.
    fn finish(
        mut self,
        head: Option<&ChainHead>,
        anchors: &PublicKeys,
    ) -> (ChainReport, Option<Bad>) {
        let good = self.good();
        if let Some(h) = head {
            if self.bad.is_none() && h.size > good {
                self.bad(
                    good,
                    format!(
                        "missing (deleted): the chain head says {} entries but the log ends at {good}",
                        h.size
                    ),
                );
            } else if self.bad.is_none() && h.size < good {
                self.bad(
                    h.size,
                    format!("beyond the chain head of {} entries (inserted)", h.size),
                );
            } else if self.bad.is_none() && h.root != self.frontier.root() {
                self.bad(
                    good,
                    "the chain head's root does not match the entries (head row rewritten)".into(),
                );
            }
        }
        let mut verified = 0;
        let mut last_good_size = 0;
        let mut checkpoints = std::mem::take(&mut self.checkpoints);
        checkpoints.sort_by_key(|c| c.size);
        for cp in &checkpoints {
            if cp.size > good {
                if self.bad.is_none() {
                    self.bad(
                        good,
                        format!(
                            "missing (deleted): checkpoint {} covers {} entries but the log ends at {good}",
                            cp.id, cp.size
                        ),
                    );
                }
                continue;
            }
            if self.roots.get(&cp.size).copied().flatten() != Some(cp.root) {
                self.bad(
                    last_good_size,
                    format!(
                        "entries {last_good_size}..{} were rewritten: their tree does not match checkpoint {} of size {}",
                        cp.size, cp.id, cp.size
                    ),
                );
                continue;
            }
            let signed = SignedCheckpoint::parse(&cp.note).ok().filter(|n| {
                n.head.instance() == Some(self.instance.as_str())
                    && n.head.size == cp.size
                    && n.head.root == cp.root
            });
            let Some(signed) = signed else {
                self.bad(
                    cp.size,
                    format!(
                        "checkpoint {} is not a signed note of this chain's head",
                        cp.id
                    ),
                );
                continue;
            };
            if signed.signed_by(anchors).is_none() {
                self.bad(
                    cp.size,
                    format!("checkpoint {} is not signed by a trusted key", cp.id),
                );
                continue;
            }
            verified += 1;
            last_good_size = cp.size;
        }
        let report = ChainReport {
            instance: self.instance.clone(),
            entries: self.entries,
            decisions: self.decisions,
            root: hex::encode(self.frontier.root()),
            checkpoints: checkpoints.len() as u64,
            checkpoints_verified: verified,
        };
        let bad = self.bad.map(|(index, why)| Bad {
            chain: self.instance,
            index,
            why,
        });
        (report, bad)
    }
}

/// Walks one chain of a store; reads the next page while hashing this one.
async fn walk_chain(
    store: &Store,
    head: &ChainHead,
    check: &mut ChainCheck,
) -> Result<(), AuditError> {
    let mut page = store.leaves(head.chain, 0, PAGE).await?;
    while let Some(last) = page.last() {
        let from = last.index + 1;
        let next = {
            let store = store.clone();
            let chain = head.chain;
            tokio::spawn(async move { store.leaves(chain, from, PAGE).await })
        };
        for row in &page {
            check.push(row.index, &row.data, Some(&row.nodes));
        }
        page = next
            .await
            .map_err(|e| AuditError::Unavailable(format!("verify task: {e}")))??;
    }
    Ok(())
}

/// Verifies every chain of `store` against `anchors`.
pub async fn verify_store(store: &Store, anchors: &PublicKeys) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        chains: Vec::new(),
        first_bad: None,
    };
    for head in store.chains().await? {
        let cps: Vec<Cp> = store
            .checkpoints(Some(head.chain))
            .await?
            .iter()
            .map(Cp::from)
            .collect();
        let mut check = ChainCheck::new(&head.instance, cps, &[]);
        walk_chain(store, &head, &mut check).await?;
        let (chain, bad) = check.finish(Some(&head), anchors);
        report.chains.push(chain);
        if report.first_bad.is_none() {
            report.first_bad = bad;
        }
    }
    Ok(report)
}

/// What [`verify_with_trusted`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedReport {
    pub instance: String,
    /// The trusted checkpoint's size.
    pub trusted_size: u64,
    /// The store's head size now.
    pub size: u64,
    /// The consistency proof from the trusted checkpoint to the head.
    pub proof: Vec<String>,
    /// The whole store's verification.
    pub store: VerifyReport,
    /// Why the log does not extend the trusted checkpoint, if it does not.
    pub problem: Option<String>,
}

impl TrustedReport {
    pub fn is_ok(&self) -> bool {
        self.problem.is_none() && self.store.is_ok()
    }
}

impl std::fmt::Display for TrustedReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.problem {
            Some(p) => write!(f, "audit log does NOT extend the trusted checkpoint: {p}"),
            None => write!(
                f,
                "chain `{}` extends the trusted checkpoint of size {} (now {}, consistency proof of {} hashes); {}",
                self.instance,
                self.trusted_size,
                self.size,
                self.proof.len(),
                self.store
            ),
        }
    }
}

/// Proves the store still extends `checkpoint` (a signed note seen earlier,
/// e.g. kept by `xgate audit watch`): the chain it names is walked in full,
/// its tree at the checkpoint's size must have the checkpoint's root, and a
/// consistency proof from there to the current head must verify. Catches
/// truncation and rewrites even when checkpoint rows were deleted too.
pub async fn verify_with_trusted(
    store: &Store,
    checkpoint: &str,
    anchors: &PublicKeys,
) -> Result<TrustedReport, AuditError> {
    let note =
        SignedCheckpoint::parse(checkpoint).map_err(|e| AuditError::Receipt(e.to_string()))?;
    if note.signed_by(anchors).is_none() {
        return Err(AuditError::Receipt(
            "the trusted checkpoint is not signed by a trusted key".into(),
        ));
    }
    let instance = note
        .head
        .instance()
        .ok_or_else(|| {
            AuditError::Receipt(format!("`{}` is not an xgate origin", note.head.origin))
        })?
        .to_owned();
    let mut report = verify_store(store, anchors).await?;
    let mut out = TrustedReport {
        instance: instance.clone(),
        trusted_size: note.head.size,
        size: 0,
        proof: Vec::new(),
        store: report.clone(),
        problem: None,
    };
    let Some(head) = store
        .chains()
        .await?
        .into_iter()
        .find(|c| c.instance == instance)
    else {
        out.problem = Some(format!("chain `{instance}` is not in the store (deleted)"));
        return Ok(out);
    };
    out.size = head.size;
    // The root at the trusted size, recomputed from the leaves.
    let cps = vec![Cp {
        id: "(trusted)".into(),
        size: note.head.size,
        root: note.head.root,
        note: note.text.clone(),
    }];
    let mut check = ChainCheck::new(&instance, cps, &[]);
    walk_chain(store, &head, &mut check).await?;
    let (_, bad) = check.finish(None, anchors);
    if let Some(b) = bad {
        out.problem = Some(format!("entry {}: {}", b.index, b.why));
        if report.first_bad.is_none() {
            report.first_bad = Some(b);
            out.store = report;
        }
        return Ok(out);
    }
    match consistency_proof(store, &instance, note.head.size, head.size).await {
        Ok(proof) => {
            if !merkle::verify_consistency(
                note.head.size,
                head.size,
                &note.head.root,
                &head.root,
                &proof,
            ) {
                out.problem =
                    Some("the consistency proof to the store's head does not verify".into());
            }
            out.proof = proof.iter().map(hex::encode).collect();
        }
        Err(e) => out.problem = Some(e.to_string()),
    }
    Ok(out)
}

async fn chain_named(store: &Store, instance: &str) -> Result<ChainHead, AuditError> {
    store
        .chains()
        .await?
        .into_iter()
        .find(|c| c.instance == instance)
        .ok_or_else(|| AuditError::Receipt(format!("chain `{instance}` is not in this store")))
}

/// Entry `index` of `instance`'s chain as stored, `None` when the chain has
/// no such entry. Not a verification: callers holding a receipt verify it
/// first ([`verify_receipt`]).
pub async fn entry_at(
    store: &Store,
    instance: &str,
    index: u64,
) -> Result<Option<Entry>, AuditError> {
    let Some(head) = store
        .chains()
        .await?
        .into_iter()
        .find(|c| c.instance == instance)
    else {
        return Ok(None);
    };
    let Some(row) = store.leaf(head.chain, index).await? else {
        return Ok(None);
    };
    Entry::decode(&row.data)
        .map(Some)
        .map_err(|e| AuditError::Receipt(format!("entry {index} is unreadable: {e}")))
}

/// The inclusion proof of entry `index` of `instance`'s chain in its tree
/// of `size` entries (O(log n) stored hashes, one query).
pub async fn inclusion_proof(
    store: &Store,
    instance: &str,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, AuditError> {
    let head = chain_named(store, instance).await?;
    if index >= size || size > head.size {
        return Err(AuditError::Receipt(format!(
            "no inclusion proof of entry {index} in a tree of {size} (the chain has {})",
            head.size
        )));
    }
    let stored = store
        .subtrees(head.chain, &inclusion_subtrees(index, size))
        .await?;
    merkle::inclusion_proof(index, size, |l, k| stored.get(&(l, k)).copied()).ok_or_else(|| {
        AuditError::Receipt(format!(
            "chain `{instance}`: stored tree hashes are missing"
        ))
    })
}

/// The consistency proof between sizes `old` and `new` of `instance`'s chain.
pub async fn consistency_proof(
    store: &Store,
    instance: &str,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, AuditError> {
    let head = chain_named(store, instance).await?;
    if old > new || new > head.size {
        return Err(AuditError::Receipt(format!(
            "no consistency proof from {old} to {new} entries (the chain has {})",
            head.size
        )));
    }
    let stored = store
        .subtrees(head.chain, &consistency_subtrees(old, new))
        .await?;
    merkle::consistency_proof(old, new, |l, k| stored.get(&(l, k)).copied()).ok_or_else(|| {
        AuditError::Receipt(format!(
            "chain `{instance}`: stored tree hashes are missing"
        ))
    })
}

/// The latest checkpoint of every chain: `(instance, signed note)`.
pub async fn latest_checkpoints(store: &Store) -> Result<Vec<(String, String)>, AuditError> {
    let mut out = Vec::new();
    for head in store.chains().await? {
        if let Some(cp) = store.latest_checkpoint(head.chain).await? {
            out.push((head.instance, cp.note));
        }
    }
    Ok(out)
}

/// What [`verify_receipt`] proved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptReport {
    /// The trusted key that signed the receipt.
    pub key: String,
    /// The checkpoint whose tree includes the entry, when one covers it.
    pub checkpoint: Option<String>,
    /// The inclusion proof in that checkpoint's tree (hex hashes).
    pub inclusion_proof: Vec<String>,
    /// The entry the receipt names, as verified.
    pub entry: Entry,
}

/// Proves `receipt` against `store`: its signature is a trusted key's, its
/// entry is present and unaltered (leaf data hashes to the receipt's entry
/// hash, records digest and index match), the chain's head covers it, and
/// — when a checkpoint covers it — an inclusion proof in the checkpoint's
/// tree verifies. Any edit, deletion or truncation fails.
pub async fn verify_receipt(
    store: &Store,
    receipt: &Receipt,
    anchors: &PublicKeys,
) -> Result<ReceiptReport, AuditError> {
    let fail = |m: String| Err(AuditError::Receipt(m));
    let Some(key) = receipt.verify_signature(anchors) else {
        return fail("its signature does not verify with a trusted key".into());
    };
    let head = chain_named(store, &receipt.chain).await?;
    let (chain, index) = (&receipt.chain, receipt.index);
    let Some(row) = store.leaf(head.chain, index).await? else {
        return fail(format!(
            "entry {index} of chain `{chain}` is missing from the store (deleted or truncated)"
        ));
    };
    if leaf_hash(&row.data) != receipt.entry_hash {
        return fail(format!(
            "entry {index} of chain `{chain}` was altered: it no longer hashes to the receipt's entry hash"
        ));
    }
    if row.nodes.get(..32) != Some(receipt.entry_hash.as_slice()) {
        return fail(format!(
            "entry {index} of chain `{chain}`: its stored hash was altered"
        ));
    }
    let entry = Entry::decode(&row.data)
        .map_err(|e| AuditError::Receipt(format!("entry {index} is unreadable: {e}")))?;
    if entry.chain != *chain || entry.index != index {
        return fail(format!(
            "entry {index} of chain `{chain}` names chain `{}` entry {}",
            entry.chain, entry.index
        ));
    }
    if entry.body.records_digest() != receipt.records_digest {
        return fail(format!(
            "entry {index} of chain `{chain}` does not record the receipt's released records"
        ));
    }
    if head.size <= index {
        return fail(format!(
            "entry {index} of chain `{chain}` lies beyond the chain's head ({}): the tail was truncated",
            head.size
        ));
    }
    let mut report = ReceiptReport {
        key: key.to_string(),
        checkpoint: None,
        inclusion_proof: Vec::new(),
        entry,
    };
    let covering = store
        .checkpoints(Some(head.chain))
        .await?
        .into_iter()
        .filter(|c| c.size > index && c.size <= head.size)
        .max_by_key(|c| c.size);
    if let Some(cp) = covering {
        let signed = SignedCheckpoint::parse(&cp.note).ok().filter(|n| {
            n.head.size == cp.size && n.head.root == cp.root && n.signed_by(anchors).is_some()
        });
        let Some(signed) = signed else {
            return fail(format!(
                "the checkpoint of size {} is not validly signed",
                cp.size
            ));
        };
        let proof = inclusion_proof(store, chain, index, cp.size).await?;
        if !verify_inclusion(index, cp.size, &receipt.entry_hash, &proof, &cp.root) {
            return fail(format!(
                "entry {index} of chain `{chain}` is not in the tree of checkpoint size {} (rewritten)",
                cp.size
            ));
        }
        report.checkpoint = Some(signed.text);
        report.inclusion_proof = proof.iter().map(hex::encode).collect();
    }
    Ok(report)
}

/// One line of an export.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Line {
    Format(String),
    Chain(ChainLine),
    Checkpoint(CheckpointLine),
    Entry(EntryLine),
}

#[derive(Serialize, Deserialize)]
struct ChainLine {
    instance: String,
    size: u64,
    #[serde(with = "hex32")]
    root: Hash,
}

#[derive(Serialize, Deserialize)]
struct CheckpointLine {
    chain: String,
    note: String,
}

#[derive(Serialize, Deserialize)]
struct EntryLine {
    chain: String,
    index: u64,
    /// Base64 leaf data.
    data: String,
}

/// The export format tag (first line).
pub const EXPORT_FORMAT: &str = "xgate-audit-export/2";
const EXPORT_FORMAT_V1: &str = "xgate-audit-export/1";

enum ExportState {
    Start,
    Chains(Vec<ChainHead>),
    Entries(Vec<ChainHead>, u64),
    Done,
}

fn json_lines(items: Vec<Line>) -> Result<Vec<String>, AuditError> {
    items
        .iter()
        .map(|l| serde_json::to_string(l).map_err(|e| AuditError::Io(e.into())))
        .collect()
}

/// The whole store as JSON lines (no trailing newline): a format line,
/// then per chain its head, its checkpoints and its entries' leaf data —
/// all offline verification needs besides the public keys.
pub fn export_lines(store: Store) -> impl Stream<Item = Result<Vec<String>, AuditError>> {
    futures::stream::unfold(ExportState::Start, move |state| {
        let store = store.clone();
        async move {
            match state {
                ExportState::Done => None,
                ExportState::Start => match store.chains().await {
                    Ok(mut chains) => {
                        chains.reverse();
                        Some((
                            json_lines(vec![Line::Format(EXPORT_FORMAT.into())]),
                            ExportState::Chains(chains),
                        ))
                    }
                    Err(e) => Some((Err(e), ExportState::Done)),
                },
                ExportState::Chains(mut chains) => {
                    let head = chains.pop()?;
                    match store.checkpoints(Some(head.chain)).await {
                        Ok(cps) => {
                            let mut lines = vec![Line::Chain(ChainLine {
                                instance: head.instance.clone(),
                                size: head.size,
                                root: head.root,
                            })];
                            lines.extend(cps.into_iter().map(|c| {
                                Line::Checkpoint(CheckpointLine {
                                    chain: head.instance.clone(),
                                    note: c.note,
                                })
                            }));
                            chains.push(head);
                            Some((json_lines(lines), ExportState::Entries(chains, 0)))
                        }
                        Err(e) => Some((Err(e), ExportState::Done)),
                    }
                }
                ExportState::Entries(mut chains, from) => {
                    let head = chains.last()?.clone();
                    match store.leaves(head.chain, from, PAGE).await {
                        Ok(page) if page.is_empty() => {
                            chains.pop();
                            Some((Ok(Vec::new()), ExportState::Chains(chains)))
                        }
                        Ok(page) => {
                            let next = page.last().map_or(from, |r| r.index + 1);
                            let lines = page
                                .into_iter()
                                .map(|r| {
                                    Line::Entry(EntryLine {
                                        chain: head.instance.clone(),
                                        index: r.index,
                                        data: B64.encode(&r.data),
                                    })
                                })
                                .collect();
                            Some((json_lines(lines), ExportState::Entries(chains, next)))
                        }
                        Err(e) => Some((Err(e), ExportState::Done)),
                    }
                }
            }
        }
    })
}

/// Verifies an export read from `reader` with only `anchors` (offline).
pub fn verify_export(
    reader: impl BufRead,
    anchors: &PublicKeys,
) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport {
        chains: Vec::new(),
        first_bad: None,
    };
    // The chain being read: its head line, checkpoints, and the walk.
    let mut current: Option<(ChainHead, Vec<Cp>, Option<ChainCheck>)> = None;
    let close = |current: Option<(ChainHead, Vec<Cp>, Option<ChainCheck>)>,
                 report: &mut VerifyReport| {
        if let Some((head, cps, check)) = current {
            let check = check.unwrap_or_else(|| ChainCheck::new(&head.instance, cps, &[]));
            let (chain, bad) = check.finish(Some(&head), anchors);
            report.chains.push(chain);
            if report.first_bad.is_none() {
                report.first_bad = bad;
            }
        }
    };
    let mut saw_format = false;
    for (n, line) in reader.lines().enumerate() {
        let n = n as u64 + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| AuditError::Export { line: n, message };
        let parsed: Line = match serde_json::from_str(&line) {
            Ok(l) => l,
            Err(e) => {
                if n == 1 && line.contains(EXPORT_FORMAT_V1) {
                    return Err(err(format!(
                        "a v1 export (`{EXPORT_FORMAT_V1}`, one hash chain): verify it with the xgate binary that wrote it"
                    )));
                }
                return Err(err(e.to_string()));
            }
        };
        match parsed {
            Line::Format(f) if f == EXPORT_FORMAT && n == 1 => saw_format = true,
            Line::Format(f) if f == EXPORT_FORMAT_V1 => {
                return Err(err(format!(
                    "a v1 export (`{f}`, one hash chain): verify it with the xgate binary that wrote it"
                )));
            }
            Line::Format(f) => return Err(err(format!("unexpected format line `{f}`"))),
            _ if !saw_format => {
                return Err(err(format!(
                    "not an xgate audit export (no `{EXPORT_FORMAT}` line first)"
                )));
            }
            Line::Chain(c) => {
                close(current.take(), &mut report);
                current = Some((
                    ChainHead {
                        chain: 0,
                        instance: c.instance,
                        size: c.size,
                        root: c.root,
                    },
                    Vec::new(),
                    None,
                ));
            }
            Line::Checkpoint(c) => match &mut current {
                Some((head, cps, None)) if head.instance == c.chain => {
                    let parsed =
                        SignedCheckpoint::parse(&c.note).map_err(|e| err(e.to_string()))?;
                    cps.push(Cp {
                        id: format!("on line {n}"),
                        size: parsed.head.size,
                        root: parsed.head.root,
                        note: c.note,
                    });
                }
                _ => return Err(err("a checkpoint outside its chain's header".into())),
            },
            Line::Entry(e) => match &mut current {
                Some((head, cps, check)) if head.instance == e.chain => {
                    let data = B64.decode(&e.data).map_err(|e| err(e.to_string()))?;
                    let check = check.get_or_insert_with(|| {
                        ChainCheck::new(&head.instance, std::mem::take(cps), &[])
                    });
                    check.push(e.index, &data, None);
                }
                _ => return Err(err("an entry outside its chain".into())),
            },
        }
    }
    if !saw_format {
        return Err(AuditError::Export {
            line: 1,
            message: format!("not an xgate audit export (no `{EXPORT_FORMAT}` line)"),
        });
    }
    close(current.take(), &mut report);
    Ok(report)
}

/// Verifies leaves held in memory (bench, tests): one chain.
pub fn verify_leaves(
    instance: &str,
    leaves: &[Vec<u8>],
    checkpoints: &[String],
    anchors: &PublicKeys,
) -> VerifyReport {
    let cps = checkpoints
        .iter()
        .enumerate()
        .filter_map(|(i, text)| {
            let n = SignedCheckpoint::parse(text).ok()?;
            Some(Cp {
                id: format!("{}", i + 1),
                size: n.head.size,
                root: n.head.root,
                note: text.clone(),
            })
        })
        .collect();
    let mut check = ChainCheck::new(instance, cps, &[]);
    for (i, data) in leaves.iter().enumerate() {
        check.push(i as u64, data, None);
    }
    let (chain, bad) = check.finish(None, anchors);
    VerifyReport {
        chains: vec![chain],
        first_bad: bad,
    }
}

/// Keys helper for verifiers: a single key as a trusted set.
pub fn trust(key: PublicKey) -> PublicKeys {
    PublicKeys(vec![key])
}
