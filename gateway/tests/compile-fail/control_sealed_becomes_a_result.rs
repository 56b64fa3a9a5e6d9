// The one way to a result: a sealed outcome (compiles).
use xgate::audit::Sealed;
use xgate::xgate_proto::v1::RecordResult;

pub fn respond(sealed: Sealed) -> RecordResult {
    RecordResult::from(sealed)
}
