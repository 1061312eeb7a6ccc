//! The HTML report: one self-contained page to open, share, archive and print.
//!
//! The page holds everything inline (styles, script, the report's data, the chart
//! as SVG) and loads nothing: a Content-Security-Policy allows inline styles and
//! scripts only, so it reads the same offline, from a mail attachment or from a
//! build artefact, and cannot call anywhere. The overview, the pillar chart, the
//! roadmap and the changes are rendered here, so they read and print without
//! script; the script adds the findings table with its filters and the details
//! panel, from the report embedded as JSON.
//!
//! Every string in a report comes from user-controlled configuration, so the
//! page is built to hold hostile text as text:
//!
//! - everything interpolated into HTML goes through [`escape`];
//! - the embedded JSON has `<`, `>` and `&` written as `\u003c`, `\u003e`,
//!   `\u0026`, so no string can close its `<script>` element (see [`script_json`]);
//! - the script builds the DOM with `textContent` and never parses data as HTML.
//!
//! For tests and automation, the script records uncaught errors in
//! `document.body.dataset.errors` and sets `document.body.dataset.ready = "1"`
//! once the table is filled.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{
    Change, Comparison, Level, Maturity, Phase, Pillar, PillarScore, Report, RoadmapItem, Severity,
    Status,
};

/// The page's Content-Security-Policy: inline styles and scripts, `data:`
/// images (the empty favicon) and nothing else, no network of any kind.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

/// The ids of the page's sections, in page order (`changes` only with a comparison).
pub const SECTIONS: [&str; 6] = [
    "overview", "pillars", "findings", "details", "roadmap", "changes",
];

const STYLE: &str = include_str!("assets/report.css");
const SCRIPT: &str = include_str!("assets/report.js");

/// Installed before anything else runs, so that even a script that fails to
/// parse leaves a trace in `data-errors`.
const ERROR_HOOK: &str = r#"window.onerror = function (message, source, line, column) {
  var text = String(message) + (line ? " (line " + line + ":" + column + ")" : "");
  var target = document.body || document.documentElement;
  target.dataset.errors = target.dataset.errors ? target.dataset.errors + "\n" + text : text;
  return false;
};
window.addEventListener("unhandledrejection", function (event) {
  window.onerror("unhandled rejection: " + event.reason);
});"#;

/// Renders `report` as a complete HTML document.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let organisation = report.target.organisation.as_deref();
    let title = match organisation {
        Some(org) => format!("zt4ai assessment: {org} ({})", report.assessed_at),
        None => format!("zt4ai assessment ({})", report.assessed_at),
    };
    let _ = write!(
        out,
        r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="zt4ai {version}">
<link rel="icon" href="data:,">
<title>{title}</title>
<script>{ERROR_HOOK}</script>
<style>{STYLE}</style>
</head>
<body>
<header class="page-header">
<div class="wrap">
<p class="eyebrow">zt4ai · Zero Trust for AI posture assessment</p>
<h1>{heading}</h1>
<p class="subtitle">Assessed {at} · zt4ai {version} · catalogue {catalogue}</p>
<nav aria-label="Sections"><a href="#overview">Overview</a><a href="#pillars">Pillars</a><a href="#findings">Findings</a><a href="#roadmap">Roadmap</a>{threats_link}{changes_link}</nav>
</div>
</header>
<main class="wrap">
"##,
        csp = CONTENT_SECURITY_POLICY,
        version = escape(&report.zt4ai_version),
        title = escape(&title),
        heading = escape(organisation.unwrap_or("Unnamed organisation")),
        at = escape(&report.assessed_at),
        catalogue = escape(&report.catalogue_version),
        threats_link = if report.threat_model.is_some() {
            r##"<a href="#threats">Threats</a>"##
        } else {
            ""
        },
        changes_link = if report.comparison.is_some() {
            r##"<a href="#changes">Changes</a>"##
        } else {
            ""
        },
    );
    overview(&mut out, report);
    pillars(&mut out, &report.pillars);
    findings(&mut out, report);
    roadmap(&mut out, &report.roadmap);
    if let Some(t) = &report.threat_model {
        threats(&mut out, t);
    }
    if let Some(comparison) = &report.comparison {
        changes(&mut out, report, comparison);
    }
    let labels: BTreeMap<&str, &str> = Pillar::ALL.iter().map(|p| (p.id(), p.title())).collect();
    let _ = write!(
        out,
        r#"</main>
<footer class="wrap page-footer">Generated by zt4ai {version} from catalogue {catalogue}. This page is self-contained and loads nothing.</footer>
<script type="application/json" id="report-data">{data}</script>
<script type="application/json" id="report-labels">{labels}</script>
<script>{SCRIPT}</script>
</body>
</html>
"#,
        version = escape(&report.zt4ai_version),
        catalogue = escape(&report.catalogue_version),
        data = script_json(report),
        labels = script_json(&serde_json::json!({ "pillars": labels })),
    );
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// JSON to embed in a `<script type="application/json">` element: `<`, `>` and
/// `&` become `\u003c`, `\u003e`, `\u0026`. They can only occur inside JSON
/// strings, where the escapes mean the same characters, so `JSON.parse` of the
/// element's text gives back the value, and no `</script` or `<!--` can appear.
pub fn script_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // A report always serialises (string keys, finite or null numbers); `null`
    // keeps the page well formed if it ever did not, and the script reports it.
    let json = serde_json::to_string(value).unwrap_or_else(|_| String::from("null"));
    let mut out = String::with_capacity(json.len() + 64);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            _ => out.push(c),
        }
    }
    out
}

// Writing to a `String` cannot fail: the `fmt::Result`s below are ignored on purpose.

fn overview(out: &mut String, report: &Report) {
    let c = report.counts;
    let _ = write!(
        out,
        r#"<section id="overview" aria-labelledby="overview-title">
<h2 id="overview-title">Overview</h2>
<div class="overview-grid">
<div class="card score-card">
<div class="score-label">Overall score</div>
<div class="score-value">{score}<span class="score-of"> / 100</span></div>
<div>{maturity}</div>
</div>
<div class="card counts">
"#,
        score = score(report.score),
        maturity = maturity_badge(report.maturity),
    );
    for (status, n) in [
        (Status::Failed, c.failed),
        (Status::Investigate, c.investigate),
        (Status::Passed, c.passed),
        (Status::Skipped, c.skipped),
        (Status::Manual, c.manual),
    ] {
        let _ = writeln!(
            out,
            r#"<div class="count status-{name}"><span class="count-n">{n}</span><span class="count-label">{label}</span></div>"#,
            name = status.name(),
            label = status_title(status),
        );
    }
    out.push_str("</div>\n<dl class=\"card target\">\n");
    let t = &report.target;
    let org = t
        .organisation
        .as_deref()
        .unwrap_or("not named in the inventory");
    dl_row(out, "Organisation", &escape(org));
    dl_row(out, "Assessed", &escape(&report.assessed_at));
    dl_row(out, "Inventory", &code(&t.inventory));
    let policies = if t.policies.is_empty() {
        "none".to_owned()
    } else {
        t.policies
            .iter()
            .map(|p| code(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    dl_row(out, "Policies", &policies);
    if let Some(dir) = &t.data_dir {
        dl_row(out, "Data directory", &code(dir));
    }
    if let Some(gateway) = &t.gateway {
        dl_row(out, "Gateway", &code(gateway));
    }
    if !t.counts.is_empty() {
        let sizes: Vec<String> = t
            .counts
            .iter()
            .map(|(what, n)| format!("{n} {}", escape(what)))
            .collect();
        dl_row(out, "Size", &sizes.join(", "));
    }
    out.push_str("</dl>\n</div>\n</section>\n");
}

fn dl_row(out: &mut String, term: &str, html: &str) {
    let _ = writeln!(out, "<dt>{term}</dt><dd>{html}</dd>");
}

/// The pillar scores as a horizontal bar chart, then a table with maturity and counts.
fn pillars(out: &mut String, pillars: &[PillarScore]) {
    const ROW: usize = 36;
    const LABEL_W: usize = 250;
    const BAR_W: f64 = 440.0;
    let height = pillars.len() * ROW + 8;
    let _ = write!(
        out,
        r#"<section id="pillars" aria-labelledby="pillars-title">
<h2 id="pillars-title">Pillars</h2>
<div class="card">
<svg class="chart" viewBox="0 0 860 {height}" width="100%" role="img" aria-labelledby="chart-title">
<title id="chart-title">Score per pillar, 0 to 100</title>
"#
    );
    for (i, p) in pillars.iter().enumerate() {
        let y = i * ROW + 6;
        let text_y = y + 17;
        let (width, band, value) = match p.score {
            Some(s) => {
                let s = s.clamp(0.0, 100.0);
                (
                    BAR_W * s / 100.0,
                    band(s),
                    format!("{:.1} · {}", s, p.maturity.title()),
                )
            }
            None => (0.0, "none", "not assessed".to_owned()),
        };
        let _ = write!(
            out,
            r#"<g class="bar" data-pillar="{id}"><title>{title}: {value}</title>
<text class="bar-label" x="0" y="{text_y}">{title}</text>
<rect class="bar-track" x="{LABEL_W}" y="{y}" width="{BAR_W}" height="22" rx="4"></rect>
<rect class="bar-fill band-{band}" x="{LABEL_W}" y="{y}" width="{width:.1}" height="22" rx="4"></rect>
<text class="bar-value" x="{vx}" y="{text_y}">{value}</text></g>
"#,
            id = p.pillar.id(),
            title = escape(p.pillar.title()),
            vx = LABEL_W as f64 + BAR_W + 12.0,
        );
    }
    out.push_str(
        r#"</svg>
<table class="pillar-table">
<thead><tr><th scope="col">Pillar</th><th scope="col" class="num">Score</th><th scope="col">Maturity</th><th scope="col" class="num">Passed</th><th scope="col" class="num">Failed</th><th scope="col" class="num">Investigate</th><th scope="col" class="num">Skipped</th><th scope="col" class="num">Manual</th></tr></thead>
<tbody>
"#,
    );
    for p in pillars {
        let c = p.counts;
        let _ = writeln!(
            out,
            r#"<tr><th scope="row">{}</th><td class="num">{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            escape(p.pillar.title()),
            score(p.score),
            maturity_badge(p.maturity),
            c.passed,
            c.failed,
            c.investigate,
            c.skipped,
            c.manual
        );
    }
    out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
}

/// The filters, the (script-filled) table and the details panel.
fn findings(out: &mut String, report: &Report) {
    let c = report.counts;
    out.push_str(
        r#"<div class="split">
<section id="findings" aria-labelledby="findings-title">
<h2 id="findings-title">Findings</h2>
<form class="filters card" id="filters" autocomplete="off">
<fieldset id="filter-status"><legend>Status</legend>
"#,
    );
    for (status, n) in [
        (Status::Failed, c.failed),
        (Status::Investigate, c.investigate),
        (Status::Passed, c.passed),
        (Status::Skipped, c.skipped),
        (Status::Manual, c.manual),
    ] {
        let _ = writeln!(
            out,
            r#"<label class="check status-{name}"><input type="checkbox" name="status" value="{name}" checked> {label} <span class="muted">({n})</span></label>"#,
            name = status.name(),
            label = status_title(status),
        );
    }
    out.push_str(
        r#"</fieldset>
<label>Pillar <select id="filter-pillar"><option value="">All pillars</option>
"#,
    );
    for p in &report.pillars {
        let _ = writeln!(
            out,
            r#"<option value="{}">{}</option>"#,
            p.pillar.id(),
            escape(p.pillar.title())
        );
    }
    out.push_str(
        r#"</select></label>
<label>Severity <select id="filter-severity"><option value="">All severities</option>
<option value="critical">Critical</option><option value="high">High</option><option value="medium">Medium</option><option value="low">Low</option>
</select></label>
<label class="search">Search <input type="search" id="filter-search" placeholder="Control, title, file, field…"></label>
</form>
<p class="muted" id="findings-count" aria-live="polite"></p>
<div class="table-wrap card">
<table class="findings-table" id="findings-table">
<thead><tr><th scope="col">Status</th><th scope="col">Severity</th><th scope="col">Control</th><th scope="col">Title</th><th scope="col">Pillar</th><th scope="col" class="num">Evidence</th></tr></thead>
<tbody id="findings-body"></tbody>
</table>
<noscript><p class="muted">The findings table needs JavaScript; the Markdown and JSON reports hold the same results.</p></noscript>
</div>
</section>
<section id="details" aria-labelledby="details-title">
<h2 id="details-title">Details</h2>
<div class="card details-panel" id="details-body"><p class="muted">Select a finding to see its evidence and what to do.</p></div>
</section>
</div>
"#,
    );
}

fn roadmap(out: &mut String, items: &[RoadmapItem]) {
    out.push_str(
        r#"<section id="roadmap" aria-labelledby="roadmap-title">
<h2 id="roadmap-title">Roadmap</h2>
"#,
    );
    if items.is_empty() {
        out.push_str("<p class=\"muted\">Nothing to do.</p>\n</section>\n");
        return;
    }
    out.push_str("<div class=\"phases\">\n");
    for (n, phase) in [
        Phase::Assess,
        Phase::Foundation,
        Phase::Controls,
        Phase::Optimise,
    ]
    .into_iter()
    .enumerate()
    {
        let steps: Vec<&RoadmapItem> = items.iter().filter(|i| i.phase == phase).collect();
        let _ = write!(
            out,
            r#"<div class="card phase" data-phase="{id}">
<h3><span class="phase-n">{n}</span> {title} <span class="muted">({count})</span></h3>
<p class="muted">{about}</p>
"#,
            id = phase_id(phase),
            n = n + 1,
            title = phase.title(),
            count = steps.len(),
            about = phase_about(phase),
        );
        if steps.is_empty() {
            out.push_str("<p class=\"muted\">Nothing in this phase.</p>\n</div>\n");
            continue;
        }
        out.push_str("<ol>\n");
        for item in steps {
            let _ = write!(
                out,
                r#"<li><div><code>{control}</code> {title}</div>
<div class="meta">{severity} <span class="muted">effort {effort}</span></div>
<div>{action}</div>"#,
                control = escape(&item.control),
                title = escape(&item.title),
                severity = severity_badge(item.severity),
                effort = level_name(item.effort),
                action = rich(&item.action),
            );
            if !item.after.is_empty() {
                let after: Vec<String> = item.after.iter().map(|c| code(c)).collect();
                let _ = write!(
                    out,
                    r#"<div class="muted">After {}</div>"#,
                    after.join(", ")
                );
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ol>\n</div>\n");
    }
    out.push_str("</div>\n</section>\n");
}

fn threats(out: &mut String, t: &crate::model::ThreatSummary) {
    let _ = write!(
        out,
        r#"<section id="threats" aria-labelledby="threats-title">
<h2 id="threats-title">Threat model</h2>
<div class="card">
<p>{n} threats derived from the inventory: <strong>{u} unmitigated</strong>, {p} partly mitigated, {m} mitigated.</p>
"#,
        n = t.threats,
        u = t.unmitigated,
        p = t.partly_mitigated,
        m = t.mitigated,
    );
    match &t.document {
        // A relative link to the document written beside this page.
        Some(doc) => {
            let _ = writeln!(
                out,
                r#"<p>The whole threat model: <a href="{href}">{name}</a>.</p>"#,
                href = escape(doc),
                name = escape(doc)
            );
        }
        None => out.push_str(
            "<p class=\"muted\">The whole threat model: <code>zt4ai threat-model</code>.</p>\n",
        ),
    }
    if !t.open.is_empty() {
        out.push_str("<ul>\n");
        for o in &t.open {
            let _ = writeln!(
                out,
                "<li><strong>{}</strong>: {}</li>",
                escape(&o.class),
                rich(&o.scenario)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</div>\n</section>\n");
}

fn changes(out: &mut String, report: &Report, c: &Comparison) {
    let _ = write!(
        out,
        r#"<section id="changes" aria-labelledby="changes-title">
<h2 id="changes-title">Changes since {earlier}</h2>
<div class="card">
<p class="change-score">Score <strong>{before}</strong> → <strong>{after}</strong> <span class="delta">({delta})</span> · maturity {mb} → {ma}</p>
<div class="change-lists">
"#,
        earlier = escape(&c.earlier_assessed_at),
        before = score(c.earlier_score),
        after = score(report.score),
        delta = delta(c.earlier_score, report.score),
        mb = maturity_badge(c.earlier_maturity),
        ma = maturity_badge(report.maturity),
    );
    change_list(out, "improved", "Improved", &c.improved);
    change_list(out, "regressed", "Regressed", &c.regressed);
    change_list(out, "other", "Other changes", &c.other);
    out.push_str("</div>\n");
    if !c.pillars.is_empty() {
        out.push_str(
            r#"<table class="pillar-table"><thead><tr><th scope="col">Pillar</th><th scope="col" class="num">Before</th><th scope="col" class="num">After</th><th scope="col" class="num">Change</th></tr></thead>
<tbody>
"#,
        );
        for p in &c.pillars {
            let _ = writeln!(
                out,
                r#"<tr><th scope="row">{}</th><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
                escape(p.pillar.title()),
                score(p.before),
                score(p.after),
                delta(p.before, p.after)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</div>\n</section>\n");
}

fn change_list(out: &mut String, class: &str, heading: &str, changes: &[Change]) {
    let _ = writeln!(
        out,
        "<div class=\"changes-{class}\"><h3>{heading} <span class=\"muted\">({})</span></h3>",
        changes.len()
    );
    if changes.is_empty() {
        out.push_str("<p class=\"muted\">None.</p></div>\n");
        return;
    }
    out.push_str("<ul>\n");
    for ch in changes {
        let before = match ch.before {
            Some(status) => status_badge(status),
            None => r#"<span class="badge">new</span>"#.to_owned(),
        };
        let _ = writeln!(
            out,
            r#"<li><code>{}</code> {} {} → {}</li>"#,
            escape(&ch.control),
            escape(&ch.title),
            before,
            status_badge(ch.after)
        );
    }
    out.push_str("</ul></div>\n");
}

fn score(s: Option<f64>) -> String {
    s.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.1}"))
}

fn delta(before: Option<f64>, after: Option<f64>) -> String {
    match (before, after) {
        (Some(b), Some(a)) if ((a - b) * 10.0).round() != 0.0 => format!("{:+.1}", a - b),
        (Some(_), Some(_)) => "±0.0".to_owned(),
        _ => "n/a".to_owned(),
    }
}

/// Colour band of a score: good (≥ 80), fair (≥ 50), poor.
fn band(score: f64) -> &'static str {
    if score >= 80.0 {
        "good"
    } else if score >= 50.0 {
        "fair"
    } else {
        "poor"
    }
}

fn code(s: &str) -> String {
    format!("<code>{}</code>", escape(s))
}

/// Escaped text in which each pair of backticks becomes a `<code>` element
/// (messages and the catalogue quote names that way); a lone backtick stays.
fn rich(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut parts = s.split('`');
    if let Some(first) = parts.next() {
        out.push_str(&escape(first));
    }
    let rest: Vec<&str> = parts.collect();
    let mut i = 0;
    while i < rest.len() {
        // `rest[i]` follows a backtick; it is code if another backtick closes it.
        if i + 1 < rest.len() && !rest[i].is_empty() {
            out.push_str(&code(rest[i]));
            out.push_str(&escape(rest[i + 1]));
            i += 2;
        } else {
            out.push('`');
            out.push_str(&escape(rest[i]));
            i += 1;
        }
    }
    out
}

fn status_title(s: Status) -> &'static str {
    match s {
        Status::Passed => "Passed",
        Status::Failed => "Failed",
        Status::Investigate => "Investigate",
        Status::Skipped => "Skipped",
        Status::Manual => "Manual",
    }
}

fn status_badge(s: Status) -> String {
    format!(
        r#"<span class="badge status-{}">{}</span>"#,
        s.name(),
        status_title(s)
    )
}

fn severity_badge(s: Severity) -> String {
    format!(r#"<span class="badge sev-{0}">{0}</span>"#, s.name())
}

fn maturity_badge(m: Maturity) -> String {
    let id = match m {
        Maturity::Traditional => "traditional",
        Maturity::Initial => "initial",
        Maturity::Advanced => "advanced",
        Maturity::Optimal => "optimal",
    };
    format!(
        r#"<span class="badge maturity maturity-{id}">{}</span>"#,
        m.title()
    )
}

fn level_name(l: Level) -> &'static str {
    match l {
        Level::Low => "low",
        Level::Medium => "medium",
        Level::High => "high",
    }
}

fn phase_id(p: Phase) -> &'static str {
    match p {
        Phase::Assess => "assess",
        Phase::Foundation => "foundation",
        Phase::Controls => "controls",
        Phase::Optimise => "optimise",
    }
}

fn phase_about(p: Phase) -> &'static str {
    match p {
        Phase::Assess => {
            "Find out what is not known yet: manual controls, investigations, skipped checks."
        }
        Phase::Foundation => "Close critical and high exposures that are cheap to close.",
        Phase::Controls => "Put the remaining high and medium controls in place.",
        Phase::Optimise => "Low-severity and costly refinements.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::markdown::fixture;

    #[test]
    fn escape_covers_text_and_attributes() {
        assert_eq!(
            escape(fixture::SCRIPT),
            "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(
            escape(fixture::QUOTES),
            "&quot;quotes&quot; &amp; &lt;tags&gt;"
        );
        assert_eq!(escape("it's"), "it&#39;s");
        assert!(matches!(escape("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn backtick_pairs_become_code_elements() {
        assert_eq!(
            rich("`a<b>` permits `*` & more"),
            "<code>a&lt;b&gt;</code> permits <code>*</code> &amp; more"
        );
        assert_eq!(rich("a `b"), "a `b");
        assert_eq!(rich("``x"), "``x");
        assert_eq!(rich("plain"), "plain");
    }

    #[test]
    fn embedded_json_cannot_close_its_script_and_round_trips() {
        let report = fixture::report();
        let json = script_json(&report);
        assert!(!json.contains(['<', '>', '&']));
        assert!(json.contains(r"\u003c/script\u003e\u003cimg src=x onerror=alert(1)\u003e"));
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn hostile_strings_never_reach_the_page_as_markup() {
        let page = render(&fixture::report());
        assert!(!page.contains("<img"), "an injected element");
        assert!(!page.contains("<tags>"));
        assert!(!page.contains(fixture::SCRIPT));
        // Exactly the page's own script elements close.
        assert_eq!(page.matches("</script>").count(), 4);
        assert!(
            page.contains(
                "Agents have identities &lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
            )
        );
        assert!(page.contains("<h1>Acme &quot;quotes&quot; &amp; &lt;tags&gt;</h1>"));
    }

    #[test]
    fn page_is_self_contained() {
        let page = render(&fixture::report());
        assert!(page.starts_with("<!DOCTYPE html>\n"));
        assert!(page.ends_with("</html>\n"));
        assert!(page.contains(&format!(
            r#"<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">"#
        )));
        // No URL of any kind: nothing to load, nothing to call.
        assert!(!page.contains("://"), "a URL in the page");
        for needle in ["src=\"", "href=\"http", "@import", "url("] {
            assert!(!page.contains(needle), "{needle} in the page");
        }
        // The script never parses data as HTML.
        for needle in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(
                !SCRIPT.contains(needle) && !ERROR_HOOK.contains(needle),
                "{needle} in the script"
            );
        }
        assert!(!STYLE.contains("</"));
        assert!(!SCRIPT.contains("</"));
    }

    #[test]
    fn every_section_has_its_stable_id() {
        let report = fixture::report();
        let page = render(&report);
        let mut at = 0;
        for id in SECTIONS {
            let found = page.find(&format!("<section id=\"{id}\"")).unwrap();
            assert!(found > at, "{id} out of order");
            at = found;
        }
        let mut without = report;
        without.comparison = None;
        let page = render(&without);
        assert!(!page.contains("id=\"changes\""));
        assert!(!page.contains("href=\"#changes\""));
    }

    #[test]
    fn chart_has_a_labelled_bar_per_pillar() {
        let page = render(&fixture::report());
        assert_eq!(page.matches("<g class=\"bar\"").count(), 5);
        assert_eq!(page.matches("class=\"bar-label\"").count(), 5);
        assert!(
            page.contains(
                r#"<text class="bar-label" x="0" y="59">Access and least privilege</text>"#
            )
        );
        // 45.26 of 440 pixels.
        assert!(page.contains(r#"class="bar-fill band-poor" x="250" y="42" width="199.1""#));
        assert!(page.contains(">45.3 · Initial</text>"));
        assert!(page.contains(">not assessed</text>"));
        assert!(!page.contains(r#"<option value="network_egress">"#));
        assert!(page.contains(r#"<option value="access">Access and least privilege</option>"#));
    }

    #[test]
    fn roadmap_and_changes_are_rendered_in_order() {
        let page = render(&fixture::report());
        let assess = page.find(r#"data-phase="assess""#).unwrap();
        let foundation = page.find(r#"data-phase="foundation""#).unwrap();
        assert!(assess < foundation);
        assert!(page.contains("After <code>ZTAI-ID-01</code>"));
        assert!(page.contains("Score <strong>40.0</strong> → <strong>48.0</strong> <span class=\"delta\">(+8.0)</span>"));
        assert!(page.contains(
            r#"<span class="badge">new</span> → <span class="badge status-manual">Manual</span>"#
        ));
    }

    #[test]
    fn rendering_is_deterministic() {
        let report = fixture::report();
        assert_eq!(render(&report), render(&report.clone()));
    }
}
