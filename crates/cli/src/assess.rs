//! `zt4ai assess`: the posture assessment.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::ValueEnum;
use zt4ai_assess::report::{compare, html, json, markdown, sarif};
use zt4ai_assess::{Catalogue, Deployment, Options, Report, Severity, Status};

use crate::load;

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Markdown summary.
    Markdown,
    /// The full report as JSON (what `--compare` reads).
    Json,
    /// SARIF 2.1.0, for code-scanning tools (config and policy findings).
    Sarif,
    /// One self-contained HTML page.
    Html,
}

impl Format {
    fn file_name(self) -> &'static str {
        match self {
            Format::Markdown => "assessment.md",
            Format::Json => "assessment.json",
            Format::Sarif => "assessment.sarif",
            Format::Html => "assessment.html",
        }
    }
}

/// Severity threshold for `--fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    /// A failed critical control.
    Critical,
    /// A failed critical or high control.
    High,
    /// A failed control of medium severity or above.
    Medium,
    /// Any failed control.
    Low,
}

impl FailOn {
    fn severity(self) -> Severity {
        match self {
            FailOn::Critical => Severity::Critical,
            FailOn::High => Severity::High,
            FailOn::Medium => Severity::Medium,
            FailOn::Low => Severity::Low,
        }
    }
}

/// Exit status when `--fail-on` is met.
pub const GATE_FAILED: u8 = 2;

/// `zt4ai assess` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Report formats; repeatable. Without --output only one may be given, and
    /// it goes to stdout.
    #[arg(long, short = 'f', value_enum, default_value = "markdown")]
    format: Vec<Format>,
    /// Directory to write the reports into (`assessment.{md,json,sarif,html}`),
    /// with the threat model beside them (`threat-model.{md,json}`).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// An earlier JSON report: show what improved and what regressed.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Exit with status 2 when a control of this severity or above failed.
    #[arg(long, value_enum)]
    fail_on: Option<FailOn>,
    /// The server's data directory, to check its audit log (signatures,
    /// dormant agents, repeated denials). Without it those checks are skipped.
    #[arg(long, env = "ZT4AI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A running gateway's base URL (`https://zt4ai.example:8080`), to probe it
    /// (authentication required, kill switch, audit, metrics, health).
    #[arg(long)]
    gateway: Option<String>,
    /// File holding the gateway's admin token (for the kill-switch and audit
    /// probes). Default: `ZT4AI_ADMIN_TOKEN`, else `admin-token` in --data-dir.
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// Agents with no audited activity for this many days count as dormant.
    #[arg(long, default_value_t = 30)]
    dormant_days: u64,
    /// Timestamp of the report, in seconds since the Unix epoch (for
    /// reproducible reports). Default: now.
    #[arg(long)]
    at: Option<u64>,
    /// Show progress on stderr even when it is not a terminal.
    #[arg(long)]
    progress: bool,
}

/// Runs the assessment and writes the reports.
pub fn run(source: &crate::Source, args: Args) -> Result<ExitCode> {
    if args.output.is_none() && args.format.len() > 1 {
        bail!("several --format values need --output DIR (stdout takes one report)");
    }
    let earlier = match &args.compare {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the earlier report `{}`", p.display()))?;
            Some(json::read(&text, &p.display().to_string())?)
        }
        None => None,
    };
    if let Some(dir) = &args.data_dir
        && !dir.is_dir()
    {
        bail!("--data-dir `{}` is not a directory", dir.display());
    }
    if let Some(url) = &args.gateway {
        let parsed =
            url::Url::parse(url).with_context(|| format!("--gateway `{url}` is not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            bail!("--gateway `{url}`: expected http(s)://host[:port]");
        }
    }
    let catalogue = Catalogue::builtin()?;
    let sources = load::sources(source).map_err(anyhow::Error::msg)?;
    let now = args
        .at
        .unwrap_or_else(|| u64::try_from(zt4ai_core::unix_now()).unwrap_or(0));
    let options = Options {
        dormant_days: args.dormant_days,
        now,
    };
    let mut d = Deployment::load(&sources.text, &sources.name, sources.policies, options)?;
    let show = args.progress || std::io::stderr().is_terminal();
    if let Some(dir) = &args.data_dir {
        if show {
            eprintln!("reading the audit log in {}", dir.display());
        }
        d.audit = Some(zt4ai_assess::checks::audit::read(
            dir,
            now,
            args.dormant_days,
        ));
        d.data_dir = Some(dir.display().to_string());
    }
    if let Some(url) = &args.gateway {
        let token = admin_token(args.admin_token_file.as_deref(), args.data_dir.as_deref())?;
        if show {
            eprintln!("probing the gateway at {url}");
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        d.live = Some(rt.block_on(zt4ai_assess::checks::live::probe(
            url,
            token.as_deref(),
            Duration::from_secs(10),
        )));
        d.gateway = Some(url.clone());
    }
    let terminal = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut last_shown = 0usize;
    let mut progress = |i: usize, total: usize, id: &str| {
        // A line that rewrites itself on a terminal; otherwise a line per
        // quarter, so logs stay short.
        let step = if terminal {
            1
        } else {
            total.div_ceil(4).max(1)
        };
        if !show || (i != total && i < last_shown + step) {
            return;
        }
        last_shown = i;
        let mut err = std::io::stderr().lock();
        let elapsed = started.elapsed().as_secs_f64();
        let _ = if terminal {
            write!(
                err,
                "\rassessing: {i}/{total} controls, {elapsed:.1} s {id:<14}"
            )
        } else {
            writeln!(err, "assessing: {i}/{total} controls, {elapsed:.1} s {id}")
        };
        if terminal && i == total {
            let _ = writeln!(err);
        }
    };
    let mut report =
        zt4ai_assess::assess(&d, &catalogue, &zt4ai_assess::rfc3339(now), &mut progress);
    if let Some(e) = &earlier {
        report.comparison = Some(compare::compare(e, &report));
    }
    match &args.output {
        None => {
            let f = args.format.first().copied().unwrap_or(Format::Markdown);
            let mut out = std::io::stdout().lock();
            out.write_all(render(&report, f).as_bytes())
                .context("writing the report to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating `{}`", dir.display()))?;
            // The threat model of the same deployment, beside the reports they link to.
            let model = zt4ai_assess::threat::derive::derive(&d, &catalogue);
            for f in [crate::threat::Format::Markdown, crate::threat::Format::Json] {
                if let Some(text) = crate::threat::render_one(&model, f)? {
                    write_atomic(&dir.join(f.file_name()), &text)?;
                }
            }
            if let Some(t) = &mut report.threat_model {
                t.document = Some(crate::threat::Format::Markdown.file_name().to_owned());
            }
            for f in &args.format {
                let path = dir.join(f.file_name());
                write_atomic(&path, &render(&report, *f))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    eprintln!("{}", summary_line(&report));
    if let Some(gate) = args.fail_on {
        let failed: Vec<&str> = report
            .results
            .iter()
            .filter(|r| r.status == Status::Failed && r.severity >= gate.severity())
            .map(|r| r.control.as_str())
            .collect();
        if !failed.is_empty() {
            eprintln!(
                "--fail-on {}: {} failed: {}",
                gate.severity().name(),
                failed.len(),
                failed.join(", ")
            );
            return Ok(ExitCode::from(GATE_FAILED));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn render(report: &Report, f: Format) -> String {
    match f {
        Format::Markdown => markdown::render(report),
        Format::Json => json::render(report),
        Format::Sarif => sarif::to_string(report),
        Format::Html => html::render(report),
    }
}

fn summary_line(r: &Report) -> String {
    let score = r
        .score
        .map_or_else(|| "n/a".to_owned(), |s| format!("{s:.1}"));
    format!(
        "score {score}/100, maturity {}: {} passed, {} failed, {} to investigate, {} skipped, {} manual",
        r.maturity.title(),
        r.counts.passed,
        r.counts.failed,
        r.counts.investigate,
        r.counts.skipped,
        r.counts.manual
    )
}

/// Writes through a temporary file and a rename, so a reader never sees half a
/// report and a failed run leaves the previous one in place.
pub(crate) fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to `{}`", path.display()))
}

fn admin_token(file: Option<&Path>, data_dir: Option<&Path>) -> Result<Option<String>> {
    if let Some(f) = file {
        let t = std::fs::read_to_string(f)
            .with_context(|| format!("reading the admin token `{}`", f.display()))?;
        return Ok(Some(t.trim().to_owned()));
    }
    if let Ok(t) = std::env::var("ZT4AI_ADMIN_TOKEN")
        && !t.is_empty()
    {
        return Ok(Some(t));
    }
    if let Some(dir) = data_dir {
        let f = dir.join(crate::ADMIN_TOKEN_FILE);
        if f.exists() {
            let t = std::fs::read_to_string(&f)
                .with_context(|| format!("reading the admin token `{}`", f.display()))?;
            return Ok(Some(t.trim().to_owned()));
        }
    }
    Ok(None)
}
