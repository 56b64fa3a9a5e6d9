// error: the trait bound `RecordResult: From<Settled>` is not satisfied
// A settled outcome (not yet in the audit log) has no conversion to a result.
use xgate::outcome::Settled;
use xgate::xgate_proto::v1::RecordResult;

pub fn respond(settled: Settled) -> RecordResult {
    RecordResult::from(settled)
}
