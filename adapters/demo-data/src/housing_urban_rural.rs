//! Housing and Urban-Rural Development Bureau (住房和城乡建设局): TODO tables and records.

use xgate_synth::store::Table;
use xgate_synth::{DepartmentSpec, Population, Records};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "housing-urban-rural";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Housing and Urban-Rural Development Bureau (住房和城乡建设局)",
    tables: TABLES,
    generate,
};

static TABLES: &[Table] = &[];

fn generate(_population: &Population) -> Records {
    Vec::new()
}
