//! `xgate certs`: the development PKI. Production brings its own CA; the
//! gateway and adapters only need PEM paths.

use std::path::Path;

use xgate_catalog::Catalog;
use xgate_tls::{Identity, devpki};

/// Identities of the demo: the gateway, its requesters, every catalog
/// department, an operator and an auditor.
pub fn demo_identities(catalog: &Catalog) -> Vec<Identity> {
    let mut ids = vec![
        Identity::Gateway("xgate".into()),
        Identity::Admin("operator".into()),
        Identity::Auditor("auditor".into()),
    ];
    for requester in super::demo::REQUESTERS {
        ids.push(Identity::Requester((*requester).into()));
    }
    ids.extend(
        catalog
            .departments()
            .map(|d| Identity::Department(d.id.clone())),
    );
    ids
}

/// Creates `out` with a CA and the demo identities' certificates, or adds
/// the missing certificates to an existing dev CA there.
pub fn init_or_complete(out: &Path, identities: &[Identity]) -> anyhow::Result<devpki::DevPki> {
    if out.join("ca.pem").exists() {
        for identity in identities {
            if !out.join(format!("{}.pem", identity.file_stem())).exists() {
                devpki::issue(out, identity, out)?;
            }
        }
        Ok(devpki::DevPki {
            dir: out.to_owned(),
            ca: out.join("ca.pem"),
        })
    } else {
        Ok(devpki::init(out, identities)?)
    }
}
