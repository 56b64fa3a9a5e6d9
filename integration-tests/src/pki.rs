//! A development PKI per test.

use std::path::Path;

use xgate_tls::devpki::{self, DevPki};
use xgate_tls::{Identity, TlsFiles};

use crate::{
    ADMIN_ID, APPROVAL_HALL, AUDITOR_ID, BENEFITS_OFFICE, DEPARTMENTS, GATEWAY_ID, NO_GRANT,
    PLATFORM_ID, PROVIDENT_FUND, TAX_BUREAU,
};

/// Every identity a test may need: the gateway, an operator, three requesters and every
/// department of the catalog (three with adapters of their own, seventeen served by the
/// generic SQL adapter).
pub fn identities() -> Vec<Identity> {
    let mut ids = vec![
        Identity::Gateway(GATEWAY_ID.into()),
        Identity::Admin(ADMIN_ID.into()),
        Identity::Auditor(AUDITOR_ID.into()),
        Identity::Platform(PLATFORM_ID.into()),
        Identity::Requester(APPROVAL_HALL.into()),
        Identity::Requester(NO_GRANT.into()),
        Identity::Requester(PROVIDENT_FUND.into()),
        Identity::Requester(BENEFITS_OFFICE.into()),
        Identity::Requester(TAX_BUREAU.into()),
    ];
    ids.extend(
        DEPARTMENTS
            .iter()
            .map(|d| Identity::Department((*d).into())),
    );
    ids.extend(
        xgate_demo_data::DEPARTMENTS
            .iter()
            .map(|d| Identity::Department(d.id.into())),
    );
    ids
}

/// A CA and one certificate per [`identities`] entry.
#[derive(Debug, Clone)]
pub struct TestPki {
    pki: DevPki,
}

impl TestPki {
    /// Creates the CA and certificates in `dir`.
    pub fn create(dir: &Path) -> anyhow::Result<TestPki> {
        let pki = devpki::init(dir, &identities())?;
        Ok(TestPki { pki })
    }

    /// The CA certificate.
    pub fn ca(&self) -> &Path {
        &self.pki.ca
    }

    /// The certificate, key and CA files of `identity`.
    pub fn files(&self, identity: &Identity) -> TlsFiles {
        self.pki.files(identity)
    }

    pub fn gateway(&self) -> TlsFiles {
        self.files(&Identity::Gateway(GATEWAY_ID.into()))
    }

    pub fn admin(&self) -> TlsFiles {
        self.files(&Identity::Admin(ADMIN_ID.into()))
    }

    pub fn auditor(&self) -> TlsFiles {
        self.files(&Identity::Auditor(AUDITOR_ID.into()))
    }

    pub fn platform(&self) -> TlsFiles {
        self.files(&Identity::Platform(PLATFORM_ID.into()))
    }

    pub fn requester(&self, id: &str) -> TlsFiles {
        self.files(&Identity::Requester(id.into()))
    }

    pub fn department(&self, id: &str) -> TlsFiles {
        self.files(&Identity::Department(id.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_a_certificate_per_identity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = TestPki::create(dir.path()).expect("pki");
        for identity in identities() {
            let files = pki.files(&identity);
            assert_eq!(files.identity().expect("identity"), identity);
        }
        assert_eq!(
            pki.department("tax").identity().expect("identity"),
            Identity::Department("tax".into())
        );
    }
}
