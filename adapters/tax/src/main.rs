//! Taxation department adapter

fn main() {}
