//! `zt4ai scan`: the content inspector on a file or stdin.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::ValueEnum;
use zt4ai_pipeline::inspect::{Detectors, Finding, FindingKind, Inspector, Provenance};

/// Which detectors `scan` runs.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Detector {
    /// Prompt injection (direct jailbreaks and instructions hidden in content).
    Injection,
    /// Sensitive data (contact details, cards, IBANs, credentials, keys, markings, dictionaries).
    Sensitive,
    /// Both.
    All,
}

/// Who wrote the text `scan` inspects.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum From {
    /// Content from outside: tool output or arguments, a page, a document.
    Untrusted,
    /// The principal's own message to a model (a user or system message).
    Principal,
}

/// Exit status when something was found.
pub const FOUND: u8 = 2;

/// Scans `file` (or stdin for `-`) and prints the findings; returns 0 when
/// nothing was found and [`FOUND`] when something was.
pub fn run(
    inspection: &zt4ai_core::inventory::Inspection,
    key: [u8; 32],
    file: &Path,
    detector: Detector,
    threshold: Option<f32>,
    from: From,
    json: bool,
) -> Result<ExitCode> {
    let text = if file.as_os_str() == "-" {
        crate::read_stdin()?
    } else {
        let bytes = std::fs::read(file).with_context(|| format!("reading `{}`", file.display()))?;
        String::from_utf8(bytes).map_err(|e| {
            anyhow::anyhow!(
                "`{}` is not UTF-8 text (invalid byte at offset {})",
                file.display(),
                e.utf8_error().valid_up_to()
            )
        })?
    };
    let mut settings = inspection.clone();
    if let Some(t) = threshold {
        anyhow::ensure!(
            t > 0.0 && t < 1.0,
            "--threshold `{t}` is not a probability strictly between 0 and 1"
        );
        settings.injection_threshold = Some(t);
    }
    let inspector = Inspector::from_inventory(&settings, key)?;
    let detectors = match detector {
        Detector::Injection => Detectors::Injection,
        Detector::Sensitive => Detectors::Sensitive,
        Detector::All => Detectors::All,
    };
    let provenance = match from {
        From::Untrusted => Provenance::Untrusted,
        From::Principal => Provenance::Principal,
    };
    let findings = inspector.inspect_as(&text, detectors, provenance);
    let name = file.display().to_string();
    if json {
        let out = serde_json::json!({
            "file": name,
            "bytes": text.len(),
            "from": match from {
                From::Untrusted => "untrusted",
                From::Principal => "principal",
            },
            "injection_threshold": inspector.injection().threshold_for(provenance),
            "found": !findings.is_empty(),
            "findings": findings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if findings.is_empty() {
        println!("{name}: nothing found");
    } else {
        println!("{name}: {} finding(s)", findings.len());
        for f in &findings {
            println!("  {}", describe(f, &text));
        }
    }
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FOUND)
    })
}

/// One line per finding. Sensitive values are masked (first and last two
/// characters); injections are quoted, since their wording is the evidence.
fn describe(f: &Finding, text: &str) -> String {
    let excerpt = text.get(f.span.start..f.span.end).unwrap_or("");
    let kind = f.kind.to_string();
    let shown = match &f.kind {
        FindingKind::PromptInjection => quote(excerpt, 100),
        FindingKind::Sensitive(_) => mask(excerpt),
    };
    let digest = f
        .digest
        .as_deref()
        .map_or(String::new(), |d| format!("  digest {d}"));
    format!(
        "{kind}  bytes {}..{}  score {:.3}  via {}  {}{digest}  {shown}",
        f.span.start,
        f.span.end,
        f.score,
        f.via.as_str(),
        f.rule
    )
}

fn quote(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut cut: String = one_line.chars().take(max).collect();
    if one_line.chars().count() > max {
        cut.push('…');
    }
    format!("{cut:?}")
}

fn mask(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= 6 {
        return "\"…\"".to_owned();
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("\"{head}…{tail}\" ({} chars)", chars.len())
}

/// The key that findings' hashes are made with: the SHA-256 of the secret in
/// `inspect.key` in the data directory, created (0600) on first use.
pub fn key(dir: &Path) -> Result<[u8; 32]> {
    use sha2::Digest as _;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the data directory `{}`", dir.display()))?;
    let path: PathBuf = dir.join(KEY_FILE);
    let secret = crate::secret_file(&path)?;
    anyhow::ensure!(
        secret.len() >= 32,
        "`{}` holds {} characters; the finding-hash key needs at least 32",
        path.display(),
        secret.len()
    );
    Ok(sha2::Sha256::digest(secret.as_bytes()).into())
}

/// A key for one run (digests then match only within it).
pub fn ephemeral_key() -> Result<[u8; 32]> {
    use sha2::Digest as _;
    let secret = zt4ai_identity::new_secret()?;
    Ok(sha2::Sha256::digest(secret.as_bytes()).into())
}

/// The file in the data directory that keys findings' hashes.
pub const KEY_FILE: &str = "inspect.key";
