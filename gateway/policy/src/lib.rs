//! Access decisions: Cedar policies from policies/, validated against a schema generated from the catalog
