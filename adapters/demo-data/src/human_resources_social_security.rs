//! Human Resources and Social Security Bureau (人力资源和社会保障局): TODO tables and records.

use xgate_synth::store::Table;
use xgate_synth::{DepartmentSpec, Population, Records};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "human-resources-social-security";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Human Resources and Social Security Bureau (人力资源和社会保障局)",
    tables: TABLES,
    generate,
};

static TABLES: &[Table] = &[];

fn generate(_population: &Population) -> Records {
    Vec::new()
}
