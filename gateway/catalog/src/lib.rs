//! The record catalog: departments, record types, their JSON Schemas, and subject ID validation (GB 11643, GB 32100)
