//! Transport Bureau (交通运输局): TODO tables and records.

use xgate_synth::store::Table;
use xgate_synth::{DepartmentSpec, Population, Records};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "transport";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Transport Bureau (交通运输局)",
    tables: TABLES,
    generate,
};

static TABLES: &[Table] = &[];

fn generate(_population: &Population) -> Records {
    Vec::new()
}
