//! The SARIF report is valid SARIF 2.1.0 (checked with Python's `jsonschema`
//! against the OASIS schema, formats included) and says what the report says.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code panics on failure"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use zt4ai_assess::report::sarif;
use zt4ai_assess::*;

const SCRIPT: &str = "</script><img src=x onerror=alert(1)>";
const QUOTES: &str = "\"quotes\" & <tags>";

/// Validates each document against the schema; prints one line per error.
const VALIDATE: &str = r#"
import json, sys
import jsonschema

with open(sys.argv[1], encoding="utf-8") as f:
    schema = json.load(f)
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(
    schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
)
failed = False
for path in sys.argv[2:]:
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    for e in sorted(validator.iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path]):
        failed = True
        where = "/".join(str(p) for p in e.absolute_path)
        print(f"/{where}: {e.message}")
sys.exit(1 if failed else 0)
"#;

#[test]
fn sarif_report_is_valid_sarif_2_1_0() {
    let tools = report_tools();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.sarif");
    std::fs::write(&path, sarif::to_string(&sample_report())).unwrap();

    let (ok, messages) = validate(&tools, &path);
    assert!(
        ok,
        "the SARIF report does not match the SARIF 2.1.0 schema:\n{messages}"
    );

    // A report with nothing to say is valid too.
    let mut clean = sample_report();
    clean.results.retain(|r| r.status == Status::Passed);
    clean.score = None;
    std::fs::write(&path, sarif::to_string(&clean)).unwrap();
    let (ok, messages) = validate(&tools, &path);
    assert!(ok, "an empty SARIF report is invalid:\n{messages}");
}

#[test]
fn real_assessments_are_valid_sarif_2_1_0() {
    let tools = report_tools();
    let dir = tempfile::tempdir().unwrap();
    for name in ["acme", "weak"] {
        let report = crate::golden::report(name);
        let path = dir.path().join(format!("{name}.sarif"));
        let text = sarif::to_string(&report);
        std::fs::write(&path, &text).unwrap();
        let (ok, messages) = validate(&tools, &path);
        assert!(ok, "{name}: not SARIF 2.1.0:\n{messages}");
        // Every failed finding with a location is in it.
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        let results = doc["runs"][0]["results"].as_array().unwrap().len();
        let located = report
            .results
            .iter()
            .filter(|r| matches!(r.status, Status::Failed | Status::Investigate))
            .flat_map(|r| &r.evidence)
            .filter(|e| e.problem && e.file.is_some())
            .count();
        assert_eq!(results, located, "{name}");
    }
}

/// The validator is not vacuous: it rejects what the renderer must never write.
#[test]
fn schema_validation_catches_what_the_renderer_avoids() {
    let tools = report_tools();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.sarif");
    let mut doc = sarif::render(&sample_report());
    let result = &mut doc["runs"][0]["results"][0];
    // Unencoded, this path is not a URI reference.
    result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] =
        "<built-in example>/inventory.yaml".into();
    result["level"] = "fatal".into();
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();

    let (ok, messages) = validate(&tools, &path);
    assert!(!ok, "the validator accepted a broken document");
    assert!(messages.contains("is not a 'uri-reference'"), "{messages}");
    assert!(messages.contains("'fatal' is not one of"), "{messages}");
}

#[test]
fn sarif_results_match_the_report() {
    let report = sample_report();
    let doc = sarif::render(&report);
    assert_eq!(
        doc["$schema"],
        "https://json.schemastore.org/sarif-2.1.0.json"
    );
    assert_eq!(doc["version"], "2.1.0");
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "zt4ai-assess");
    assert_eq!(driver["version"], report.zt4ai_version);
    assert_eq!(driver["informationUri"], "https://example.invalid/zt4ai");
    assert_eq!(run["properties"]["score"], 51.25);
    assert_eq!(run["properties"]["maturity"], "initial");

    // What the report says should be there: problem evidence with a file, of
    // failed and investigate results, in report order.
    let expected: Vec<(&ControlResult, &Evidence)> = report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Failed | Status::Investigate))
        .flat_map(|r| {
            r.evidence
                .iter()
                .filter(|e| e.problem && e.file.is_some())
                .map(move |e| (r, e))
        })
        .collect();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), expected.len());
    assert_eq!(results.len(), 5, "the sample has five located problems");

    let rules = driver["rules"].as_array().unwrap();
    let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        rule_ids,
        ["ZTAI-ID-01", "ZTAI-AC-02", "ZTAI-NE-01", "ZTAI-AC-05"]
    );

    for (got, (r, e)) in results.iter().zip(&expected) {
        assert_eq!(got["ruleId"], r.control.as_str());
        let rule = &rules[usize::try_from(got["ruleIndex"].as_u64().unwrap()).unwrap()];
        assert_eq!(rule["id"], r.control.as_str());
        assert_eq!(rule["shortDescription"]["text"], r.title.as_str());
        assert_eq!(rule["help"]["text"], r.remediation.as_str());
        assert_eq!(rule["properties"]["pillar"], r.pillar.id());
        assert_eq!(rule["properties"]["severity"], r.severity.name());
        let level = match (r.status, r.severity) {
            (Status::Investigate, _) => "note",
            (_, Severity::Critical | Severity::High) => "error",
            (_, Severity::Medium) => "warning",
            (_, Severity::Low) => "note",
        };
        assert_eq!(got["level"], level, "{}", r.control);
        if r.status == Status::Investigate {
            assert_eq!(got["properties"]["zt4ai.status"], "investigate");
        }
        assert_eq!(got["message"]["text"], e.message.as_str());
        let physical = &got["locations"][0]["physicalLocation"];
        match e.line {
            Some(line) => assert_eq!(physical["region"]["startLine"], line),
            None => assert!(physical.get("region").is_none()),
        }
        if let (Some(_), Some(column)) = (e.line, e.column) {
            assert_eq!(physical["region"]["startColumn"], column);
        }
        let fingerprint = got["partialFingerprints"]["zt4ai/v1"].as_str().unwrap();
        assert_eq!(fingerprint.len(), 64);
        assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    }

    let uris: Vec<&str> = results
        .iter()
        .map(|r| {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        uris,
        [
            "inventory.yaml",
            "%3Cbuilt-in%20example%3E/inventory.yaml",
            "policies/acme.cedar",
            "inventory.yaml",
            "deploy/team%20a/inventory.yaml",
        ]
    );
    let severities: Vec<&str> = rules
        .iter()
        .map(|r| r["properties"]["security-severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities, ["9.5", "5.5", "8.0", "3.0"]);

    // Same finding, same fingerprint; another field, another fingerprint.
    let fingerprints: Vec<&Value> = results
        .iter()
        .map(|r| &r["partialFingerprints"]["zt4ai/v1"])
        .collect();
    let again = sarif::render(&report);
    assert_eq!(
        fingerprints,
        again["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["partialFingerprints"]["zt4ai/v1"])
            .collect::<Vec<_>>()
    );
    assert_ne!(fingerprints[0], fingerprints[3]);
}

/// Runs `scripts/report-tools` and returns its `key=value` lines.
fn report_tools() -> BTreeMap<String, PathBuf> {
    let script = repo_root().join("scripts/report-tools");
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
    for key in ["python", "sarif_schema", "chromium"] {
        assert!(
            tools.get(key).is_some_and(|p| p.exists()),
            "report-tools gave no usable {key}: {tools:?}"
        );
    }
    tools
}

/// Validates `doc` against the SARIF schema: whether it is valid, and the messages.
fn validate(tools: &BTreeMap<String, PathBuf>, doc: &Path) -> (bool, String) {
    let out = Command::new(&tools["python"])
        .arg("-c")
        .arg(VALIDATE)
        .arg(&tools["sarif_schema"])
        .arg(doc)
        .output()
        .unwrap();
    let messages = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.code() {
        Some(0) => (true, messages),
        Some(1) if !messages.contains("Traceback") => (false, messages),
        _ => panic!("the validator did not run:\n{messages}"),
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn evidence(
    message: &str,
    file: Option<&str>,
    line: Option<usize>,
    column: Option<usize>,
    field: Option<&str>,
) -> Evidence {
    Evidence {
        message: message.into(),
        file: file.map(Into::into),
        line,
        column,
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
    evidence: Vec<Evidence>,
) -> ControlResult {
    ControlResult {
        control: control.into(),
        title: title.into(),
        pillar,
        severity,
        status,
        summary: format!("{title}: summary"),
        evidence,
        check: (status != Status::Manual).then(|| control.to_lowercase()),
        remediation: format!("Remediate {control}: {QUOTES}"),
    }
}

/// A report with every status, evidence with and without files, supporting
/// context, hostile strings, unusual paths, a roadmap and a comparison.
fn sample_report() -> Report {
    let results = vec![
        result(
            "ZTAI-ID-01",
            &format!("Agents have their own identities {SCRIPT}"),
            Pillar::Identity,
            Severity::Critical,
            Status::Failed,
            vec![
                evidence(
                    QUOTES,
                    Some("inventory.yaml"),
                    Some(12),
                    Some(5),
                    Some("agents[0].credential"),
                ),
                evidence(
                    "Shared with agents[1].",
                    Some("<built-in example>/inventory.yaml"),
                    Some(30),
                    Some(7),
                    Some("agents[1].credential"),
                ),
                // Supporting context with a file: not a SARIF result.
                Evidence {
                    problem: false,
                    ..evidence(
                        "The credential is defined here.",
                        Some("inventory.yaml"),
                        Some(3),
                        None,
                        Some("credentials[0]"),
                    )
                },
                // A problem without a file (a live probe): not a SARIF result.
                evidence(
                    "The gateway accepted the shared token.",
                    None,
                    None,
                    None,
                    None,
                ),
            ],
        ),
        result(
            "ZTAI-ID-02",
            "Tokens are short-lived",
            Pillar::Identity,
            Severity::High,
            Status::Passed,
            vec![],
        ),
        result(
            "ZTAI-AC-02",
            "Grants are narrow",
            Pillar::Access,
            Severity::Medium,
            Status::Investigate,
            vec![evidence(
                "A policy permits every tool.",
                Some("policies/acme.cedar"),
                None,
                None,
                Some("permit-all"),
            )],
        ),
        result(
            "ZTAI-NE-01",
            "Egress is allow-listed",
            Pillar::NetworkEgress,
            Severity::High,
            Status::Failed,
            vec![evidence(
                "mail.example allows any recipient.",
                Some("inventory.yaml"),
                Some(88),
                None,
                Some("destinations[2]"),
            )],
        ),
        result(
            "ZTAI-AC-05",
            "Unused grants are removed",
            Pillar::Access,
            Severity::Low,
            Status::Failed,
            vec![evidence(
                "A grant was never used in 90 days.",
                Some("deploy/team a/inventory.yaml"),
                Some(40),
                Some(9),
                Some("agents[3].grants.tools[0]"),
            )],
        ),
        result(
            "ZTAI-OB-02",
            "Denials are alerted on",
            Pillar::ObservabilityResponse,
            Severity::High,
            Status::Failed,
            // Audit-log findings only: nothing for SARIF.
            vec![evidence(
                "No alert followed 14 denials.",
                None,
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
            vec![],
        ),
        result(
            "ZTAI-GV-01",
            "Owners review grants",
            Pillar::Governance,
            Severity::Medium,
            Status::Manual,
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
            PillarScore {
                pillar,
                score: (counts.passed + counts.failed > 0)
                    .then(|| 100.0 * counts.passed as f64 / (counts.passed + counts.failed) as f64),
                maturity: Maturity::Initial,
                counts,
            }
        })
        .collect();
    Report {
        format: REPORT_FORMAT,
        zt4ai_version: "0.1.0".into(),
        catalogue_version: "2026.12".into(),
        assessed_at: "2026-12-01T10:00:00Z".into(),
        target: Target {
            organisation: Some(format!("Acme {QUOTES}")),
            inventory: "inventory.yaml".into(),
            policies: vec!["policies/acme.cedar".into()],
            data_dir: Some("/var/lib/zt4ai".into()),
            gateway: None,
            counts: BTreeMap::from([("agents".into(), 4), ("tools".into(), 9)]),
        },
        score: Some(51.25),
        maturity: Maturity::Initial,
        counts,
        pillars,
        results,
        roadmap: vec![RoadmapItem {
            phase: Phase::Foundation,
            control: "ZTAI-ID-01".into(),
            title: format!("Agents have their own identities {SCRIPT}"),
            severity: Severity::Critical,
            effort: Level::Low,
            action: "Give each agent its own credential.".into(),
            after: vec![],
        }],
        comparison: Some(Comparison {
            earlier_assessed_at: "2026-11-01T10:00:00Z".into(),
            earlier_score: Some(40.0),
            earlier_maturity: Maturity::Traditional,
            improved: vec![],
            regressed: vec![],
            other: vec![],
            pillars: vec![],
        }),
        threat_model: None,
    }
}
