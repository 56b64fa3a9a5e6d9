//! The adapter SDK: a department implements one trait; the SDK serves it over gRPC with mTLS, health, reflection and registration
