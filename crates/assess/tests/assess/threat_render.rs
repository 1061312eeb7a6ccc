//! Real Graphviz accepts the threat model's DOT, hostile names included, and the
//! SVG it makes is well-formed XML that shows every name as text.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code panics on failure"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use zt4ai_assess::threat::model::*;
use zt4ai_assess::threat::render;
use zt4ai_core::Label;

/// Parses an SVG file as XML and prints the text of each `<text>` element, one
/// JSON string per line.
const TEXTS: &str = r#"
import json, sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
for t in root.iter("{http://www.w3.org/2000/svg}text"):
    print(json.dumps("".join(t.itertext())))
"#;

#[test]
fn graphviz_lays_out_the_threat_model_as_well_formed_svg() {
    let tools = report_tools();
    let m = model();
    let dot = render::dot(&m);

    // The real `dot`, run as the test sees it, accepts the DOT text as it is.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("model.dot");
    std::fs::write(&source, &dot).unwrap();
    let out = Command::new(&tools["dot"])
        .arg("-Tsvg")
        .arg(&source)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dot rejected:\n{dot}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // And `render::svg` finds it on PATH and gets the same picture.
    let svg = render::svg(&m)
        .unwrap_or_else(|e| panic!("dot failed on\n{dot}\n{e}"))
        .expect("dot is installed but render::svg did not find it on PATH");
    assert!(svg.starts_with("<?xml") || svg.starts_with("<svg"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
    assert!(!svg.contains("<script"), "{svg}");

    let path = dir.path().join("model.svg");
    std::fs::write(&path, &svg).unwrap();
    let texts = svg_texts(&tools, &path);
    let mut expected: Vec<&str> = m.elements.iter().map(|e| e.name.as_str()).collect();
    expected.extend(m.boundaries.iter().map(|b| b.title.as_str()));
    expected.push("blocked by zt4ai.flow.send");
    for name in expected {
        assert!(
            texts.iter().any(|t| t == name),
            "{name:?} is not a text of the SVG: {texts:?}"
        );
    }
}

#[test]
fn the_same_model_gives_the_same_svg() {
    let tools = report_tools();
    assert!(tools["dot"].exists());
    let first = render::svg(&model()).unwrap().unwrap();
    let second = render::svg(&model()).unwrap().unwrap();
    assert_eq!(first, second);
}

/// The text of each `<text>` element of the SVG at `path`, checked to be XML.
fn svg_texts(tools: &BTreeMap<String, PathBuf>, path: &Path) -> Vec<String> {
    let out = Command::new(&tools["python"])
        .arg("-c")
        .arg(TEXTS)
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the SVG is not well-formed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A model with nested boundaries, names that are hostile to DOT, SVG and
/// Markdown, a blocked and an untrusted flow, and threats of each status.
fn model() -> ThreatModel {
    let boundary = |id: &str, title: &str, parent: Option<&str>| Boundary {
        id: id.to_owned(),
        title: title.to_owned(),
        parent: parent.map(str::to_owned),
    };
    let element = |id: &str, kind, name: &str, boundary: &str, label| Element {
        id: id.to_owned(),
        kind,
        name: name.to_owned(),
        boundary: boundary.to_owned(),
        label,
        note: String::new(),
    };
    let flow = |from: &str, to: &str, kind, label, untrusted, blocked_by: Option<&str>| Flow {
        id: format!("{from}->{to}"),
        from: from.to_owned(),
        to: to.to_owned(),
        kind,
        label,
        untrusted,
        crosses: Vec::new(),
        blocked_by: blocked_by.map(str::to_owned),
    };
    let threat = |class, target: &str, status| Threat {
        id: format!("{class:?}:{target}"),
        class,
        target: target.to_owned(),
        scenario: String::from("An attacker abuses it."),
        owasp_llm: vec!["LLM06:2025".to_owned()],
        owasp_agentic: Vec::new(),
        mitre_atlas: Vec::new(),
        status,
        mitigations: Vec::new(),
        gaps: Vec::new(),
    };
    ThreatModel {
        organisation: Some("Acme \"Labs\"".to_owned()),
        inventory: "inventory.yaml".to_owned(),
        boundaries: vec![
            boundary("organisation", "Organisation \"HQ\" [main]", None),
            boundary("agents", "Agents {internal}", Some("organisation")),
            boundary("mcp:crm", "MCP server crm\\path", Some("organisation")),
            boundary("external", "External <script>x</script>", None),
        ],
        elements: vec![
            element(
                "user:alice",
                ElementKind::User,
                "alice | admin",
                "organisation",
                None,
            ),
            element(
                "agent:report",
                ElementKind::Agent,
                "report-agent [v2] \"prod\"",
                "agents",
                Some(Label::Confidential),
            ),
            element(
                "gateway:zt4ai",
                ElementKind::Gateway,
                "zt4ai",
                "organisation",
                None,
            ),
            element(
                "server:crm",
                ElementKind::Server,
                "crm {mcp}",
                "mcp:crm",
                None,
            ),
            element(
                "tool:crm.query",
                ElementKind::Tool,
                "crm.query\\N",
                "mcp:crm",
                None,
            ),
            element(
                "dataset:customers",
                ElementKind::Dataset,
                "customers & <orders>",
                "mcp:crm",
                Some(Label::HighlyConfidential),
            ),
            element(
                "model:gpt",
                ElementKind::Model,
                "<script>alert(1)</script>",
                "external",
                None,
            ),
            element(
                "destination:mail",
                ElementKind::Destination,
                "mail \\\"evil\\\" &amp;",
                "external",
                None,
            ),
        ],
        flows: vec![
            flow(
                "user:alice",
                "agent:report",
                FlowKind::ActsFor,
                None,
                false,
                None,
            ),
            flow(
                "agent:report",
                "tool:crm.query",
                FlowKind::Calls,
                None,
                false,
                None,
            ),
            flow(
                "tool:crm.query",
                "dataset:customers",
                FlowKind::Reads,
                Some(Label::HighlyConfidential),
                false,
                None,
            ),
            flow(
                "tool:crm.query",
                "agent:report",
                FlowKind::Returns,
                None,
                true,
                None,
            ),
            flow(
                "agent:report",
                "model:gpt",
                FlowKind::Invokes,
                Some(Label::Confidential),
                false,
                None,
            ),
            flow(
                "tool:crm.query",
                "destination:mail",
                FlowKind::Sends,
                Some(Label::HighlyConfidential),
                false,
                Some("zt4ai.flow.send"),
            ),
        ],
        threats: vec![
            threat(
                ThreatClass::ExcessiveAgency,
                "agent:report",
                Mitigation::Unmitigated,
            ),
            threat(
                ThreatClass::IndirectPromptInjection,
                "tool:crm.query->agent:report",
                Mitigation::PartlyMitigated,
            ),
            threat(
                ThreatClass::SensitiveInformationDisclosure,
                "tool:crm.query->destination:mail",
                Mitigation::Mitigated,
            ),
        ],
    }
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
    for key in ["python", "dot"] {
        assert!(
            tools.get(key).is_some_and(|p| p.exists()),
            "report-tools gave no usable {key}: {tools:?}"
        );
    }
    tools
}
