//! `xgate code`: the demo's stand-in for the province's identity platform
//! and the citizen's app. `keygen` creates an issuer key; `issue` signs a
//! subject code and shows it as text, as a QR code in the terminal and as
//! PNG — what the hall's scanner would read.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use qrcode::{EcLevel, QrCode};
use xgate_code::{Issuer, Scope};

/// `xgate code ...`.
#[derive(clap::Subcommand, Debug)]
pub enum CodeCommand {
    /// Create an issuer's Ed25519 key (PKCS#8, 0600) and print the line a
    /// gateway's `[subject_codes.issuers]` needs to trust it.
    Keygen {
        /// The issuer's name (the codes' `iss`).
        #[arg(long)]
        issuer: String,
        /// Where to write the key; refused if it exists.
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue a subject code (at most 5 minutes, single use).
    Issue(IssueArgs),
}

#[derive(clap::Args, Debug)]
pub struct IssueArgs {
    /// The issuer's name.
    #[arg(long)]
    pub issuer: String,
    /// The issuer's key (from `xgate code keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// The subject's ID number (resident ID or USCC).
    #[arg(long)]
    pub subject: String,
    /// Seconds the code is valid (1..=300).
    #[arg(long, default_value_t = 300)]
    pub ttl: i64,
    /// Only this requester may use it.
    #[arg(long)]
    pub requester: Option<String>,
    /// Only for this purpose code.
    #[arg(long)]
    pub purpose: Option<String>,
    /// Only for this approval item.
    #[arg(long)]
    pub item: Option<String>,
    /// Only these record types (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub types: Vec<String>,
    /// Also write the QR code as a PNG image.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
    /// Print only the code (no QR code in the terminal): for scripts.
    #[arg(long)]
    pub quiet: bool,
}

pub fn run(command: CodeCommand) -> anyhow::Result<()> {
    match command {
        CodeCommand::Keygen { issuer, out } => {
            let public = keygen(&issuer, &out)?;
            crate::outln!("issuer key written to {}", out.display())?;
            crate::outln!("trust it in the gateway's configuration:")?;
            crate::outln!()?;
            crate::outln!("[subject_codes.issuers]")?;
            crate::outln!("{issuer} = \"{public}\"")?;
            Ok(())
        }
        CodeCommand::Issue(args) => {
            let token = issue(&args)?;
            crate::outln!("{token}")?;
            if let Some(path) = &args.png {
                write_png(&token, path)?;
            }
            if !args.quiet {
                crate::outln!()?;
                crate::outln!("{}", terminal_qr(&token)?)?;
            }
            Ok(())
        }
    }
}

/// Writes a new issuer key to `out` (0600, never over an existing file);
/// returns its public key in hex.
pub fn keygen(issuer: &str, out: &Path) -> anyhow::Result<String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let pkcs8 = Issuer::generate_pkcs8()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("creating `{}`", out.display()))?;
    file.write_all(&pkcs8)?;
    Ok(Issuer::from_pkcs8(issuer, &pkcs8)?.public_key_hex())
}

/// The issuer whose key is in `key`.
pub fn load_issuer(issuer: &str, key: &Path) -> anyhow::Result<Issuer> {
    let pkcs8 = std::fs::read(key).with_context(|| format!("reading `{}`", key.display()))?;
    Issuer::from_pkcs8(issuer, &pkcs8).with_context(|| format!("`{}`", key.display()))
}

pub fn issue(args: &IssueArgs) -> anyhow::Result<String> {
    let issuer = load_issuer(&args.issuer, &args.key)?;
    let kind = crate::fetch::guess_kind(&args.subject);
    xgate_catalog::ids::validate(kind, &args.subject)
        .with_context(|| format!("`{}` is not a valid ID number", args.subject))?;
    let scope = Scope {
        requester: args.requester.clone(),
        purpose: args.purpose.clone(),
        approval_item: args.item.clone(),
        record_types: args.types.clone(),
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(issuer.issue(kind, &args.subject, args.ttl, &scope, now)?)
}

fn qr(token: &str) -> anyhow::Result<QrCode> {
    QrCode::with_error_correction_level(token, EcLevel::M).context("encoding the QR code")
}

/// The QR code in half-block characters (two modules per character row),
/// with the quiet zone scanners need.
pub fn terminal_qr(token: &str) -> anyhow::Result<String> {
    Ok(qr(token)?
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build())
}

/// The QR code as a black-on-white grayscale PNG, 8 pixels per module and a
/// 4-module quiet zone.
pub fn write_png(token: &str, path: &Path) -> anyhow::Result<()> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let code = qr(token)?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (x, y) = ((i % modules + QUIET) * SCALE, (i / modules + QUIET) * SCALE);
            for row in y..y + SCALE {
                pixels[row * side + x..row * side + x + SCALE].fill(0);
            }
        }
    }
    let file =
        std::fs::File::create(path).with_context(|| format!("creating `{}`", path.display()))?;
    let side = u32::try_from(side).context("QR code too large")?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_code_verifies_and_renders() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("issuer.pk8");
        let public = keygen("demo-identity", &key).unwrap();
        assert!(
            keygen("demo-identity", &key).is_err(),
            "never overwrites a key"
        );
        let args = IssueArgs {
            issuer: "demo-identity".into(),
            key: key.clone(),
            subject: "110101199003077571".into(),
            ttl: 120,
            requester: Some("approval-hall-demo".into()),
            purpose: None,
            item: None,
            types: vec![],
            png: None,
            quiet: true,
        };
        let token = issue(&args).unwrap();
        let mut verifier = xgate_code::Verifier::new();
        verifier.trust("demo-identity", &public).unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let code = verifier.verify(&token, now).unwrap();
        assert_eq!(code.scope.requester.as_deref(), Some("approval-hall-demo"));
        assert!(terminal_qr(&token).unwrap().lines().count() > 10);
        let png_path = dir.path().join("code.png");
        write_png(&token, &png_path).unwrap();
        let bytes = std::fs::read(&png_path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let bad = IssueArgs {
            subject: "110101199003077579".into(),
            ..args
        };
        assert!(issue(&bad).is_err(), "a wrong check digit is refused");
    }
}
