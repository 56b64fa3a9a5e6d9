//! Housing Provident Fund Management Centre (住房公积金管理中心): TODO tables and records.

use xgate_synth::store::Table;
use xgate_synth::{DepartmentSpec, Population, Records};

/// The department id in the catalog.
pub const DEPARTMENT: &str = "housing-provident-fund";

/// The department.
pub static SPEC: DepartmentSpec = DepartmentSpec {
    id: DEPARTMENT,
    name: "Housing Provident Fund Management Centre (住房公积金管理中心)",
    tables: TABLES,
    generate,
};

static TABLES: &[Table] = &[];

fn generate(_population: &Population) -> Records {
    Vec::new()
}
