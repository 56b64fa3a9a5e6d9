//! Helpers for end-to-end tests that start the real xgate and adapter binaries on loopback.
