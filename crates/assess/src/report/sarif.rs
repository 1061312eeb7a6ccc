//! The SARIF 2.1.0 report: config and policy findings for code-scanning tools.
//!
//! SARIF is how static-analysis results reach code review (GitHub code scanning,
//! IDE viewers), so it carries only what points at a file: for each failed or
//! investigate result, one SARIF result per piece of problem evidence that has a
//! file. Findings from the audit log or a live gateway, which have no file, stay
//! in the other reports. Each control that has a SARIF result becomes a rule,
//! with the control's remediation as its help and a `security-severity` that
//! code-scanning tools rank by.
//!
//! Paths are kept as the report gives them (relative paths stay relative, so a
//! viewer resolves them against the checkout), percent-encoded where a character
//! is not allowed in a URI reference (`<built-in example>/inventory.yaml`).
//! Each result carries a partial fingerprint from the control, the file and the
//! field, which do not move when lines are added above a finding, so a viewer
//! can tell a new finding from one it has seen before.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::model::{ControlResult, Evidence, Report, Severity, Status};

/// The `$schema` of the documents [`render`] writes.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The tool name in `tool.driver.name`.
pub const TOOL_NAME: &str = "zt4ai-assess";

/// The tool's `informationUri`.
pub const INFORMATION_URI: &str = "https://example.invalid/zt4ai";

/// The key of the fingerprint in each result's `partialFingerprints`
/// (versioned, so that a change of what is hashed shows as a new key).
pub const FINGERPRINT_KEY: &str = "zt4ai/v1";

/// Renders `report` as a SARIF 2.1.0 log with one run.
pub fn render(report: &Report) -> Value {
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_ids: Vec<&str> = Vec::new();
    let mut results: Vec<Value> = Vec::new();

    for r in report
        .results
        .iter()
        .filter(|r| matches!(r.status, Status::Failed | Status::Investigate))
    {
        for e in r.evidence.iter().filter(|e| e.problem) {
            let Some(file) = e.file.as_deref() else {
                continue;
            };
            let index = match rule_ids.iter().position(|id| *id == r.control) {
                Some(index) => index,
                None => {
                    rule_ids.push(&r.control);
                    rules.push(rule(r));
                    rules.len() - 1
                }
            };
            results.push(result(r, e, file, index));
        }
    }

    let mut properties = Map::new();
    if let Some(score) = report.score {
        properties.insert("score".into(), json!(score));
    }
    properties.insert("maturity".into(), json!(report.maturity));
    properties.insert("assessedAt".into(), json!(report.assessed_at));
    properties.insert("catalogueVersion".into(), json!(report.catalogue_version));
    if let Some(organisation) = &report.target.organisation {
        properties.insert("organisation".into(), json!(organisation));
    }
    properties.insert("counts".into(), json!(report.counts));

    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": TOOL_NAME,
                    "version": report.zt4ai_version,
                    "informationUri": INFORMATION_URI,
                    "rules": rules,
                }
            },
            // Columns come from the YAML parser, which counts characters.
            "columnKind": "unicodeCodePoints",
            "results": results,
            "properties": properties,
        }]
    })
}

/// [`render`] as pretty-printed JSON, ending with a newline.
pub fn to_string(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(&render(report)).unwrap_or_else(|_| {
        // INVARIANT: a `serde_json::Value` always serialises (its map keys are strings).
        String::from("{}")
    });
    s.push('\n');
    s
}

/// The SARIF level for a control that failed with this severity.
pub fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// The `security-severity` (CVSS-like, 0.0–10.0) that code-scanning tools rank by.
pub fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// A path as a URI reference: characters a URI cannot hold are percent-encoded
/// (UTF-8), `/` stays, so relative paths stay relative. `:` is encoded too, so
/// that `c:/x` or `a:b.yaml` cannot read as a URI scheme.
pub fn path_to_uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'/'
                    | b'!'
                    | b'$'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'@'
            );
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The stable identity of a finding: the control, the file and the field.
pub fn fingerprint(control: &str, file: &str, field: Option<&str>) -> String {
    let mut h = Sha256::new();
    // NUL-separated, so that ("a", "bc") and ("ab", "c") differ.
    h.update(control.as_bytes());
    h.update([0]);
    h.update(file.as_bytes());
    h.update([0]);
    h.update(field.unwrap_or("").as_bytes());
    zt4ai_core::hex(&h.finalize())
}

fn rule(r: &ControlResult) -> Value {
    json!({
        "id": r.control,
        "name": rule_name(&r.title, &r.control),
        "shortDescription": { "text": r.title },
        "help": { "text": r.remediation },
        "defaultConfiguration": { "level": level(r.severity) },
        "properties": {
            "pillar": r.pillar.id(),
            "severity": r.severity.name(),
            "security-severity": security_severity(r.severity),
            "tags": ["security", "zero-trust", r.pillar.id()],
        }
    })
}

fn result(r: &ControlResult, e: &Evidence, file: &str, rule_index: usize) -> Value {
    let level = match r.status {
        Status::Investigate => "note",
        _ => level(r.severity),
    };

    let mut physical = Map::new();
    physical.insert(
        "artifactLocation".into(),
        json!({ "uri": path_to_uri(file) }),
    );
    if let Some(line) = e.line.filter(|l| *l >= 1) {
        let mut region = Map::new();
        region.insert("startLine".into(), json!(line));
        if let Some(column) = e.column.filter(|c| *c >= 1) {
            region.insert("startColumn".into(), json!(column));
        }
        physical.insert("region".into(), Value::Object(region));
    }
    let mut location = Map::new();
    location.insert("physicalLocation".into(), Value::Object(physical));
    if let Some(field) = &e.field {
        location.insert(
            "logicalLocations".into(),
            json!([{ "fullyQualifiedName": field }]),
        );
    }

    let mut properties = Map::new();
    properties.insert("zt4ai.status".into(), json!(r.status.name()));
    properties.insert("zt4ai.summary".into(), json!(r.summary));

    json!({
        "ruleId": r.control,
        "ruleIndex": rule_index,
        "level": level,
        "message": { "text": e.message },
        "locations": [Value::Object(location)],
        "partialFingerprints": {
            FINGERPRINT_KEY: fingerprint(&r.control, file, e.field.as_deref()),
        },
        "properties": properties,
    })
}

/// A rule name in the style SARIF viewers expect (`AgentsHaveIdentities`): the
/// title's letters and digits, word by word; the control id if none are left.
fn rule_name(title: &str, control: &str) -> String {
    let name: String = title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut cs = w.chars();
            cs.next()
                .map(|first| first.to_uppercase().chain(cs).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    if name.is_empty() {
        control.to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::markdown::fixture;

    #[test]
    fn only_located_problem_evidence_of_open_results_is_reported() {
        let sarif = render(&fixture::report());
        assert_eq!(sarif["$schema"], SCHEMA);
        assert_eq!(sarif["version"], "2.1.0");
        let run = &sarif["runs"][0];
        assert_eq!(run["tool"]["driver"]["name"], TOOL_NAME);
        assert_eq!(run["tool"]["driver"]["version"], "0.1.0");
        let results = run["results"].as_array().unwrap();
        // ID-01: two located pieces (the note without a file is left out); AC-02: one.
        let ids: Vec<&str> = results
            .iter()
            .map(|r| r["ruleId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["ZTAI-ID-01", "ZTAI-ID-01", "ZTAI-AC-02"]);
        let levels: Vec<&str> = results
            .iter()
            .map(|r| r["level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["error", "error", "note"]);
        assert_eq!(results[2]["properties"]["zt4ai.status"], "investigate");
        assert_eq!(results[0]["properties"]["zt4ai.status"], "failed");
        assert_eq!(results[0]["message"]["text"], fixture::QUOTES);

        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["id"], "ZTAI-ID-01");
        assert_eq!(
            rules[0]["name"],
            "AgentsHaveIdentitiesScriptImgSrcXOnerrorAlert1"
        );
        assert_eq!(rules[0]["properties"]["security-severity"], "9.5");
        assert_eq!(rules[1]["properties"]["severity"], "medium");
        assert_eq!(rules[1]["help"]["text"], "Fix ZTAI-AC-02.");
        assert_eq!(results[2]["ruleIndex"], 1);
        assert_eq!(run["properties"]["score"], 48.04);
        assert_eq!(run["properties"]["maturity"], "initial");
    }

    #[test]
    fn locations_are_uri_references_with_regions_when_known() {
        let sarif = render(&fixture::report());
        let results = &sarif["runs"][0]["results"];
        let first = &results[0]["locations"][0];
        assert_eq!(
            first["physicalLocation"]["artifactLocation"]["uri"],
            "inventory.yaml"
        );
        assert_eq!(first["physicalLocation"]["region"]["startLine"], 12);
        assert_eq!(first["physicalLocation"]["region"]["startColumn"], 3);
        assert_eq!(
            first["logicalLocations"][0]["fullyQualifiedName"],
            "agents[0].credential"
        );
        assert_eq!(
            results[1]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "%3Cbuilt-in%20example%3E/inventory.yaml"
        );
        let policy = &results[2]["locations"][0]["physicalLocation"];
        assert_eq!(policy["artifactLocation"]["uri"], "policies/acme.cedar");
        assert!(policy.get("region").is_none());
    }

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(path_to_uri("a/b-c_d.yaml"), "a/b-c_d.yaml");
        assert_eq!(path_to_uri("/etc/zt4ai/inv.yaml"), "/etc/zt4ai/inv.yaml");
        assert_eq!(path_to_uri("c:\\x y"), "c%3A%5Cx%20y");
        assert_eq!(path_to_uri("100%/é#?"), "100%25/%C3%A9%23%3F");
    }

    #[test]
    fn fingerprints_ignore_lines_and_separate_fields() {
        let a = fingerprint("ZTAI-ID-01", "inventory.yaml", Some("agents[0]"));
        assert_eq!(a.len(), 64);
        assert_eq!(
            a,
            fingerprint("ZTAI-ID-01", "inventory.yaml", Some("agents[0]"))
        );
        assert_ne!(
            a,
            fingerprint("ZTAI-ID-01", "inventory.yaml", Some("agents[1]"))
        );
        assert_ne!(fingerprint("a", "bc", None), fingerprint("ab", "c", None));
        let sarif = render(&fixture::report());
        let fp = &sarif["runs"][0]["results"][0]["partialFingerprints"][FINGERPRINT_KEY];
        assert_eq!(
            fp.as_str().unwrap(),
            fingerprint("ZTAI-ID-01", "inventory.yaml", Some("agents[0].credential"))
        );
    }

    #[test]
    fn a_report_without_findings_is_still_a_valid_shape() {
        let mut report = fixture::report();
        report.results.retain(|r| r.status == Status::Passed);
        report.score = None;
        let sarif = render(&report);
        let run = &sarif["runs"][0];
        assert_eq!(run["results"], json!([]));
        assert_eq!(run["tool"]["driver"]["rules"], json!([]));
        assert!(run["properties"].get("score").is_none());
        let text = to_string(&report);
        assert!(text.ends_with("}\n"));
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), sarif);
    }
}
