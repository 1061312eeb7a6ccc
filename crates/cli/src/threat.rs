//! `zt4ai threat-model`: the threat model derived from the inventory.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::ValueEnum;
use zt4ai_assess::threat::model::{Mitigation, ThreatModel};
use zt4ai_assess::threat::{derive, render};
use zt4ai_assess::{Catalogue, Deployment, Options};

use crate::load;

/// Threat model formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The threat-model document (with the Mermaid diagram).
    Markdown,
    /// Elements, boundaries, flows and threats as JSON.
    Json,
    /// The data-flow diagram as Mermaid.
    Mermaid,
    /// The data-flow diagram as Graphviz DOT.
    Dot,
    /// The data-flow diagram as SVG (needs Graphviz's `dot` on PATH).
    Svg,
}

impl Format {
    /// File name in an output directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Format::Markdown => "threat-model.md",
            Format::Json => "threat-model.json",
            Format::Mermaid => "threat-model.mmd",
            Format::Dot => "threat-model.dot",
            Format::Svg => "threat-model.svg",
        }
    }
}

/// `zt4ai threat-model` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Formats; repeatable. Without --output only one may be given (stdout).
    #[arg(long, short = 'f', value_enum, default_value = "markdown")]
    format: Vec<Format>,
    /// Directory to write into (`threat-model.{md,json,mmd,dot,svg}`).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Exit with status 2 when a threat is unmitigated.
    #[arg(long)]
    fail_on_unmitigated: bool,
}

/// Derives the model of the deployment `source` names.
pub fn model(source: &crate::Source) -> Result<ThreatModel> {
    let sources = load::sources(source).map_err(anyhow::Error::msg)?;
    let d = Deployment::load(
        &sources.text,
        &sources.name,
        sources.policies,
        Options::default(),
    )?;
    Ok(derive::derive(&d, &Catalogue::builtin()?))
}

/// The text of one format; `None` for SVG without Graphviz.
pub fn render_one(m: &ThreatModel, f: Format) -> Result<Option<String>> {
    Ok(Some(match f {
        Format::Markdown => render::markdown(m),
        Format::Json => render::json(m),
        Format::Mermaid => render::mermaid(m),
        Format::Dot => render::dot(m),
        Format::Svg => match render::svg(m).map_err(anyhow::Error::msg)? {
            Some(svg) => svg,
            None => return Ok(None),
        },
    }))
}

/// Runs the command.
pub fn run(source: &crate::Source, args: Args) -> Result<ExitCode> {
    if args.output.is_none() && args.format.len() > 1 {
        bail!("several --format values need --output DIR (stdout takes one)");
    }
    let m = model(source)?;
    match &args.output {
        None => {
            let f = args.format.first().copied().unwrap_or(Format::Markdown);
            let Some(text) = render_one(&m, f)? else {
                bail!(
                    "SVG needs Graphviz: `dot` was not found on PATH (Debian: apt-get install graphviz); --format dot writes the source"
                );
            };
            std::io::stdout()
                .lock()
                .write_all(text.as_bytes())
                .context("writing to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating `{}`", dir.display()))?;
            for f in &args.format {
                match render_one(&m, *f)? {
                    Some(text) => {
                        let path = dir.join(f.file_name());
                        crate::assess::write_atomic(&path, &text)?;
                        eprintln!("wrote {}", path.display());
                    }
                    None => eprintln!("skipped {}: Graphviz's `dot` is not on PATH", f.file_name()),
                }
            }
        }
    }
    let count = |s: Mitigation| m.threats.iter().filter(|t| t.status == s).count();
    let unmitigated = count(Mitigation::Unmitigated);
    eprintln!(
        "{} threats: {unmitigated} unmitigated, {} partly mitigated, {} mitigated",
        m.threats.len(),
        count(Mitigation::PartlyMitigated),
        count(Mitigation::Mitigated)
    );
    if args.fail_on_unmitigated && unmitigated > 0 {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
