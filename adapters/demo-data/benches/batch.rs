//! One screening batch of 1,000 citizens × 1 record type (`pension_entitlement`) against a
//! seeded demo database: set-based (`Department::lookup_batch`) against 1,000 single lookups
//! (one after another, and the SDK's fallback `lookup_each`, 16 at a time), in the
//! table-backed department (what the department binaries serve) and in the SQL adapter with
//! the demo mapping over the same SQLite file; then the same through the SDK's gRPC service
//! over mTLS on loopback (one `BatchLookup` streaming 1,000 answers, against 1,000 `Lookup`s
//! 16 at a time), as the gateway would call it.
//!
//! `cargo bench -p xgate-demo-data --bench batch`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tonic::transport::Channel;
use xgate_adapter_sdk::{AdapterArgs, Department, Subject, lookup_each};
use xgate_catalog::SubjectKind;
use xgate_proto::v1::department_adapter_client::DepartmentAdapterClient;
use xgate_proto::v1::{BatchLookupRequest, LookupRequest};
use xgate_tls::Identity;

const SUBJECTS: usize = 1_000;
const RECORD_TYPE: &str = "pension_entitlement";
const DEPARTMENT: &str = "human-resources-social-security";

fn bench_department<D: Department>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    dept: &D,
    subjects: &[Subject],
) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(subjects.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function(BenchmarkId::new("batch", subjects.len()), |b| {
        b.iter(|| rt.block_on(dept.lookup_batch(subjects, RECORD_TYPE)));
    });
    group.bench_function(BenchmarkId::new("single_sequential", subjects.len()), |b| {
        b.iter(|| {
            rt.block_on(async {
                for subject in subjects {
                    dept.lookup(subject, RECORD_TYPE).await.unwrap();
                }
            })
        });
    });
    group.bench_function(BenchmarkId::new("single_fallback16", subjects.len()), |b| {
        b.iter(|| rt.block_on(lookup_each(dept, subjects, RECORD_TYPE)));
    });
    group.finish();
}

/// `dept` served by the SDK on loopback, and a gateway's client of it.
fn serve<D: Department>(
    rt: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    dept: D,
) -> (
    DepartmentAdapterClient<Channel>,
    tokio::sync::oneshot::Sender<()>,
) {
    xgate_tls::install_crypto_provider();
    let department = Identity::Department(DEPARTMENT.into());
    let gateway = Identity::Gateway("main".into());
    let pki =
        xgate_tls::devpki::init(&dir.join("pki"), &[department.clone(), gateway.clone()]).unwrap();
    let files = pki.files(&department);
    // A free port (the SDK prints the one it binds on stdout only).
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let args = AdapterArgs {
        listen,
        cert: files.cert,
        key: files.key,
        ca: files.ca,
        gateway: None,
        advertise: None,
        adapter_id: None,
        replace: false,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(xgate_adapter_sdk::serve_with_shutdown(dept, args, async {
        let _ = stopped.await;
    }));
    let tls = pki.files(&gateway).client_config("127.0.0.1").unwrap();
    let endpoint = Channel::from_shared(format!("https://{listen}"))
        .unwrap()
        .tls_config(tls)
        .unwrap();
    let channel = rt.block_on(async {
        for _ in 0..100 {
            if let Ok(channel) = endpoint.connect().await {
                return channel;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the adapter did not start");
    });
    (
        DepartmentAdapterClient::new(channel).max_decoding_message_size(16 << 20),
        stop,
    )
}

fn bench_grpc(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    client: &DepartmentAdapterClient<Channel>,
    subjects: &[Subject],
) {
    use futures::StreamExt as _;
    let proto: Vec<xgate_proto::v1::Subject> = subjects
        .iter()
        .map(|s| xgate_proto::v1::Subject {
            kind: xgate_proto::kind::to_proto(s.kind) as i32,
            id: s.id.clone(),
        })
        .collect();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(subjects.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function(BenchmarkId::new("batch_lookup", subjects.len()), |b| {
        b.iter(|| {
            rt.block_on(async {
                let request = BatchLookupRequest {
                    subjects: proto.clone(),
                    record_types: vec![RECORD_TYPE.into()],
                    request_id: "bench".into(),
                    purpose: "SCREENING".into(),
                };
                let mut stream = client
                    .clone()
                    .batch_lookup(request)
                    .await
                    .unwrap()
                    .into_inner();
                let mut answers = 0;
                while let Some(answer) = stream.message().await.unwrap() {
                    answers += answer.answers.len();
                }
                assert_eq!(answers, subjects.len());
            })
        });
    });
    group.bench_function(
        BenchmarkId::new("lookup_concurrent16", subjects.len()),
        |b| {
            b.iter(|| {
                rt.block_on(async {
                    futures::stream::iter(proto.iter().cloned())
                        .map(|subject| {
                            let mut client = client.clone();
                            async move {
                                client
                                    .lookup(LookupRequest {
                                        subject: Some(subject),
                                        record_types: vec![RECORD_TYPE.into()],
                                        request_id: "bench".into(),
                                        purpose: "SCREENING".into(),
                                    })
                                    .await
                                    .unwrap()
                            }
                        })
                        .buffer_unordered(16)
                        .count()
                        .await
                })
            });
        },
    );
    group.finish();
}

fn batch(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = xgate_demo_data::DEPARTMENTS
        .iter()
        .find(|d| d.id == DEPARTMENT)
        .unwrap();
    let db = dir.path().join(format!("{DEPARTMENT}.db"));
    rt.block_on(spec.seed(&db, 2 * SUBJECTS as u32, 100))
        .unwrap();
    let population = xgate_synth::Population::generate(SUBJECTS as u32, 1);
    let subjects: Vec<Subject> = population
        .citizens
        .iter()
        .map(|c| Subject {
            kind: SubjectKind::ResidentId,
            id: c.id_number.clone(),
        })
        .collect();

    let table = rt.block_on(spec.open(&db)).unwrap();
    let found = rt
        .block_on(table.lookup_batch(&subjects, RECORD_TYPE))
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|v| !v.is_empty()))
        .count();
    eprintln!("{found} of {SUBJECTS} subjects hold a `{RECORD_TYPE}`");
    bench_department(c, &rt, "synth", &table, &subjects);
    let (client, stop_synth) = serve(&rt, &dir.path().join("synth"), table);
    bench_grpc(c, &rt, "grpc_synth", &client, &subjects);

    let mapping_path = dir.path().join(format!("{DEPARTMENT}.toml"));
    std::fs::write(&mapping_path, xgate_demo_data::mapping(DEPARTMENT).unwrap()).unwrap();
    let mapping = xgate_adapter_sql::Mapping::load(&mapping_path).unwrap();
    let catalog = xgate_catalog::Catalog::builtin().unwrap();
    let sql = rt
        .block_on(xgate_adapter_sql::SqlDepartment::connect(
            &mapping, &catalog, None,
        ))
        .unwrap();
    bench_department(c, &rt, "sql_sqlite", &sql, &subjects);
    let (client, stop_sql) = serve(&rt, &dir.path().join("sql"), sql);
    bench_grpc(c, &rt, "grpc_sql_sqlite", &client, &subjects);
    let _ = (stop_synth.send(()), stop_sql.send(()));
}

criterion_group!(benches, batch);
criterion_main!(benches);
