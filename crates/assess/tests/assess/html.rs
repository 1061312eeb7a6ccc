//! The HTML report in a real browser: headless Chromium loads the page from a
//! file, runs its script, and we read back the DOM it built. The page must come
//! up without script errors, fill the findings table, keep hostile strings as
//! text, and honour filters given in the address. The page and a screenshot of
//! it are kept at `target/assess-artifacts/report.{html,png}` for people to look at.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code panics on failure"
)]

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use zt4ai_assess::report::html;
use zt4ai_assess::*;

const SCRIPT: &str = "</script><img src=x onerror=alert(1)>";
const QUOTES: &str = "\"quotes\" & <tags>";

/// How long one Chromium run may take before it is killed and the test fails.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn html_report_comes_up_in_headless_chromium_with_hostile_strings_as_text() {
    let chromium = report_tools()["chromium"].clone();
    let report = sample_report();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html::render(&report)).unwrap();
    let url = format!("file://{}", page.display());

    let dom = dump_dom(&chromium, &url, dir.path());

    // The script ran to the end, without errors.
    let body = start_tag(&dom, "<body");
    assert!(
        body.contains(r#"data-ready="1""#),
        "the script did not finish: {body}\n{dom}"
    );
    assert!(!body.contains("data-errors"), "script errors: {body}");
    assert!(
        !start_tag(&dom, "<html").contains("data-errors"),
        "script errors before <body>"
    );

    // Every section, in order.
    let mut at = 0;
    for id in [
        "overview", "pillars", "findings", "details", "roadmap", "changes",
    ] {
        let found = dom
            .find(&format!(r#"<section id="{id}""#))
            .unwrap_or_else(|| panic!("no section #{id}"));
        assert!(found > at, "#{id} out of order");
        at = found;
    }

    // One row per result, most pressing first.
    let rows = rows(&dom);
    assert_eq!(rows.len(), report.results.len(), "{rows:#?}");
    let order: Vec<&str> = rows.iter().map(|r| attribute(r, "data-control")).collect();
    assert_eq!(
        order,
        [
            "ZTAI-ID-01",
            "ZTAI-OB-02",
            "ZTAI-AC-05",
            "ZTAI-AC-02",
            "ZTAI-GV-01",
            "ZTAI-OB-01",
            "ZTAI-ID-02",
        ]
    );
    assert!(
        rows.iter().all(|r| !r.contains(" hidden")),
        "all rows show by default"
    );
    assert!(
        rows[0].contains(r#"aria-selected="true""#),
        "the first row is selected"
    );
    let table = between(&dom, r#"<tbody id="findings-body">"#, "</tbody>");
    assert!(table.contains(
        "Agents have their own identities &lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    ));
    assert!(dom.contains(
        r#"<p class="muted" id="findings-count" aria-live="polite">Showing 7 of 7 results</p>"#
    ));

    // The details panel shows the first result, its evidence located.
    let details = between(&dom, r#"id="details-body""#, "</section>");
    assert!(
        details
            .contains("<code>ZTAI-ID-01</code> Agents have their own identities &lt;/script&gt;")
    );
    assert!(
        details.contains(r#"<code class="loc">inventory.yaml:12</code>"#),
        "{details}"
    );
    assert!(
        details.contains(r#"<code class="loc">&lt;built-in example&gt;/inventory.yaml:30</code>"#)
    );
    assert!(
        details.contains(r#"<span class="message">"quotes" &amp; &lt;tags&gt;</span>"#),
        "{details}"
    );
    assert!(
        details.contains(
            r#"<span class="message">Shared with <code>agents[1]</code> and <code>&lt;/code&gt;&lt;img src=x&gt;</code>.</span>"#
        ),
        "{details}"
    );
    assert!(details.contains(
        r#"<p class="remediation">Remediate ZTAI-ID-01: "quotes" &amp; &lt;tags&gt;</p>"#
    ));

    // Hostile strings stayed text: no element was injected anywhere.
    assert!(!dom.contains("<img"), "an injected <img> in the DOM");
    assert!(!dom.contains("<tags"), "an injected <tags> in the DOM");
    assert!(dom.contains("<h1>Acme \"quotes\" &amp; &lt;tags&gt;</h1>"));

    // The embedded data is the report, exactly.
    let data = between(
        &dom,
        r#"<script type="application/json" id="report-data">"#,
        "</script>",
    );
    let embedded: Report = serde_json::from_str(data).unwrap();
    assert_eq!(embedded, report);

    // The chart: a labelled bar per pillar.
    let chart = between(&dom, "<svg", "</svg>");
    assert_eq!(
        chart.matches(r#"<g class="bar""#).count(),
        report.pillars.len()
    );
    assert!(chart.contains(r#"class="bar-label" x="0" y="23">Identity</text>"#));

    // A screenshot for people, kept with the build's artefacts.
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/assess-artifacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    std::fs::copy(&page, artefacts.join("report.html")).unwrap();
    let shot = artefacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    screenshot(&chromium, &url, dir.path(), &shot);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {}",
        shot.display()
    );
    assert!(
        png.len() > 20_000,
        "a suspiciously small screenshot ({} bytes)",
        png.len()
    );
}

#[test]
fn html_report_of_a_real_assessment_comes_up() {
    let chromium = report_tools()["chromium"].clone();
    let report = crate::golden::report("weak");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("weak.html");
    std::fs::write(&page, html::render(&report)).unwrap();
    let dom = dump_dom(&chromium, &format!("file://{}", page.display()), dir.path());
    let body = start_tag(&dom, "<body");
    assert!(
        body.contains(r#"data-ready="1""#) && !body.contains("data-errors"),
        "{body}"
    );
    assert_eq!(rows(&dom).len(), report.results.len());
    for id in ["overview", "pillars", "findings", "details", "roadmap"] {
        assert!(dom.contains(&format!("id=\"{id}\"")), "no section {id}");
    }
    // The poisoned tool description from the weak inventory is text, not markup.
    assert!(dom.contains("Weak Example Ltd"));
}

#[test]
fn html_report_applies_filters_and_selection_from_the_address() {
    let chromium = report_tools()["chromium"].clone();
    let report = sample_report();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, html::render(&report)).unwrap();

    // Failed or investigate, in Access, matching "grant": AC-02 and AC-05; select AC-02.
    let url = format!(
        "file://{}#findings?status=failed,investigate&pillar=access&q=GRANT&select=ZTAI-AC-02",
        page.display()
    );
    let dom = dump_dom(&chromium, &url, dir.path());
    let body = start_tag(&dom, "<body");
    assert!(
        body.contains(r#"data-ready="1""#) && !body.contains("data-errors"),
        "{body}"
    );

    let rows = rows(&dom);
    assert_eq!(rows.len(), report.results.len());
    let shown: Vec<&str> = rows
        .iter()
        .filter(|r| !r.contains(" hidden"))
        .map(|r| attribute(r, "data-control"))
        .collect();
    assert_eq!(shown, ["ZTAI-AC-05", "ZTAI-AC-02"]);
    assert!(dom.contains(">Showing 2 of 7 results<"));
    let selected: Vec<&str> = rows
        .iter()
        .filter(|r| r.contains(r#"aria-selected="true""#))
        .map(|r| attribute(r, "data-control"))
        .collect();
    assert_eq!(selected, ["ZTAI-AC-02"]);
    let details = between(&dom, r#"id="details-body""#, "</section>");
    assert!(
        details.contains("<code>ZTAI-AC-02</code> Grants are narrow"),
        "{details}"
    );
    assert!(
        details.contains(
            r#"<code class="loc">policies/acme.cedar</code> <code class="field">permit-all</code>"#
        ),
        "{details}"
    );
}

/// The page after its scripts ran, as Chromium serialises it. Fails if the page
/// wrote to the console: a Content-Security-Policy violation (something the page
/// tried to load) or a logged error.
fn dump_dom(chromium: &Path, url: &str, work: &Path) -> String {
    let (dom, log) = run_chromium(
        chromium,
        work,
        &[
            // Console messages go to stderr as `INFO:CONSOLE` lines.
            "--enable-logging=stderr".to_owned(),
            "--v=1".to_owned(),
            "--dump-dom".to_owned(),
            url.to_owned(),
        ],
    );
    assert!(dom.contains("</html>"), "Chromium printed no DOM:\n{dom}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "the page wrote to the console:\n{}",
        console.join("\n")
    );
    dom
}

fn screenshot(chromium: &Path, url: &str, work: &Path, png: &Path) {
    run_chromium(
        chromium,
        work,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2000".to_owned(),
            url.to_owned(),
        ],
    );
    assert!(
        png.exists(),
        "Chromium wrote no screenshot to {}",
        png.display()
    );
}

/// Runs headless Chromium with a fresh profile; returns its stdout and stderr.
/// Kills it (its whole process group) and fails after [`CHROMIUM_TIMEOUT`].
fn run_chromium(chromium: &Path, work: &Path, args: &[String]) -> (String, String) {
    let profile = tempfile::tempdir_in(work).unwrap();
    let logs = tempfile::tempdir_in(work).unwrap();
    let stdout_path = logs.path().join("stdout");
    let stderr_path = logs.path().join("stderr");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&stdout_path).unwrap())
        .stderr(File::create(&stderr_path).unwrap())
        // Its own process group, so that a hung run is killed with its helpers.
        .process_group(0)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CHROMIUM_TIMEOUT {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "Chromium did not finish within {CHROMIUM_TIMEOUT:?} ({args:?}); stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = String::from_utf8_lossy(&std::fs::read(&stderr_path).unwrap()).into_owned();
    assert!(
        status.success(),
        "Chromium failed ({status}, {args:?}); stderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// Runs `scripts/report-tools` and returns its `key=value` lines.
fn report_tools() -> BTreeMap<String, PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/report-tools");
    let out = Command::new("bash").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let tools: BTreeMap<String, PathBuf> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), PathBuf::from(v)))
        .collect();
    assert!(
        tools.get("chromium").is_some_and(|p| p.exists()),
        "report-tools gave no chromium: {tools:?}"
    );
    tools
}

/// The start tag that begins with `open` (`<body`), up to its `>`.
fn start_tag<'a>(dom: &'a str, open: &str) -> &'a str {
    let start = dom
        .find(open)
        .unwrap_or_else(|| panic!("no {open} in the DOM"));
    let end = dom[start..].find('>').unwrap();
    &dom[start..=start + end]
}

/// The text between the first `from` and the next `to`.
fn between<'a>(dom: &'a str, from: &str, to: &str) -> &'a str {
    let start = dom
        .find(from)
        .unwrap_or_else(|| panic!("no {from} in the DOM"))
        + from.len();
    let end = dom[start..]
        .find(to)
        .unwrap_or_else(|| panic!("no {to} after {from}"));
    &dom[start..start + end]
}

/// The start tags of the findings table's result rows.
fn rows(dom: &str) -> Vec<&str> {
    let table = between(dom, r#"<tbody id="findings-body">"#, "</tbody>");
    table
        .match_indices(r#"<tr class="result""#)
        .map(|(i, _)| {
            let end = table[i..].find('>').unwrap();
            &table[i..=i + end]
        })
        .collect()
}

/// The value of `name="…"` in a start tag.
fn attribute<'a>(tag: &'a str, name: &str) -> &'a str {
    between(tag, &format!(r#"{name}=""#), "\"")
}

fn evidence(
    message: &str,
    file: Option<&str>,
    line: Option<usize>,
    field: Option<&str>,
) -> Evidence {
    Evidence {
        message: message.into(),
        file: file.map(Into::into),
        line,
        column: line.map(|_| 5),
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
        check: (status != Status::Manual).then(|| control.to_lowercase()),
        remediation: format!("Remediate {control}: {QUOTES}"),
    }
}

/// A report with every status, several pillars, evidence with and without
/// files, hostile strings in titles and evidence, a roadmap and a comparison.
fn sample_report() -> Report {
    let results = vec![
        result(
            "ZTAI-ID-01",
            &format!("Agents have their own identities {SCRIPT}"),
            Pillar::Identity,
            Severity::Critical,
            Status::Failed,
            &format!("Two agents share one credential {SCRIPT}"),
            vec![
                evidence(
                    QUOTES,
                    Some("inventory.yaml"),
                    Some(12),
                    Some("agents[0].credential"),
                ),
                evidence(
                    "Shared with `agents[1]` and `</code><img src=x>`.",
                    Some("<built-in example>/inventory.yaml"),
                    Some(30),
                    Some("agents[1].credential"),
                ),
                Evidence::note("The gateway accepted the shared token."),
            ],
        ),
        result(
            "ZTAI-ID-02",
            "Tokens are short-lived",
            Pillar::Identity,
            Severity::High,
            Status::Passed,
            "Tokens expire within 15 minutes.",
            vec![],
        ),
        result(
            "ZTAI-AC-02",
            "Grants are narrow",
            Pillar::Access,
            Severity::Medium,
            Status::Investigate,
            "A grant uses a wildcard.",
            vec![evidence(
                "A policy permits every tool.",
                Some("policies/acme.cedar"),
                None,
                Some("permit-all"),
            )],
        ),
        result(
            "ZTAI-AC-05",
            "Unused grants are removed",
            Pillar::Access,
            Severity::Low,
            Status::Failed,
            "A grant was never used.",
            vec![evidence(
                "Unused for 90 days.",
                Some("inventory.yaml"),
                Some(40),
                Some("agents[3].grants.tools[0]"),
            )],
        ),
        result(
            "ZTAI-OB-02",
            "Denials are alerted on",
            Pillar::ObservabilityResponse,
            Severity::High,
            Status::Failed,
            "No alert followed repeated denials.",
            vec![evidence(
                "14 denials in one hour, no alert.",
                None,
                None,
                None,
            )],
        ),
        result(
            "ZTAI-OB-01",
            "Audit log is kept",
            Pillar::ObservabilityResponse,
            Severity::Medium,
            Status::Skipped,
            "No --data-dir given.",
            vec![],
        ),
        result(
            "ZTAI-GV-01",
            &format!("Owners review grants {QUOTES}"),
            Pillar::Governance,
            Severity::Medium,
            Status::Manual,
            "Does someone review grants every quarter?",
            vec![],
        ),
    ];
    let mut counts = Counts::default();
    for r in &results {
        counts.add(r.status);
    }
    let pillars = Pillar::ALL
        .into_iter()
        .map(|pillar| {
            let mut counts = Counts::default();
            for r in results.iter().filter(|r| r.pillar == pillar) {
                counts.add(r.status);
            }
            let assessed = counts.passed + counts.failed;
            PillarScore {
                pillar,
                score: (assessed > 0).then(|| 100.0 * counts.passed as f64 / assessed as f64),
                maturity: if counts.failed > 0 {
                    Maturity::Traditional
                } else {
                    Maturity::Advanced
                },
                counts,
            }
        })
        .collect();
    let change = |control: &str, title: &str, before: Option<Status>, after: Status| Change {
        control: control.into(),
        title: title.into(),
        severity: Severity::High,
        before,
        after,
    };
    Report {
        format: REPORT_FORMAT,
        zt4ai_version: "0.1.0".into(),
        catalogue_version: "2026.12".into(),
        assessed_at: "2026-12-01T10:00:00Z".into(),
        target: Target {
            organisation: Some(format!("Acme {QUOTES}")),
            inventory: "<built-in example>/inventory.yaml".into(),
            policies: vec![
                "policies/acme.cedar".into(),
                format!("policies/{SCRIPT}.cedar"),
            ],
            data_dir: Some("/var/lib/zt4ai".into()),
            gateway: None,
            counts: BTreeMap::from([
                ("agents".into(), 4),
                ("tools".into(), 9),
                ("users".into(), 12),
            ]),
        },
        score: Some(41.7),
        maturity: Maturity::Traditional,
        counts,
        pillars,
        results,
        roadmap: vec![
            RoadmapItem {
                phase: Phase::Assess,
                control: "ZTAI-GV-01".into(),
                title: format!("Owners review grants {QUOTES}"),
                severity: Severity::Medium,
                effort: Level::Low,
                action: "Ask each owner when they last reviewed their agents' grants.".into(),
                after: vec![],
            },
            RoadmapItem {
                phase: Phase::Foundation,
                control: "ZTAI-ID-01".into(),
                title: format!("Agents have their own identities {SCRIPT}"),
                severity: Severity::Critical,
                effort: Level::Low,
                action: format!("Give each agent its own credential {SCRIPT}"),
                after: vec![],
            },
            RoadmapItem {
                phase: Phase::Controls,
                control: "ZTAI-OB-02".into(),
                title: "Denials are alerted on".into(),
                severity: Severity::High,
                effort: Level::Medium,
                action: "Alert on repeated denials.".into(),
                after: vec!["ZTAI-ID-01".into()],
            },
            RoadmapItem {
                phase: Phase::Optimise,
                control: "ZTAI-AC-05".into(),
                title: "Unused grants are removed".into(),
                severity: Severity::Low,
                effort: Level::High,
                action: "Remove grants unused for 90 days.".into(),
                after: vec![],
            },
        ],
        comparison: Some(Comparison {
            earlier_assessed_at: "2026-11-01T10:00:00Z".into(),
            earlier_score: Some(35.0),
            earlier_maturity: Maturity::Traditional,
            improved: vec![change(
                "ZTAI-ID-02",
                "Tokens are short-lived",
                Some(Status::Failed),
                Status::Passed,
            )],
            regressed: vec![change(
                "ZTAI-AC-05",
                &format!("Unused grants are removed {SCRIPT}"),
                Some(Status::Passed),
                Status::Failed,
            )],
            other: vec![change(
                "ZTAI-GV-01",
                "Owners review grants",
                None,
                Status::Manual,
            )],
            pillars: vec![PillarDelta {
                pillar: Pillar::Identity,
                before: Some(0.0),
                after: Some(50.0),
            }],
        }),
        threat_model: None,
    }
}
