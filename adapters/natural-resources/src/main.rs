//! Natural resources department adapter

fn main() {}
