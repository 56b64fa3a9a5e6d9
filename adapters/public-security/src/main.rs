//! Public security department adapter

fn main() {}
