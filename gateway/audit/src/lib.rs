//! The tamper-evident access log (work in progress).
