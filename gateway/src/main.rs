//! xgate: the inter-departmental data-sharing exchange gateway

fn main() {}
