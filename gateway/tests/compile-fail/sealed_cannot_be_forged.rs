// error: cannot initialize a tuple struct which contains private fields
// Only the audit module makes `Sealed` values (after a durable append).
use xgate::audit::Sealed;
use xgate::outcome::Settled;

pub fn forge(settled: Settled) -> Sealed {
    Sealed(settled)
}
