//! Deterministic synthetic population (citizens and companies with valid ID numbers) for seeding department databases
