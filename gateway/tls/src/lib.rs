//! mTLS plumbing shared by the gateway and adapters: PEM loading, rustls/tonic configs, identities from certificate URI SANs, and the development CA
