//! CI's short fuzz run: every saved input of every target (seeds, plus whatever
//! AFL++ runs found and `run.sh` saved as regressions), then a fixed number of
//! seeded mutations of each — deterministic, so a failure reproduces.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("ids", xgate_fuzz::ids),
    ("fetch", xgate_fuzz::fetch),
    ("mapping", xgate_fuzz::mapping),
    ("policy", xgate_fuzz::policy),
    ("audit-export", xgate_fuzz::audit_export),
];

/// Mutations per saved input; the policy target rebuilds a Cedar policy set per
/// input, so it gets fewer.
fn mutations(target: &str) -> usize {
    match target {
        "policy" => 12,
        "audit-export" => 60,
        _ => 300,
    }
}

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no input", dir.display());
    files
}

/// xorshift64*: a fixed sequence, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One AFL-style havoc step: flip a bit, set an interesting byte, insert or
/// delete a run, duplicate a slice, or truncate.
fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(6) {
            0 if len > 0 => {
                let at = rng.below(len);
                out[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                out[at] = [0, 0x7f, 0x80, 0xff, b'\n', b'"', b'[', b'='][rng.below(8)];
            }
            2 => {
                let at = rng.below(len + 1);
                let run = vec![rng.next() as u8; 1 + rng.below(16)];
                out.splice(at..at, run);
            }
            3 if len > 1 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(32)).min(len);
                out.drain(at..end);
            }
            4 if len > 1 => {
                let at = rng.below(len);
                let end = (at + 1 + rng.below(64)).min(len);
                let copy = out[at..end].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, copy);
            }
            _ => out.truncate(rng.below(len + 1)),
        }
    }
    out
}

#[test]
fn every_saved_input_and_its_mutations_pass_every_target() {
    for (name, target) in TARGETS {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ name.len() as u64);
        for path in corpus(name) {
            let input = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            target(&input);
            for _ in 0..mutations(name) {
                target(&mutate(&input, &mut rng));
            }
        }
    }
}

#[test]
fn the_seeds_reach_past_the_first_refusal() {
    // A seed that the parser refuses at once would leave AFL++ nothing deep to
    // mutate from: the fetch seeds must validate, the export must verify.
    use prost::Message as _;
    let catalog = xgate_catalog::Catalog::builtin().expect("catalog");
    let policies =
        xgate_policy::PolicySet::from_sources(&xgate_policy::PolicySet::builtin_files(), &catalog)
            .expect("policies");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for seed in ["by-types.bin", "by-item.bin", "views.bin"] {
        let bytes = std::fs::read(dir.join("fetch").join(seed)).expect("seed");
        let request = xgate_proto::v1::FetchRequest::decode(bytes.as_slice()).expect("decodes");
        let checked = xgate::validate::fetch(
            &request,
            &catalog,
            &policies,
            &xgate::config::Limits::default(),
        );
        assert!(checked.is_ok(), "{seed}: {:?}", checked.err());
    }
    let text = std::fs::read_to_string(dir.join("audit-export").join("export.txt")).expect("seed");
    let (keys, export) = text.split_once('\n').expect("two parts");
    let anchors = xgate_audit::PublicKeys::parse(keys).expect("keys");
    let report = xgate_audit::verify_export(export.as_bytes(), &anchors).expect("parses");
    assert!(report.is_ok(), "{report}");
    // 40 answers, the admin event, and the key-added event the log writes when it opens.
    assert_eq!(report.entries(), 42);
    assert!(report.checkpoints_verified() >= 1, "{report}");
    for name in ["resident.txt", "resident-x.txt", "uscc.txt"] {
        let id = std::fs::read_to_string(dir.join("ids").join(name)).expect("seed");
        let kind = if name.starts_with("uscc") {
            xgate_catalog::SubjectKind::Uscc
        } else {
            xgate_catalog::SubjectKind::ResidentId
        };
        assert!(
            xgate_catalog::ids::validate(kind, &id).is_ok(),
            "{name}: {id}"
        );
    }
}
