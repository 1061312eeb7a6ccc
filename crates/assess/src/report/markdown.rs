//! The Markdown report: a summary to read in a terminal, a pull request or a wiki.
//!
//! It says where the deployment stands (overall and per pillar), what failed or
//! needs a look (most severe first, with the evidence's `file:line` and what to
//! do), what could not be checked, the roadmap, and what changed since an earlier
//! report. The output depends only on the [`Report`]: the same report renders to
//! the same bytes, so it can be kept as a golden file or diffed between runs.
//!
//! Every string in a report comes from user-controlled configuration (names,
//! titles, paths in the inventory). Prose is escaped so that it cannot add
//! Markdown structure (links, images, HTML, headings, table cells); paths and
//! field names go into code spans, where nothing is interpreted.

use std::fmt::Write as _;

use crate::model::{
    Change, Comparison, ControlResult, Evidence, Phase, Report, RoadmapItem, Severity, Status,
};

/// Renders `report` as a Markdown document (CommonMark with GitHub tables),
/// ending with a newline.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    header(&mut out, report);
    overall(&mut out, report);
    pillars(&mut out, report);
    findings(&mut out, report);
    skipped(&mut out, report);
    roadmap(&mut out, &report.roadmap);
    if let Some(t) = &report.threat_model {
        threats(&mut out, t);
    }
    if let Some(comparison) = &report.comparison {
        changes(&mut out, report, comparison);
    }
    // One trailing newline, whatever the last section wrote.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

// Writing to a `String` cannot fail: the `fmt::Result`s below are ignored on purpose.

fn header(out: &mut String, report: &Report) {
    let organisation = report
        .target
        .organisation
        .as_deref()
        .map_or_else(|| "unnamed organisation".to_owned(), text);
    let _ = writeln!(out, "# Zero Trust for AI assessment: {organisation}\n");
    let _ = writeln!(
        out,
        "Assessed {} with zt4ai {} (catalogue {}).\n",
        text(&report.assessed_at),
        text(&report.zt4ai_version),
        text(&report.catalogue_version)
    );

    let target = &report.target;
    let _ = writeln!(out, "- Inventory: {}", code(&target.inventory));
    if target.policies.is_empty() {
        let _ = writeln!(out, "- Policies: none");
    } else {
        let list: Vec<String> = target.policies.iter().map(|p| code(p)).collect();
        let _ = writeln!(out, "- Policies: {}", list.join(", "));
    }
    if let Some(dir) = &target.data_dir {
        let _ = writeln!(out, "- Data directory: {}", code(dir));
    }
    if let Some(gateway) = &target.gateway {
        let _ = writeln!(out, "- Gateway: {}", code(gateway));
    }
    if !target.counts.is_empty() {
        let sizes: Vec<String> = target
            .counts
            .iter()
            .map(|(what, n)| format!("{n} {}", text(what)))
            .collect();
        let _ = writeln!(out, "- Size: {}", sizes.join(", "));
    }
    out.push('\n');
}

fn overall(out: &mut String, report: &Report) {
    let _ = writeln!(out, "## Overall\n");
    let _ = writeln!(
        out,
        "**Score: {} / 100** · **Maturity: {}**\n",
        score(report.score),
        report.maturity.title()
    );
    let c = report.counts;
    let _ = writeln!(out, "| Passed | Failed | Investigate | Skipped | Manual |");
    let _ = writeln!(out, "| ---: | ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} |\n",
        c.passed, c.failed, c.investigate, c.skipped, c.manual
    );
}

fn pillars(out: &mut String, report: &Report) {
    if report.pillars.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Pillars\n");
    let _ = writeln!(
        out,
        "| Pillar | Score | Maturity | Passed | Failed | Investigate | Skipped | Manual |"
    );
    let _ = writeln!(
        out,
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
    );
    for p in &report.pillars {
        let c = p.counts;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            p.pillar.title(),
            score(p.score),
            p.maturity.title(),
            c.passed,
            c.failed,
            c.investigate,
            c.skipped,
            c.manual
        );
    }
    out.push('\n');
}

/// Failed and investigate results, most severe first; within a severity, failed
/// before investigate, then in catalogue (report) order.
fn findings(out: &mut String, report: &Report) {
    let open: Vec<&ControlResult> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Failed | Status::Investigate))
        .collect();
    let _ = writeln!(out, "## Findings\n");
    if open.is_empty() {
        let _ = writeln!(out, "Nothing failed and nothing needs investigating.\n");
    }
    for severity in SEVERITIES_DESC {
        let mut group: Vec<&ControlResult> = open
            .iter()
            .copied()
            .filter(|r| r.severity == severity)
            .collect();
        if group.is_empty() {
            continue;
        }
        // Stable: keeps catalogue order within each status.
        group.sort_by_key(|r| r.status != Status::Failed);
        let _ = writeln!(out, "### {} ({})\n", capitalised(severity), group.len());
        for r in group {
            finding(out, r);
        }
    }
    let manual = report.counts.manual;
    if manual > 0 {
        let _ = writeln!(
            out,
            "{manual} {} assessed by a person rather than by zt4ai: see the roadmap's Assess phase.\n",
            if manual == 1 {
                "control is"
            } else {
                "controls are"
            }
        );
    }
}

fn finding(out: &mut String, r: &ControlResult) {
    let _ = writeln!(
        out,
        "#### {} {} ({}, {})\n",
        code(&r.control),
        text(&r.title),
        r.status.name(),
        r.pillar.title()
    );
    if !r.summary.is_empty() {
        let _ = writeln!(out, "{}\n", para(&r.summary));
    }
    if !r.evidence.is_empty() {
        for e in &r.evidence {
            let _ = writeln!(out, "- {}", evidence(e));
        }
        out.push('\n');
    }
    if !r.remediation.is_empty() {
        let _ = writeln!(out, "Remediation: {}\n", text(&r.remediation));
    }
}

fn evidence(e: &Evidence) -> String {
    let mut line = String::new();
    if let Some(location) = location(e) {
        line.push_str(&code(&location));
        if let Some(field) = &e.field {
            let _ = write!(line, " ({})", code(field));
        }
        line.push_str(": ");
    } else if let Some(field) = &e.field {
        let _ = write!(line, "{}: ", code(field));
    }
    if line.is_empty() {
        line.push_str(&para(&e.message));
    } else {
        line.push_str(&text(&e.message));
    }
    if !e.problem {
        line.push_str(" (context)");
    }
    line
}

fn skipped(out: &mut String, report: &Report) {
    let skipped: Vec<&ControlResult> = report
        .results
        .iter()
        .filter(|r| r.status == Status::Skipped)
        .collect();
    if skipped.is_empty() {
        return;
    }
    let _ = writeln!(out, "## Not checked ({})\n", skipped.len());
    for r in skipped {
        let _ = writeln!(
            out,
            "- {} {}: {}",
            code(&r.control),
            text(&r.title),
            text(&r.summary)
        );
    }
    out.push('\n');
}

fn roadmap(out: &mut String, items: &[RoadmapItem]) {
    let _ = writeln!(out, "## Roadmap\n");
    if items.is_empty() {
        let _ = writeln!(out, "Nothing to do.\n");
        return;
    }
    for (n, phase) in PHASES.iter().enumerate() {
        let steps: Vec<&RoadmapItem> = items.iter().filter(|i| i.phase == *phase).collect();
        if steps.is_empty() {
            continue;
        }
        let _ = writeln!(out, "### {}. {}\n", n + 1, phase.title());
        for (i, item) in steps.iter().enumerate() {
            let _ = write!(
                out,
                "{}. {} {} ({}, effort {}): {}",
                i + 1,
                code(&item.control),
                text(&item.title),
                item.severity.name(),
                level_name(item.effort),
                text(&item.action)
            );
            if !item.after.is_empty() {
                let after: Vec<String> = item.after.iter().map(|c| code(c)).collect();
                let _ = write!(out, " After {}.", after.join(", "));
            }
            out.push('\n');
        }
        out.push('\n');
    }
}

fn threats(out: &mut String, t: &crate::model::ThreatSummary) {
    let _ = writeln!(out, "## Threat model\n");
    let _ = writeln!(
        out,
        "{} threats derived from the inventory: {} unmitigated, {} partly mitigated, {} mitigated.",
        t.threats, t.unmitigated, t.partly_mitigated, t.mitigated
    );
    match &t.document {
        Some(doc) => {
            let _ = writeln!(
                out,
                "The whole threat model: [{}]({}).\n",
                text(doc),
                doc.replace(' ', "%20").replace(['(', ')'], "")
            );
        }
        None => {
            let _ = writeln!(out, "The whole threat model: `zt4ai threat-model`.\n");
        }
    }
    if !t.open.is_empty() {
        let _ = writeln!(out, "Unmitigated:\n");
        for o in &t.open {
            let _ = writeln!(out, "- **{}**: {}", text(&o.class), text(&o.scenario));
        }
        out.push('\n');
    }
}

fn changes(out: &mut String, report: &Report, c: &Comparison) {
    let _ = writeln!(out, "## Changes since {}\n", text(&c.earlier_assessed_at));
    let _ = writeln!(
        out,
        "Score {} → {} ({}); maturity {} → {}.\n",
        score(c.earlier_score),
        score(report.score),
        delta(c.earlier_score, report.score),
        c.earlier_maturity.title(),
        report.maturity.title()
    );
    change_list(out, "Improved", &c.improved);
    change_list(out, "Regressed", &c.regressed);
    change_list(out, "Other changes", &c.other);
    if !c.pillars.is_empty() {
        let _ = writeln!(out, "| Pillar | Before | After | Change |");
        let _ = writeln!(out, "| --- | ---: | ---: | ---: |");
        for p in &c.pillars {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                p.pillar.title(),
                score(p.before),
                score(p.after),
                delta(p.before, p.after)
            );
        }
        out.push('\n');
    }
}

fn change_list(out: &mut String, heading: &str, changes: &[Change]) {
    let _ = writeln!(out, "### {heading} ({})\n", changes.len());
    if changes.is_empty() {
        let _ = writeln!(out, "None.\n");
        return;
    }
    for ch in changes {
        let before = ch.before.map_or("new", Status::name);
        let _ = writeln!(
            out,
            "- {} {} ({}): {} → {}",
            code(&ch.control),
            text(&ch.title),
            ch.severity.name(),
            before,
            ch.after.name()
        );
    }
    out.push('\n');
}

const SEVERITIES_DESC: [Severity; 4] = [
    Severity::Critical,
    Severity::High,
    Severity::Medium,
    Severity::Low,
];

const PHASES: [Phase; 4] = [
    Phase::Assess,
    Phase::Foundation,
    Phase::Controls,
    Phase::Optimise,
];

fn capitalised(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "Critical",
        Severity::High => "High",
        Severity::Medium => "Medium",
        Severity::Low => "Low",
    }
}

fn level_name(l: crate::model::Level) -> &'static str {
    match l {
        crate::model::Level::Low => "low",
        crate::model::Level::Medium => "medium",
        crate::model::Level::High => "high",
    }
}

/// A score with one decimal, or `n/a` when nothing was assessed.
fn score(s: Option<f64>) -> String {
    s.map_or_else(|| "n/a".to_owned(), |s| format!("{s:.1}"))
}

/// The change between two scores, signed, with one decimal.
fn delta(before: Option<f64>, after: Option<f64>) -> String {
    match (before, after) {
        (Some(b), Some(a)) => {
            let d = a - b;
            // Rounds like `{:.1}` does, so that `+0.0` and `-0.0` do not appear.
            if (d * 10.0).round() == 0.0 {
                "±0.0".to_owned()
            } else {
                format!("{d:+.1}")
            }
        }
        _ => "n/a".to_owned(),
    }
}

/// `file:line`, `file` or nothing.
fn location(e: &Evidence) -> Option<String> {
    let file = e.file.as_deref()?;
    Some(match e.line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    })
}

/// User text as inline Markdown that renders as itself, on one line.
///
/// Text between a pair of backticks becomes a code span (messages and the
/// catalogue quote names and YAML that way, as in `` `agents[0]` ``); everything
/// else has each character that could start Markdown or HTML syntax
/// backslash-escaped. `_` between two letters or digits is left alone: it cannot
/// start emphasis there, and `writable_datasets` stays readable.
pub(crate) fn text(s: &str) -> String {
    let flat = one_line(s);
    let chars: Vec<char> = flat.chars().collect();
    let mut out = String::with_capacity(flat.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`'
            && let Some(len) = chars[i + 1..].iter().position(|&c| c == '`')
            && len > 0
        {
            let inner: String = chars[i + 1..i + 1 + len].iter().collect();
            out.push_str(&code(&inner));
            i += len + 2;
            continue;
        }
        match c {
            '_' if i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric()) =>
            {
                out.push('_');
            }
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '~' | '&' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

/// `s` trimmed, with each line break (`\r\n`, `\n`, `\r`) made one space.
fn one_line(s: &str) -> String {
    s.trim().replace("\r\n", " ").replace(['\r', '\n'], " ")
}

/// [`text`] for the start of a line (a paragraph, a list item's content): also
/// escapes what would start a list or a heading there (`- `, `+ `, `1. `, `=`).
pub(crate) fn para(s: &str) -> String {
    let mut out = text(s);
    if out.starts_with(['-', '+', '=']) {
        out.insert(0, '\\');
    }
    let digits = out.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && matches!(out.as_bytes().get(digits), Some(b'.' | b')')) {
        out.insert(digits, '\\');
    }
    out
}

/// User text as a code span: nothing inside is interpreted. The fence is one
/// backtick longer than the longest run of backticks inside, and padded with
/// spaces when the text starts or ends with a backtick.
pub(crate) fn code(s: &str) -> String {
    let s = one_line(s);
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.trim().is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

/// A report exercising every part of the renderers, shared by their unit tests.
#[cfg(test)]
pub(crate) mod fixture {
    use std::collections::BTreeMap;

    use crate::model::*;

    /// A hostile string: it would close a script element and inject markup.
    pub(crate) const SCRIPT: &str = "</script><img src=x onerror=alert(1)>";
    /// Another: quotes, an ampersand and a tag.
    pub(crate) const QUOTES: &str = "\"quotes\" & <tags>";

    fn ev(message: &str, file: Option<&str>, line: Option<usize>, field: Option<&str>) -> Evidence {
        Evidence {
            message: message.into(),
            file: file.map(Into::into),
            line,
            column: line.map(|_| 3),
            field: field.map(Into::into),
            problem: true,
        }
    }

    fn result(
        control: &str,
        title: &str,
        pillar: Pillar,
        severity: Severity,
        status: Status,
        summary: &str,
        evidence: Vec<Evidence>,
    ) -> ControlResult {
        ControlResult {
            control: control.into(),
            title: title.into(),
            pillar,
            severity,
            status,
            summary: summary.into(),
            evidence,
            check: Some(format!("{}-check", control.to_lowercase())),
            remediation: format!("Fix {control}."),
        }
    }

    /// The report.
    pub(crate) fn report() -> Report {
        let results = vec![
            result(
                "ZTAI-ID-01",
                &format!("Agents have identities {SCRIPT}"),
                Pillar::Identity,
                Severity::Critical,
                Status::Failed,
                "Two agents share a credential.",
                vec![
                    ev(
                        QUOTES,
                        Some("inventory.yaml"),
                        Some(12),
                        Some("agents[0].credential"),
                    ),
                    ev(
                        "Shared with agents[1].",
                        Some("<built-in example>/inventory.yaml"),
                        Some(30),
                        Some("agents[1].credential"),
                    ),
                    Evidence::note("Seen in the audit log."),
                ],
            ),
            result(
                "ZTAI-AC-02",
                "Grants are narrow",
                Pillar::Access,
                Severity::Medium,
                Status::Investigate,
                "A grant uses a wildcard.",
                vec![ev(
                    "tools: [\"*\"]",
                    Some("policies/acme.cedar"),
                    None,
                    Some("permit-all"),
                )],
            ),
            result(
                "ZTAI-DA-01",
                "Data is labelled",
                Pillar::Data,
                Severity::High,
                Status::Passed,
                "Every dataset has a label.",
                vec![],
            ),
            result(
                "ZTAI-OB-01",
                "Audit log is kept",
                Pillar::ObservabilityResponse,
                Severity::Low,
                Status::Skipped,
                "No --data-dir given.",
                vec![],
            ),
            result(
                "ZTAI-GV-01",
                "Owners review grants",
                Pillar::Governance,
                Severity::Medium,
                Status::Manual,
                "Does someone review grants quarterly?",
                vec![],
            ),
        ];
        let mut counts = Counts::default();
        for r in &results {
            counts.add(r.status);
        }
        let pillars = [
            Pillar::Identity,
            Pillar::Access,
            Pillar::Data,
            Pillar::ObservabilityResponse,
            Pillar::Governance,
        ]
        .into_iter()
        .map(|pillar| {
            let mut counts = Counts::default();
            for r in results.iter().filter(|r| r.pillar == pillar) {
                counts.add(r.status);
            }
            let score = match pillar {
                Pillar::Identity => Some(0.0),
                Pillar::Access => Some(45.26),
                Pillar::Data => Some(100.0),
                _ => None,
            };
            PillarScore {
                pillar,
                score,
                maturity: Maturity::Initial,
                counts,
            }
        })
        .collect();
        let change = |control: &str, before: Option<Status>, after: Status| Change {
            control: control.into(),
            title: format!("{control} title"),
            severity: Severity::High,
            before,
            after,
        };
        Report {
            format: REPORT_FORMAT,
            zt4ai_version: "0.1.0".into(),
            catalogue_version: "1".into(),
            assessed_at: "2026-12-01T10:00:00Z".into(),
            target: Target {
                organisation: Some(format!("Acme {QUOTES}")),
                inventory: "inventory.yaml".into(),
                policies: vec!["policies/acme.cedar".into()],
                data_dir: None,
                gateway: None,
                counts: BTreeMap::from([("agents".into(), 2), ("users".into(), 3)]),
            },
            score: Some(48.04),
            maturity: Maturity::Initial,
            counts,
            pillars,
            results,
            roadmap: vec![
                RoadmapItem {
                    phase: Phase::Foundation,
                    control: "ZTAI-ID-01".into(),
                    title: format!("Agents have identities {SCRIPT}"),
                    severity: Severity::Critical,
                    effort: Level::Low,
                    action: "Give each agent its own credential.".into(),
                    after: vec![],
                },
                RoadmapItem {
                    phase: Phase::Assess,
                    control: "ZTAI-GV-01".into(),
                    title: "Owners review grants".into(),
                    severity: Severity::Medium,
                    effort: Level::Medium,
                    action: "Ask the owners.".into(),
                    after: vec![],
                },
                RoadmapItem {
                    phase: Phase::Controls,
                    control: "ZTAI-AC-02".into(),
                    title: "Grants are narrow".into(),
                    severity: Severity::Medium,
                    effort: Level::High,
                    action: "Replace the wildcard.".into(),
                    after: vec!["ZTAI-ID-01".into()],
                },
            ],
            comparison: Some(Comparison {
                earlier_assessed_at: "2026-11-01T10:00:00Z".into(),
                earlier_score: Some(40.0),
                earlier_maturity: Maturity::Traditional,
                improved: vec![change("ZTAI-DA-01", Some(Status::Failed), Status::Passed)],
                regressed: vec![change("ZTAI-ID-01", Some(Status::Passed), Status::Failed)],
                other: vec![change("ZTAI-GV-01", None, Status::Manual)],
                pillars: vec![PillarDelta {
                    pillar: Pillar::Data,
                    before: Some(50.0),
                    after: Some(100.0),
                }],
            }),
            threat_model: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_cannot_add_markdown_or_html() {
        assert_eq!(
            text(fixture::SCRIPT),
            "\\</script\\>\\<img src=x onerror=alert(1)\\>"
        );
        assert_eq!(
            text("[x](http://e) ![i](y)"),
            "\\[x\\](http://e) !\\[i\\](y)"
        );
        assert_eq!(
            text("stop! snake_case, _emph_ *b*"),
            "stop! snake_case, \\_emph\\_ \\*b\\*"
        );
        assert_eq!(text("a | b\nc"), "a \\| b c");
        assert_eq!(text("# heading"), "\\# heading");
        assert_eq!(para("- item"), "\\- item");
        assert_eq!(para("1. item"), "1\\. item");
        assert_eq!(para("12) item"), "12\\) item");
        assert_eq!(text("- item"), "- item");
        assert_eq!(text("0.1.0"), "0.1.0");
        assert_eq!(para("0.1.0"), "0\\.1.0");
        assert_eq!(text("&lt;"), "\\&lt;");
        assert_eq!(text("plain words, v1.2"), "plain words, v1.2");
    }

    #[test]
    fn backtick_pairs_in_prose_become_code_spans() {
        assert_eq!(
            text("`allow_all` permits `*` <x>"),
            "`allow_all` permits `*` \\<x\\>"
        );
        assert_eq!(text("a `b"), "a \\`b");
        assert_eq!(text("`` x"), "\\`\\` x");
        assert_eq!(text("`a|b` and `<img>`"), "`a|b` and `<img>`");
    }

    #[test]
    fn code_spans_hold_any_text() {
        assert_eq!(code("inventory.yaml:3"), "`inventory.yaml:3`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b\nc"), "`a|b c`");
    }

    #[test]
    fn report_has_every_section_in_order() {
        let md = render(&fixture::report());
        let headings: Vec<&str> = md.lines().filter(|l| l.starts_with("## ")).collect();
        assert_eq!(
            headings,
            [
                "## Overall",
                "## Pillars",
                "## Findings",
                "## Not checked (1)",
                "## Roadmap",
                "## Changes since 2026-11-01T10:00:00Z",
            ]
        );
        assert!(md.starts_with("# Zero Trust for AI assessment: Acme \"quotes\" \\& \\<tags\\>\n"));
        assert!(md.ends_with(".\n") || md.ends_with("|\n"), "{md}");
        assert!(!md.ends_with("\n\n"));
        assert!(md.contains("**Score: 48.0 / 100** · **Maturity: Initial**"));
        assert!(md.contains("| Access and least privilege | 45.3 | Initial | 0 | 0 | 1 | 0 | 0 |"));
        assert!(md.contains("| Observability and response | n/a |"));
        assert!(md.contains("Score 40.0 → 48.0 (+8.0); maturity Traditional → Initial."));
        assert!(md.contains("| Data | 50.0 | 100.0 | +50.0 |"));
        assert!(md.contains("- `ZTAI-GV-01` ZTAI-GV-01 title (high): new → manual"));
    }

    #[test]
    fn findings_are_most_severe_first_with_located_evidence() {
        let md = render(&fixture::report());
        let critical = md.find("### Critical (1)").unwrap();
        let medium = md.find("### Medium (1)").unwrap();
        assert!(critical < medium);
        assert!(
            !md.contains("### High"),
            "a passed high control is not a finding"
        );
        assert!(md.contains(
            "- `inventory.yaml:12` (`agents[0].credential`): \"quotes\" \\& \\<tags\\>\n"
        ));
        assert!(md.contains("- `<built-in example>/inventory.yaml:30` (`agents[1].credential`)"));
        assert!(md.contains("- Seen in the audit log. (context)\n"));
        assert!(md.contains("- `policies/acme.cedar` (`permit-all`): tools: \\[\"\\*\"\\]"));
        assert!(md.contains("Remediation: Fix ZTAI-ID-01.\n"));
        assert!(md.contains("- `ZTAI-OB-01` Audit log is kept: No --data-dir given.\n"));
        // The roadmap follows phase order, whatever the item order.
        let assess = md.find("### 1. Assess").unwrap();
        let foundation = md.find("### 2. Foundation").unwrap();
        let controls = md.find("### 3. Controls").unwrap();
        assert!(assess < foundation && foundation < controls);
        assert!(!md.contains("Optimise"));
        assert!(md.contains("1. `ZTAI-AC-02` Grants are narrow (medium, effort high): Replace the wildcard. After `ZTAI-ID-01`.\n"));
    }

    #[test]
    fn rendering_is_deterministic_and_needs_no_comparison() {
        let mut report = fixture::report();
        assert_eq!(render(&report), render(&report.clone()));
        report.comparison = None;
        report.roadmap.clear();
        let md = render(&report);
        assert!(!md.contains("## Changes"));
        assert!(md.contains("## Roadmap\n\nNothing to do.\n"));
    }

    #[test]
    fn deltas_never_show_negative_zero() {
        assert_eq!(delta(Some(50.0), Some(50.04)), "±0.0");
        assert_eq!(delta(Some(50.0), Some(49.96)), "±0.0");
        assert_eq!(delta(Some(50.0), Some(42.5)), "-7.5");
        assert_eq!(delta(None, Some(1.0)), "n/a");
    }
}
