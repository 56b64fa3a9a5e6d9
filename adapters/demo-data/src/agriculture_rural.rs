//! Agriculture and Rural Affairs Bureau (农业农村局): TODO tables and records.

use xgate_synth::store::Table;
use xgate_synth::{DepartmentSpec, Population, Records};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "agriculture-rural";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Agriculture and Rural Affairs Bureau (农业农村局)",
    tables: TABLES,
    generate,
};

static TABLES: &[Table] = &[];

fn generate(_population: &Population) -> Records {
    Vec::new()
}
