//! `xgate certs`: the development PKI. Production brings its own CA; the
//! gateway and adapters only need PEM paths.

use std::path::Path;

use xgate_catalog::Catalog;
use xgate_tls::{Identity, devpki};

/// The demo's citizen platform (the province's app backend).
pub const CITIZEN_PLATFORM: &str = "citizen-app";

/// Identities of the demo: the gateway, its requesters, every catalog
/// department, an operator and an auditor.
pub fn demo_identities(catalog: &Catalog) -> Vec<Identity> {
    let mut ids = vec![
        Identity::Gateway("xgate".into()),
        Identity::Admin("operator".into()),
        Identity::Auditor("auditor".into()),
        Identity::Platform(CITIZEN_PLATFORM.into()),
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

/// `xgate certs issue`: one certificate from the dev CA.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("who").required(true).multiple(false)))]
pub struct IssueArgs {
    /// Folder of the dev CA (`ca.pem`, `ca-key.pem`), from `xgate certs init`.
    #[arg(long)]
    pub dir: std::path::PathBuf,
    /// Folder to write the certificate and key to (default: `--dir`).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// A department adapter's certificate (`xgate://department/<id>`); the
    /// department must be in the catalog.
    #[arg(long, group = "who")]
    pub department: Option<String>,
    /// A requester's certificate (`xgate://requester/<id>`).
    #[arg(long, group = "who")]
    pub requester: Option<String>,
    /// An operator's certificate (`xgate://admin/<id>`).
    #[arg(long, group = "who")]
    pub admin: Option<String>,
    /// An auditor's certificate (`xgate://auditor/<id>`).
    #[arg(long, group = "who")]
    pub auditor: Option<String>,
    /// A gateway's certificate (`xgate://gateway/<id>`).
    #[arg(long, group = "who")]
    pub gateway: Option<String>,
    /// The citizen platform's certificate (`xgate://platform/<id>`).
    #[arg(long, group = "who")]
    pub platform: Option<String>,
}

impl IssueArgs {
    /// The identity asked for; a department must be in `catalog`.
    pub fn identity(&self, catalog: &Catalog) -> anyhow::Result<Identity> {
        let (kind, id) = match (
            &self.department,
            &self.requester,
            &self.admin,
            &self.auditor,
            &self.gateway,
            &self.platform,
        ) {
            (Some(d), ..) => {
                if catalog.department(d).is_none() {
                    anyhow::bail!("department `{d}` is not in the catalog");
                }
                ("department", d)
            }
            (_, Some(r), ..) => ("requester", r),
            (_, _, Some(a), ..) => ("admin", a),
            (_, _, _, Some(a), ..) => ("auditor", a),
            (_, _, _, _, Some(g), _) => ("gateway", g),
            (.., Some(p)) => ("platform", p),
            _ => anyhow::bail!(
                "name whom to issue for: --department, --requester, --admin, --auditor, --gateway or --platform"
            ),
        };
        Ok(Identity::new(kind, id)?)
    }
}

/// Issues the certificate of `args` from the dev CA in `args.dir`.
pub fn issue(args: &IssueArgs, catalog: &Catalog) -> anyhow::Result<xgate_tls::TlsFiles> {
    let identity = args.identity(catalog)?;
    if !args.dir.join("ca.pem").is_file() {
        anyhow::bail!(
            "`{}` holds no dev CA (`ca.pem`); create one with `xgate certs init --out {}`",
            args.dir.display(),
            args.dir.display()
        );
    }
    let out = args.out.clone().unwrap_or_else(|| args.dir.clone());
    Ok(devpki::issue(&args.dir, &identity, &out)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_a_department_certificate_from_the_dev_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        devpki::init(dir.path(), &[Identity::Admin("operator".into())]).expect("ca");
        let catalog = Catalog::builtin().expect("catalog");
        let args = |department: &str| IssueArgs {
            dir: dir.path().to_owned(),
            out: None,
            department: Some(department.into()),
            requester: None,
            admin: None,
            auditor: None,
            gateway: None,
            platform: None,
        };
        let files = issue(&args("tax"), &catalog).expect("issued");
        assert_eq!(
            files.identity().expect("identity"),
            Identity::Department("tax".into())
        );
        let err = issue(&args("no-such-dept"), &catalog).expect_err("unknown department");
        assert!(err.to_string().contains("not in the catalog"), "{err}");
        let empty = tempfile::tempdir().expect("tempdir");
        let err = issue(
            &IssueArgs {
                dir: empty.path().to_owned(),
                ..args("tax")
            },
            &catalog,
        )
        .expect_err("no CA");
        assert!(err.to_string().contains("no dev CA"), "{err}");
    }
}
