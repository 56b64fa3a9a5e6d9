//! One test's world: a temporary folder with a dev PKI, logs and databases, and the launchers
//! of everything a test runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context as _;
use tempfile::TempDir;
use tonic::transport::Channel;
use xgate_catalog::Catalog;
use xgate_proto::v1::ListRecordTypesRequest;
use xgate_proto::v1::exchange_client::ExchangeClient;
use xgate_proto::v1::registry_client::RegistryClient;
use xgate_tls::TlsFiles;

use crate::client;
use crate::fixture::{FixtureAdapter, FixtureDepartment};
use crate::pki::TestPki;
use crate::process::{AdapterProcess, GatewayProcess};
use crate::{REGISTER_TIMEOUT, wait};

/// The demo subjects of the synthetic population every adapter seeds from.
#[derive(Debug, Clone)]
pub struct Subjects {
    /// Holds at least one record of every personal type.
    pub citizen: String,
    /// Has no marriage, vehicle or real-estate title.
    pub gappy_citizen: String,
    /// Holds every company type.
    pub company: String,
}

impl Subjects {
    fn generate() -> anyhow::Result<Subjects> {
        // The first people of any population are the same, so two citizens and one company
        // are those of the adapters' full population.
        let population = xgate_synth::Population::generate(2, 1);
        let citizen = |index: u32| {
            population
                .citizens
                .get(index as usize)
                .map(|c| c.id_number.clone())
                .with_context(|| format!("the synthetic population has no citizen {index}"))
        };
        Ok(Subjects {
            citizen: citizen(xgate_synth::SAMPLE_CITIZEN)?,
            gappy_citizen: citizen(xgate_synth::GAPPY_CITIZEN)?,
            company: population
                .companies
                .get(xgate_synth::SAMPLE_COMPANY as usize)
                .map(|c| c.uscc.clone())
                .context("the synthetic population has no sample company")?,
        })
    }
}

/// How to configure a gateway.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// Policy folder; the repository's `policies/` when `None`.
    pub policies_dir: Option<PathBuf>,
    /// `[limits]` counts, e.g. `("max_in_flight", 8)`.
    pub limits: Vec<(&'static str, u64)>,
    /// `[limits]` durations, e.g. `("adapter_timeout_cap", 2 s)`, written as `"2000ms"`.
    pub limit_durations: Vec<(&'static str, std::time::Duration)>,
    /// Catalog folder; the built-in catalog when `None`.
    pub catalog_dir: Option<PathBuf>,
    /// `watch_policies = false` when set: reloads only on SIGHUP or the admin RPC.
    pub no_policy_watch: bool,
    /// `[telemetry] metrics_listen = "127.0.0.1:0"` when set (address in the gateway log).
    pub metrics: bool,
    /// TOML appended to the file, e.g. `"[cache]\nenabled = false\n"`.
    pub extra_toml: String,
}

/// A temporary folder (`pki/`, `data/`, `logs/`, config files), the dev PKI, the catalog and
/// the sample subjects of one test. Everything is deleted when it is dropped.
pub struct TestEnv {
    dir: TempDir,
    pki: TestPki,
    catalog: Catalog,
    subjects: Subjects,
    serial: AtomicU32,
}

/// A TOML basic string (JSON string syntax is a subset of it).
fn toml_string(path: &Path) -> anyhow::Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("path `{}` is not UTF-8", path.display()))?;
    Ok(serde_json::to_string(text)?)
}

impl TestEnv {
    pub fn new() -> anyhow::Result<TestEnv> {
        xgate_tls::install_crypto_provider();
        let dir = tempfile::Builder::new()
            .prefix("xgate-it-")
            .tempdir()
            .context("creating the test folder")?;
        for sub in ["data", "logs"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        let pki = TestPki::create(&dir.path().join("pki"))?;
        Ok(TestEnv {
            dir,
            pki,
            catalog: Catalog::builtin()?,
            subjects: Subjects::generate()?,
            serial: AtomicU32::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The repository's `policies/`.
    pub fn repo_policies() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
    }

    /// A log file path not used before in this test.
    fn log_path(&self, name: &str) -> PathBuf {
        let n = self.serial.fetch_add(1, Ordering::SeqCst);
        self.dir().join("logs").join(format!("{n:02}-{name}.log"))
    }

    /// Writes a policy folder `name` with `files` (file name, Cedar text).
    pub fn write_policies(&self, name: &str, files: &[(&str, &str)]) -> anyhow::Result<PathBuf> {
        let dir = self.dir().join(name);
        std::fs::create_dir_all(&dir)?;
        for (file, text) in files {
            std::fs::write(dir.join(file), text)?;
        }
        Ok(dir)
    }

    /// Writes a policy folder `name` holding the repository's data files (purposes,
    /// approval items, requesters, screening items) and, as its only policies, the given
    /// Cedar `files`.
    pub fn write_policy_set(&self, name: &str, files: &[(&str, &str)]) -> anyhow::Result<PathBuf> {
        let dir = self.write_policies(name, files)?;
        for data in [
            "purposes.toml",
            "items.toml",
            "requesters.toml",
            "screening.toml",
        ] {
            std::fs::copy(Self::repo_policies().join(data), dir.join(data))?;
        }
        Ok(dir)
    }

    /// Writes `gateway.toml` (database `data/gateway.db`, the gateway's certificate).
    pub fn write_gateway_config(&self, options: &GatewayOptions) -> anyhow::Result<PathBuf> {
        let tls = self.pki.gateway();
        let policies = options
            .policies_dir
            .clone()
            .unwrap_or_else(Self::repo_policies);
        let mut text = format!(
            "listen = \"127.0.0.1:0\"\npolicies_dir = {}\ndatabase = {}\n\n[tls]\ncert = {}\nkey = {}\nca = {}\n",
            toml_string(&policies)?,
            toml_string(&self.dir().join("data").join("gateway.db"))?,
            toml_string(&tls.cert)?,
            toml_string(&tls.key)?,
            toml_string(&tls.ca)?,
        );
        if options.no_policy_watch {
            text.insert_str(0, "watch_policies = false\n");
        }
        if let Some(catalog) = &options.catalog_dir {
            text.insert_str(0, &format!("catalog_dir = {}\n", toml_string(catalog)?));
        }
        if !options.limits.is_empty() || !options.limit_durations.is_empty() {
            text.push_str("\n[limits]\n");
            for (key, value) in &options.limits {
                text.push_str(&format!("{key} = {value}\n"));
            }
            for (key, value) in &options.limit_durations {
                text.push_str(&format!("{key} = \"{}ms\"\n", value.as_millis()));
            }
        }
        if options.metrics {
            text.push_str("\n[telemetry]\nmetrics_listen = \"127.0.0.1:0\"\n");
        }
        if !options.extra_toml.is_empty() {
            text.push('\n');
            text.push_str(&options.extra_toml);
        }
        let path = self.dir().join("gateway.toml");
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Writes the configuration and starts the gateway binary on it.
    pub async fn start_gateway(&self, options: &GatewayOptions) -> anyhow::Result<GatewayProcess> {
        let config = self.write_gateway_config(options)?;
        self.start_gateway_with_config(&config).await
    }

    /// Starts the gateway binary on an existing configuration file.
    pub async fn start_gateway_with_config(&self, config: &Path) -> anyhow::Result<GatewayProcess> {
        GatewayProcess::start(config, &self.log_path("gateway")).await
    }

    /// Seeds, starts and waits for the registration of the real adapters of `departments`
    /// (in parallel); each must come to serve every catalog type of its department.
    pub async fn start_adapters(
        &self,
        departments: &[&str],
        gateway: &GatewayProcess,
    ) -> anyhow::Result<Vec<AdapterProcess>> {
        let seeding = departments.iter().map(|d| {
            let db = self.dir().join("data").join(format!("{d}.db"));
            let log = self.log_path(&format!("seed-{d}"));
            async move { AdapterProcess::seed(d, &db, &log).await }
        });
        futures::future::try_join_all(seeding).await?;
        let url = gateway.url();
        let starting = departments.iter().map(|d| {
            let db = self.dir().join("data").join(format!("{d}.db"));
            let log = self.log_path(&format!("adapter-{d}"));
            let tls = self.pki.department(d);
            let url = url.clone();
            async move { AdapterProcess::start(d, &db, &tls, &url, &log).await }
        });
        let adapters = futures::future::try_join_all(starting).await?;
        let types: Vec<String> = departments
            .iter()
            .flat_map(|d| self.catalog.types_of_department(d).map(|t| t.id.clone()))
            .collect();
        self.wait_for_sources(gateway.addr(), &types).await?;
        Ok(adapters)
    }

    /// [`Self::start_adapters`] for one department.
    pub async fn start_adapter(
        &self,
        department: &str,
        gateway: &GatewayProcess,
    ) -> anyhow::Result<AdapterProcess> {
        self.start_adapters(&[department], gateway)
            .await?
            .pop()
            .context("no adapter started")
    }

    /// Starts a fixture adapter with its department's certificate and waits until the gateway
    /// routes its types.
    pub async fn start_fixture(
        &self,
        dept: FixtureDepartment,
        gateway: &GatewayProcess,
    ) -> anyhow::Result<FixtureAdapter> {
        let tls = self.pki.department(dept.department_id());
        let fixture = FixtureAdapter::spawn(dept, &tls, &gateway.url());
        let types = fixture.types().to_vec();
        let registered = self.wait_for_sources(gateway.addr(), &types).await;
        if fixture.is_finished() {
            let department = fixture.department().to_owned();
            return Err(match fixture.stop().await {
                Err(e) => e.context(format!("the `{department}` fixture adapter failed")),
                Ok(()) => anyhow::anyhow!("the `{department}` fixture adapter stopped early"),
            });
        }
        registered?;
        Ok(fixture)
    }

    /// An Exchange client with the certificate of requester `requester`.
    pub async fn exchange(
        &self,
        addr: SocketAddr,
        requester: &str,
    ) -> anyhow::Result<ExchangeClient<Channel>> {
        self.exchange_as(addr, &self.pki.requester(requester)).await
    }

    /// An Exchange client with the certificate of `tls`.
    pub async fn exchange_as(
        &self,
        addr: SocketAddr,
        tls: &TlsFiles,
    ) -> anyhow::Result<ExchangeClient<Channel>> {
        Ok(client::exchange(client::connect(addr, tls).await?))
    }

    /// A Registry client with the certificate of `tls`.
    pub async fn registry_as(
        &self,
        addr: SocketAddr,
        tls: &TlsFiles,
    ) -> anyhow::Result<RegistryClient<Channel>> {
        Ok(client::registry(client::connect(addr, tls).await?))
    }

    /// Waits (at most [`REGISTER_TIMEOUT`]) until `ListRecordTypes` at `addr` shows a source
    /// for every one of `types`.
    pub async fn wait_for_sources(&self, addr: SocketAddr, types: &[String]) -> anyhow::Result<()> {
        let admin = self.pki.admin();
        let what = format!("the gateway at {addr} routing {types:?}");
        wait::until(&what, REGISTER_TIMEOUT, || {
            let admin = admin.clone();
            async move {
                let mut client = self.exchange_as(addr, &admin).await?;
                let list = client
                    .list_record_types(ListRecordTypesRequest::default())
                    .await?
                    .into_inner();
                let missing: Vec<&String> = types
                    .iter()
                    .filter(|t| {
                        !list
                            .record_types
                            .iter()
                            .any(|info| &info.id == *t && info.has_source)
                    })
                    .collect();
                if missing.is_empty() {
                    Ok(Some(()))
                } else {
                    Err(anyhow::anyhow!("still without a source: {missing:?}"))
                }
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_escape_quotes_and_backslashes() {
        let quoted = toml_string(Path::new("/tmp/a \"b\"\\c")).expect("utf-8 path");
        assert_eq!(quoted, r#""/tmp/a \"b\"\\c""#);
    }

    #[test]
    fn sample_subjects_have_valid_numbers() {
        let subjects = Subjects::generate().expect("subjects");
        for id in [&subjects.citizen, &subjects.gappy_citizen] {
            xgate_catalog::ids::validate_resident_id(id).expect("resident id");
        }
        xgate_catalog::ids::validate_uscc(&subjects.company).expect("uscc");
        assert_ne!(subjects.citizen, subjects.gappy_citizen);
    }

    #[test]
    fn gateway_config_names_every_file_and_the_limits() {
        let env = TestEnv::new().expect("env");
        let path = env
            .write_gateway_config(&GatewayOptions {
                policies_dir: None,
                limits: vec![("max_in_flight", 8)],
                limit_durations: vec![(
                    "adapter_timeout_cap",
                    std::time::Duration::from_millis(1234),
                )],
                ..GatewayOptions::default()
            })
            .expect("config");
        let text = std::fs::read_to_string(path).expect("read");
        assert!(text.contains("listen = \"127.0.0.1:0\""), "{text}");
        assert!(text.contains("gateway-xgate.pem"), "{text}");
        assert!(text.contains("gateway-xgate-key.pem"), "{text}");
        assert!(text.contains("ca.pem"), "{text}");
        assert!(text.contains("policies"), "{text}");
        assert!(
            text.ends_with("[limits]\nmax_in_flight = 8\nadapter_timeout_cap = \"1234ms\"\n"),
            "{text}"
        );
        assert!(TestEnv::repo_policies().join("guards.cedar").is_file());
    }
}
