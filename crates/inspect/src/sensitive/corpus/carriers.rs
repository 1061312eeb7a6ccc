//! The text a value is embedded in: sentences, JSON, logs, YAML, env files,
//! CSV, Markdown, HTTP headers. None of the carrier text is itself sensitive.

use super::{Doc, Rng};

const SERVICES: [&str; 8] = [
    "billing", "auth-gw", "crm-sync", "ingest", "mailer", "orders", "reports", "search",
];
const LEVELS: [&str; 4] = ["INFO", "WARN", "DEBUG", "ERROR"];
const ACTIONS: [&str; 6] = [
    "request completed",
    "record updated",
    "user lookup",
    "export finished",
    "retrying",
    "cache miss",
];
const FILLER: [&str; 10] = [
    "The migration is scheduled for next week.",
    "Quarterly revenue grew in all regions.",
    "Let me know if anything is missing.",
    "The dashboard was refreshed this morning.",
    "We moved the meeting to Thursday afternoon.",
    "All tests passed on the main branch.",
    "The vendor confirmed the delivery window.",
    "Results are attached below.",
    "See the summary table for details.",
    "Nothing else changed since the last run.",
];

/// A timestamp such as `2024-05-14T09:21:33Z`.
pub(crate) fn timestamp(r: &mut Rng) -> String {
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        r.range(2019, 2025),
        r.range(1, 12),
        r.range(1, 28),
        r.range(0, 23),
        r.range(0, 59),
        r.range(0, 59)
    )
}

/// A neutral sentence.
pub(crate) fn filler(r: &mut Rng) -> &'static str {
    r.pick::<&str>(&FILLER)
}

/// `FIELD_NAME` for `fieldName` / `field_name`.
fn upper_snake(field: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in field.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        if c == '-' || c == '.' {
            out.push('_');
        } else {
            out.push(c.to_ascii_uppercase());
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    out
}

/// Embeds `value` (labelled `kind`) as the value of `field` in one of the
/// structured carriers, or in one of the `prose` frames.
pub(crate) fn embed(
    r: &mut Rng,
    d: &mut Doc,
    kind: Option<&str>,
    field: &str,
    value: &str,
    prose: &[(&str, &str)],
) {
    let id = r.range(10, 99_999);
    match r.below(12) {
        0..=2 if !prose.is_empty() => {
            let (before, after) = *r.pick(prose);
            if r.chance(30) {
                d.s(filler(r)).s(" ");
            }
            d.s(before).v(kind, value).s(after);
            if r.chance(30) {
                d.s(" ").s(filler(r));
            }
        }
        3 => {
            d.s(&format!("{{\"id\":{id},\"{field}\":\"")).v(kind, value);
            let ts = timestamp(r);
            d.s(&format!("\",\"updated_at\":\"{ts}\"}}"));
        }
        4 => {
            let ts = timestamp(r);
            d.s(&format!(
                "{{\n  \"data\": {{\n    \"id\": {id},\n    \"{field}\": \""
            ))
            .v(kind, value)
            .s(&format!(
                "\",\n    \"created\": \"{ts}\"\n  }},\n  \"page\": 1\n}}"
            ));
        }
        5 => {
            let ts = timestamp(r);
            let svc = *r.pick(&SERVICES);
            let lvl = *r.pick(&LEVELS);
            let act = *r.pick(&ACTIONS);
            let quote = r.chance(30);
            d.s(&format!("{ts} {lvl} [{svc}] {act} {field}="));
            if quote {
                d.s("\"").v(kind, value).s("\"");
            } else {
                d.v(kind, value);
            }
            let ms = r.range(1, 900);
            d.s(&format!(" status=200 duration_ms={ms}\n"));
        }
        6 => {
            d.s(&format!("record:\n  id: {id}\n  {field}: "));
            if r.chance(40) {
                d.s("\"").v(kind, value).s("\"\n");
            } else {
                d.v(kind, value).s("\n");
            }
            d.s("  active: true\n");
        }
        7 => {
            if r.chance(30) {
                d.s("export ");
            }
            d.s(&format!("{}=", upper_snake(field)));
            if r.chance(30) {
                d.s("\"").v(kind, value).s("\"");
            } else {
                d.v(kind, value);
            }
            d.s("\n");
        }
        8 => {
            d.s(&format!("id,{field},status\n{id},"))
                .v(kind, value)
                .s(",active\n");
        }
        9 => {
            d.s(&format!("| field | value |\n|---|---|\n| {field} | "))
                .v(kind, value)
                .s(" |\n");
        }
        10 => {
            d.s(&format!(
                "{{\"event\":\"update\",\"payload\":\"{{\\\"{field}\\\":\\\""
            ))
            .v(kind, value)
            .s("\\\"}\"}");
        }
        _ => {
            d.s(&format!("{field}: ")).v(kind, value);
            if r.chance(50) {
                d.s("\n").s(filler(r));
            }
        }
    }
}
