//! Ratings and objections in the gateway's store (SQLite migration 0006;
//! PostgreSQL: [`PG_SCHEMA`]), so every replica sees them. State changes
//! are conditional updates (`WHERE state IN (...)`): two replicas racing to
//! move one objection cannot both succeed.

use std::time::SystemTime;

use crate::store::{Store, StoreError, from_millis, json_list, millis, on_pool};

/// The PostgreSQL tables (SQLite: migration 0006).
pub(crate) const PG_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS ratings (
    id          TEXT    NOT NULL PRIMARY KEY,
    requester   TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    chain       TEXT    NOT NULL,
    entry_index BIGINT  NOT NULL,
    record_type TEXT    NOT NULL,
    department  TEXT    NOT NULL,
    good        BIGINT  NOT NULL,
    reasons     TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    rated_at    BIGINT  NOT NULL,
    UNIQUE (chain, entry_index, record_type)
)",
    "CREATE INDEX IF NOT EXISTS ratings_by_type ON ratings (department, record_type, rated_at)",
    "CREATE TABLE IF NOT EXISTS objections (
    id              TEXT   NOT NULL PRIMARY KEY,
    state           TEXT   NOT NULL,
    filed_by        TEXT   NOT NULL,
    request_id      TEXT   NOT NULL,
    chain           TEXT   NOT NULL,
    entry_index     BIGINT NOT NULL,
    subject_kind    TEXT   NOT NULL,
    subject_id      TEXT   NOT NULL,
    record_type     TEXT   NOT NULL,
    department      TEXT   NOT NULL,
    field_path      TEXT   NOT NULL,
    believed_value  TEXT   NOT NULL,
    evidence_ref    TEXT   NOT NULL,
    disposition     TEXT   NOT NULL,
    disposal_reason TEXT   NOT NULL,
    filed_at        BIGINT NOT NULL,
    due_at          BIGINT NOT NULL,
    acknowledged_at BIGINT,
    disposed_at     BIGINT,
    fed_back_at     BIGINT,
    closed_at       BIGINT,
    changed_at      BIGINT NOT NULL
)",
    "CREATE INDEX IF NOT EXISTS objections_by_department ON objections (department, state)",
    "CREATE INDEX IF NOT EXISTS objections_by_filer ON objections (filed_by, changed_at)",
];

/// A rating as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingRow {
    pub id: String,
    pub requester: String,
    pub request_id: String,
    pub chain: String,
    pub entry_index: u64,
    pub record_type: String,
    pub department: String,
    pub good: bool,
    /// Reason names (`WRONG_DATA`, ...).
    pub reasons: Vec<String>,
    pub text: String,
    pub rated_at: SystemTime,
}

/// Where an objection is in its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Reported,
    Circulated,
    Disposed,
    FedBack,
    Closed,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Reported,
        State::Circulated,
        State::Disposed,
        State::FedBack,
        State::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Reported => "reported",
            State::Circulated => "circulated",
            State::Disposed => "disposed",
            State::FedBack => "fed_back",
            State::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Not yet disposed: the department still owes an answer.
    pub fn is_open(self) -> bool {
        matches!(self, State::Reported | State::Circulated)
    }
}

/// An objection as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectionRow {
    pub id: String,
    pub state: State,
    pub filed_by: String,
    pub request_id: String,
    pub chain: String,
    pub entry_index: u64,
    pub subject_kind: String,
    pub subject_id: String,
    pub record_type: String,
    pub department: String,
    pub field_path: String,
    pub believed_value: serde_json::Value,
    pub evidence_ref: String,
    /// `""`, `corrected` or `rejected`.
    pub disposition: String,
    pub disposal_reason: String,
    pub filed_at: SystemTime,
    pub due_at: SystemTime,
    pub acknowledged_at: Option<SystemTime>,
    pub disposed_at: Option<SystemTime>,
    pub fed_back_at: Option<SystemTime>,
    pub closed_at: Option<SystemTime>,
    pub changed_at: SystemTime,
}

/// Which objections to list.
#[derive(Debug, Clone, Default)]
pub struct ObjectionFilter {
    pub department: Option<String>,
    pub filed_by: Option<String>,
    pub id: Option<String>,
    /// Changed after this (ms since the epoch), for watching.
    pub changed_after: Option<i64>,
}

/// Objections by department, filer, id and last change; empty strings and
/// -1 stand for "any", so the statement is one constant.
const SELECT_OBJECTIONS: &str = "SELECT id, state, filed_by, request_id, chain, entry_index,
    subject_kind, subject_id, record_type, department, field_path, believed_value,
    evidence_ref, disposition, disposal_reason, filed_at, due_at, acknowledged_at,
    disposed_at, fed_back_at, closed_at, changed_at
  FROM objections
  WHERE ($1 = '' OR department = $1) AND ($2 = '' OR filed_by = $2)
    AND ($3 = '' OR id = $3) AND changed_at > $4
  ORDER BY changed_at, id";

type ObjectionTuple = (
    (
        String,
        String,
        String,
        String,
        String,
        i64,
        String,
        String,
        String,
        String,
        String,
    ),
    (
        String,
        String,
        String,
        String,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        i64,
    ),
);

/// A transition: the states it may start from, the state it leads to, and
/// its conditional update (binds: `$1` the time, `$2` the disposition or
/// `''`, `$3` its reason, `$4` the id).
#[derive(Debug, Clone, Copy)]
pub struct Transition {
    pub from: &'static [State],
    pub to: State,
    sql: &'static str,
}

pub const ACKNOWLEDGE: Transition = Transition {
    from: &[State::Reported],
    to: State::Circulated,
    sql: "UPDATE objections SET state = 'circulated', acknowledged_at = $1, changed_at = $1
          WHERE $2 = $3 AND id = $4 AND state = 'reported'",
};
pub const DISPOSE: Transition = Transition {
    from: &[State::Reported, State::Circulated],
    to: State::Disposed,
    sql: "UPDATE objections SET state = 'disposed', disposed_at = $1, changed_at = $1,
              disposition = $2, disposal_reason = $3
          WHERE id = $4 AND state IN ('reported', 'circulated')",
};
pub const FEED_BACK: Transition = Transition {
    from: &[State::Disposed],
    to: State::FedBack,
    sql: "UPDATE objections SET state = 'fed_back', fed_back_at = $1, changed_at = $1
          WHERE $2 = $3 AND id = $4 AND state = 'disposed'",
};
pub const CLOSE: Transition = Transition {
    from: &[State::Disposed, State::FedBack],
    to: State::Closed,
    sql: "UPDATE objections SET state = 'closed', closed_at = $1, changed_at = $1
          WHERE $2 = $3 AND id = $4 AND state IN ('disposed', 'fed_back')",
};

impl Store {
    /// Records a rating; `false` when that answer's record type was rated
    /// before (by anyone: only its requester can).
    pub async fn rate(&self, r: &RatingRow) -> Result<bool, StoreError> {
        const SQL: &str = "INSERT INTO ratings (id, requester, request_id, chain, entry_index,
                 record_type, department, good, reasons, text, rated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (chain, entry_index, record_type) DO NOTHING";
        let inserted = on_pool!(self, p => sqlx::query(SQL)
            .bind(&r.id)
            .bind(&r.requester)
            .bind(&r.request_id)
            .bind(&r.chain)
            .bind(i64::try_from(r.entry_index).unwrap_or(i64::MAX))
            .bind(&r.record_type)
            .bind(&r.department)
            .bind(i64::from(r.good))
            .bind(json_list(&r.reasons))
            .bind(&r.text)
            .bind(millis(r.rated_at))
            .execute(p)
            .await?
            .rows_affected());
        Ok(inserted == 1)
    }

    /// Good and bad ratings since `since`, of one department or (`""`)
    /// all: `(department, record type, good, bad)`.
    pub async fn rating_counts(
        &self,
        department: &str,
        since: SystemTime,
    ) -> Result<Vec<(String, String, i64, i64)>, StoreError> {
        const SQL: &str = "SELECT department, record_type, CAST(SUM(good) AS BIGINT),
                 CAST(SUM(1 - good) AS BIGINT)
             FROM ratings WHERE ($1 = '' OR department = $1) AND rated_at >= $2
             GROUP BY department, record_type";
        Ok(on_pool!(self, p => sqlx::query_as(SQL)
            .bind(department)
            .bind(millis(since))
            .fetch_all(p)
            .await?))
    }

    /// Records a new objection.
    pub async fn file_objection(&self, o: &ObjectionRow) -> Result<(), StoreError> {
        const SQL: &str = "INSERT INTO objections (id, state, filed_by, request_id, chain,
                 entry_index, subject_kind, subject_id, record_type, department, field_path,
                 believed_value, evidence_ref, disposition, disposal_reason, filed_at, due_at,
                 changed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, '', '', $14, $15, $14)";
        on_pool!(self, p => sqlx::query(SQL)
            .bind(&o.id)
            .bind(o.state.as_str())
            .bind(&o.filed_by)
            .bind(&o.request_id)
            .bind(&o.chain)
            .bind(i64::try_from(o.entry_index).unwrap_or(i64::MAX))
            .bind(&o.subject_kind)
            .bind(&o.subject_id)
            .bind(&o.record_type)
            .bind(&o.department)
            .bind(&o.field_path)
            .bind(o.believed_value.to_string())
            .bind(&o.evidence_ref)
            .bind(millis(o.filed_at))
            .bind(millis(o.due_at))
            .execute(p)
            .await?
            .rows_affected());
        Ok(())
    }

    /// Objections matching `filter`, oldest change first.
    pub async fn objections(
        &self,
        filter: &ObjectionFilter,
    ) -> Result<Vec<ObjectionRow>, StoreError> {
        let tuples: Vec<ObjectionTuple> = on_pool!(self, p => {
            sqlx::query(SELECT_OBJECTIONS)
                .bind(filter.department.as_deref().unwrap_or(""))
                .bind(filter.filed_by.as_deref().unwrap_or(""))
                .bind(filter.id.as_deref().unwrap_or(""))
                .bind(filter.changed_after.unwrap_or(-1))
                .fetch_all(p)
                .await?
                .iter()
                .map(tuple_of)
                .collect::<Result<_, sqlx::Error>>()?
        });
        tuples.into_iter().map(objection_of).collect()
    }

    /// One objection by id.
    pub async fn objection(&self, id: &str) -> Result<Option<ObjectionRow>, StoreError> {
        Ok(self
            .objections(&ObjectionFilter {
                id: Some(id.to_owned()),
                ..ObjectionFilter::default()
            })
            .await?
            .into_iter()
            .next())
    }

    /// Moves an objection along `t` at `at` (with the disposition and its
    /// reason for [`DISPOSE`]); `None` when it is not in a state `t` starts
    /// from (or does not exist). The objection as it now is.
    pub async fn transition(
        &self,
        id: &str,
        t: Transition,
        at: SystemTime,
        disposition: Option<(&str, &str)>,
    ) -> Result<Option<ObjectionRow>, StoreError> {
        // Transitions other than DISPOSE bind two equal empty strings.
        let (disposition, reason) = disposition.unwrap_or(("", ""));
        let changed = on_pool!(self, p => sqlx::query(t.sql)
            .bind(millis(at))
            .bind(disposition)
            .bind(reason)
            .bind(id)
            .execute(p)
            .await?
            .rows_affected());
        if changed == 0 {
            return Ok(None);
        }
        self.objection(id).await
    }
}

fn tuple_of<R>(row: &R) -> Result<ObjectionTuple, sqlx::Error>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok((
        (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            row.try_get(6)?,
            row.try_get(7)?,
            row.try_get(8)?,
            row.try_get(9)?,
            row.try_get(10)?,
        ),
        (
            row.try_get(11)?,
            row.try_get(12)?,
            row.try_get(13)?,
            row.try_get(14)?,
            row.try_get(15)?,
            row.try_get(16)?,
            row.try_get(17)?,
            row.try_get(18)?,
            row.try_get(19)?,
            row.try_get(20)?,
            row.try_get(21)?,
        ),
    ))
}

fn objection_of(t: ObjectionTuple) -> Result<ObjectionRow, StoreError> {
    let (
        (
            id,
            state,
            filed_by,
            request_id,
            chain,
            entry_index,
            subject_kind,
            subject_id,
            record_type,
            department,
            field_path,
        ),
        (
            believed_value,
            evidence_ref,
            disposition,
            disposal_reason,
            filed_at,
            due_at,
            acknowledged_at,
            disposed_at,
            fed_back_at,
            closed_at,
            changed_at,
        ),
    ) = t;
    let corrupt = |message: String| StoreError::Corrupt {
        department: "objections".into(),
        adapter_id: id.clone(),
        message,
    };
    Ok(ObjectionRow {
        state: State::parse(&state).ok_or_else(|| corrupt(format!("state `{state}`")))?,
        believed_value: serde_json::from_str(&believed_value)
            .map_err(|e| corrupt(format!("believed_value: {e}")))?,
        entry_index: u64::try_from(entry_index).unwrap_or(0),
        filed_at: from_millis(filed_at),
        due_at: from_millis(due_at),
        acknowledged_at: acknowledged_at.map(from_millis),
        disposed_at: disposed_at.map(from_millis),
        fed_back_at: fed_back_at.map(from_millis),
        closed_at: closed_at.map(from_millis),
        changed_at: from_millis(changed_at),
        id,
        filed_by,
        request_id,
        chain,
        subject_kind,
        subject_id,
        record_type,
        department,
        field_path,
        evidence_ref,
        disposition,
        disposal_reason,
    })
}
