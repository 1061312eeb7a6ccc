//! The threat model as people and tools read it: a Mermaid and a Graphviz
//! diagram, SVG through Graphviz, a Markdown document and JSON.
//!
//! Mermaid is what a pull request, a wiki or the Markdown document can show with
//! no tool installed; DOT (and the SVG Graphviz makes of it) is for documents
//! kept offline. Both draw the same picture: one box per trust boundary, nested
//! as the boundaries are, a shape per kind of element, an edge per flow (dashed
//! where a guard blocks it, thick where it carries untrusted content), and red or
//! amber for what an unmitigated or partly mitigated threat is about. Every
//! output depends only on the [`ThreatModel`]: the same model renders to the same
//! bytes, so any of them can be kept as a golden file or diffed between runs.
//!
//! Every name in a model comes from user-controlled configuration, so each
//! output escapes it for its own syntax:
//!
//! - Mermaid: node ids are `n0`, `n1`, … and boundary ids `b0`, `b1`, …, never a
//!   name; in labels only letters, digits, spaces and `-_.,/@+=!?'*()` stay as
//!   they are, `"` becomes `#quot;` and every other character its entity code
//!   (`#60;`), so no name can close a label, start a directive (`%%{`), a
//!   Markdown string or HTML, or a fence around the diagram;
//! - DOT: every string is quoted, with `"` and `\` backslash-escaped and `&`
//!   written `&amp;` (Graphviz reads entities in labels);
//! - Markdown: as the assessment report does (see `report::markdown`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::model::{ElementKind, Flow, FlowKind, Mitigation, ThreatModel};
use crate::report::markdown::{code, para, text};

/// How long Graphviz may take to lay out a model.
const DOT_TIMEOUT: Duration = Duration::from_secs(30);

/// Colours of what an unmitigated threat is about: fill, line.
const RED: (&str, &str) = ("#fde2e1", "#c0392b");
/// Colours of what a partly mitigated threat is about: fill, line.
const AMBER: (&str, &str) = ("#fff3cd", "#b9770e");

/// Statuses in the order the document lists them, worst first.
const STATUSES: [Mitigation; 3] = [
    Mitigation::Unmitigated,
    Mitigation::PartlyMitigated,
    Mitigation::Mitigated,
];

/// The model as a Mermaid `flowchart LR`.
///
/// Each boundary is a `subgraph` inside its parent's; a boundary with no element
/// anywhere inside it is left out (the Markdown document still lists it). A flow
/// end that is no element of the model is drawn as a node of its own, marked
/// unknown, outside every boundary.
pub fn mermaid(m: &ThreatModel) -> String {
    let g = Graph::new(m);
    let mut out = String::from("flowchart LR\n");
    g.mermaid_boundary(&mut out, None, 1);
    for f in &m.flows {
        let arrow = if f.blocked_by.is_some() {
            "-.->"
        } else if f.untrusted {
            "==>"
        } else {
            "-->"
        };
        let (caption, blocked) = caption(f);
        let mut label = mermaid_text(&caption);
        if let Some(b) = blocked {
            let _ = write!(label, "<br/>{}", mermaid_text(&b));
        }
        let _ = writeln!(
            out,
            "  n{} {arrow}|\"{label}\"| n{}",
            g.node_of(&f.from),
            g.node_of(&f.to)
        );
    }
    let _ = writeln!(
        out,
        "  classDef unmitigated fill:{},stroke:{},stroke-width:2px,color:#1a1a1a",
        RED.0, RED.1
    );
    let _ = writeln!(
        out,
        "  classDef partly fill:{},stroke:{},stroke-width:2px,color:#1a1a1a",
        AMBER.0, AMBER.1
    );
    for (status, class, colour) in [
        (Mitigation::Unmitigated, "unmitigated", RED.1),
        (Mitigation::PartlyMitigated, "partly", AMBER.1),
    ] {
        let nodes = numbers(&g.element_status, status, "n");
        if !nodes.is_empty() {
            let _ = writeln!(out, "  class {nodes} {class}");
        }
        // Edges are numbered in the order they are written: the model's flow order.
        let edges = numbers(&g.flow_status, status, "");
        if !edges.is_empty() {
            let _ = writeln!(out, "  linkStyle {edges} stroke:{colour},stroke-width:2px");
        }
    }
    out
}

/// The model as a Graphviz `digraph`, left to right, one `cluster_<n>` per
/// boundary (`<n>` its position in the model), nested as the boundaries are.
///
/// Node and edge styles follow [`mermaid`]: shape by kind, red or amber by
/// threat status, dashed when blocked, bold when untrusted.
pub fn dot(m: &ThreatModel) -> String {
    let g = Graph::new(m);
    let mut out = String::from("digraph threat_model {\n");
    out.push_str("  graph [rankdir=LR, fontsize=12];\n");
    out.push_str("  node [fontsize=11];\n");
    out.push_str("  edge [fontsize=9];\n");
    g.dot_boundary(&mut out, None, 1);
    for (i, f) in m.flows.iter().enumerate() {
        let (caption, blocked) = caption(f);
        let label = match blocked {
            Some(b) => format!("{}\\n{}", dot_text(&caption), dot_text(&b)),
            None => dot_text(&caption),
        };
        let _ = write!(
            out,
            "  n{} -> n{} [label=\"{label}\"",
            g.node_of(&f.from),
            g.node_of(&f.to)
        );
        let style: Vec<&str> = [(f.blocked_by.is_some(), "dashed"), (f.untrusted, "bold")]
            .iter()
            .filter_map(|&(on, s)| on.then_some(s))
            .collect();
        if !style.is_empty() {
            let _ = write!(out, ", style=\"{}\"", style.join(","));
        }
        if let Some((_, line)) = colours(g.flow_status.get(i).copied().flatten()) {
            let _ = write!(out, ", color=\"{line}\", fontcolor=\"{line}\", penwidth=2");
        }
        out.push_str("];\n");
    }
    out.push_str("}\n");
    out
}

/// The model as SVG, laid out by Graphviz's `dot` (looked up on `PATH`).
///
/// `Ok(None)` when `dot` is not installed; `Err` with what `dot` wrote to stderr
/// when it fails, or when it takes longer than 30 seconds (it is then killed).
pub fn svg(m: &ThreatModel) -> Result<Option<String>, String> {
    let Some(program) = find_on_path("dot") else {
        return Ok(None);
    };
    match run(&program, &["-Tsvg"], &dot(m), DOT_TIMEOUT) {
        Err(Run::NotFound) => Ok(None),
        Err(Run::Failed(message)) => Err(message),
        Ok(svg) => Ok(Some(svg)),
    }
}

/// The threat-model document, in Markdown (CommonMark with GitHub tables and a
/// `mermaid` code block), ending with a newline.
///
/// A summary of threats by status and class, the diagram, the trust boundaries
/// and what sits in each, the flows, then the threats: unmitigated first, then
/// partly mitigated, then mitigated, each with its scenario, its OWASP and
/// MITRE ATLAS references, what mitigates it and what is missing.
pub fn markdown(m: &ThreatModel) -> String {
    let g = Graph::new(m);
    let mut out = String::new();
    let organisation = m
        .organisation
        .as_deref()
        .map_or_else(|| "unnamed organisation".to_owned(), text);
    let _ = writeln!(out, "# AI threat model: {organisation}\n");
    let _ = writeln!(
        out,
        "Derived from the inventory {}: {} elements in {} trust boundaries, {} flows, {} threats.\n",
        code(&m.inventory),
        m.elements.len(),
        m.boundaries.len(),
        m.flows.len(),
        m.threats.len()
    );
    summary(&mut out, m);
    let _ = writeln!(out, "## Diagram\n\n```mermaid\n{}```\n", mermaid(m));
    let _ = writeln!(
        out,
        "Red: the element or flow has an unmitigated threat; amber: a partly mitigated \
         one. Dashed: a flow a guard blocks. Thick: a flow carrying untrusted content.\n"
    );
    let _ = writeln!(out, "## Trust boundaries\n");
    g.markdown_boundary(&mut out, None);
    if let Some(loose) = g.members.get(&None) {
        let _ = writeln!(out, "### Outside any trust boundary\n");
        element_list(&mut out, m, loose);
    }
    flows(&mut out, &g);
    threats(&mut out, &g);
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// The model as pretty JSON, with a trailing newline.
pub fn json(m: &ThreatModel) -> String {
    match serde_json::to_string_pretty(m) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Plain data of strings and enums cannot fail to serialise; say so in the
        // output rather than panic if that ever changes.
        Err(e) => {
            let mut error = serde_json::Map::new();
            error.insert(
                "error".to_owned(),
                serde_json::Value::String(format!("cannot serialise the threat model: {e}")),
            );
            format!("{}\n", serde_json::Value::Object(error))
        }
    }
}

/// The model resolved for drawing: node numbers, the boundary tree, and the
/// worst threat status of each element and flow.
struct Graph<'a> {
    m: &'a ThreatModel,
    /// Flow end (element id, or an id no element has) → node number. Elements
    /// are numbered by position; unknown ends after them, in flow order.
    node: BTreeMap<&'a str, usize>,
    /// Flow ends that are no element, in node order.
    unknown: Vec<&'a str>,
    /// Boundary (by position) → the boundaries directly inside it, in model
    /// order; under `None` the outermost ones.
    children: BTreeMap<Option<usize>, Vec<usize>>,
    /// Boundary → the elements in it (by position); under `None` those whose
    /// boundary is not in the model.
    members: BTreeMap<Option<usize>, Vec<usize>>,
    /// Whether any element sits in the boundary or one inside it.
    occupied: Vec<bool>,
    /// The worst status of the threats about each element, if any.
    element_status: Vec<Option<Mitigation>>,
    /// The worst status of the threats about each flow, if any.
    flow_status: Vec<Option<Mitigation>>,
}

impl<'a> Graph<'a> {
    fn new(m: &'a ThreatModel) -> Self {
        let mut node = BTreeMap::new();
        for (i, e) in m.elements.iter().enumerate() {
            node.entry(e.id.as_str()).or_insert(i);
        }
        let mut unknown = Vec::new();
        for f in &m.flows {
            for end in [f.from.as_str(), f.to.as_str()] {
                if !node.contains_key(end) {
                    node.insert(end, m.elements.len() + unknown.len());
                    unknown.push(end);
                }
            }
        }

        let mut index = BTreeMap::new();
        for (i, b) in m.boundaries.iter().enumerate() {
            index.entry(b.id.as_str()).or_insert(i);
        }
        let declared: Vec<Option<usize>> = m
            .boundaries
            .iter()
            .map(|b| b.parent.as_deref().and_then(|p| index.get(p).copied()))
            .collect();
        // A boundary on a cycle of parents is drawn as an outermost one, which
        // breaks every cycle: walking up from any boundary now ends.
        let parent: Vec<Option<usize>> = (0..declared.len())
            .map(|i| declared[i].filter(|_| !on_cycle(&declared, i)))
            .collect();
        let mut children: BTreeMap<Option<usize>, Vec<usize>> = BTreeMap::new();
        for (i, p) in parent.iter().enumerate() {
            children.entry(*p).or_default().push(i);
        }
        let mut members: BTreeMap<Option<usize>, Vec<usize>> = BTreeMap::new();
        let mut occupied = vec![false; parent.len()];
        for (i, e) in m.elements.iter().enumerate() {
            let b = index.get(e.boundary.as_str()).copied();
            members.entry(b).or_default().push(i);
            let mut up = b;
            // INVARIANT: `parent` has no cycles, so this walk ends.
            while let Some(j) = up {
                if occupied[j] {
                    break;
                }
                occupied[j] = true;
                up = parent[j];
            }
        }

        let mut worst: BTreeMap<&str, Mitigation> = BTreeMap::new();
        for t in &m.threats {
            let w = worst.entry(t.target.as_str()).or_insert(t.status);
            *w = (*w).min(t.status);
        }
        let element_status = m
            .elements
            .iter()
            .map(|e| worst.get(e.id.as_str()).copied())
            .collect();
        let flow_status = m
            .flows
            .iter()
            .map(|f| worst.get(f.id.as_str()).copied())
            .collect();
        Graph {
            m,
            node,
            unknown,
            children,
            members,
            occupied,
            element_status,
            flow_status,
        }
    }

    /// The node number of a flow end.
    fn node_of(&self, id: &str) -> usize {
        // INVARIANT: `new` numbers both ends of every flow.
        self.node.get(id).copied().unwrap_or(usize::MAX)
    }

    /// The boundaries drawn directly inside `b` (those with elements).
    fn drawn_children(&self, b: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        self.children
            .get(&b)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&c| self.occupied[c])
    }

    /// The elements in `b`.
    fn members_of(&self, b: Option<usize>) -> &[usize] {
        self.members.get(&b).map_or(&[], Vec::as_slice)
    }

    /// Writes what sits directly in `b` (or outside every boundary), then the
    /// boundaries inside it.
    fn mermaid_boundary(&self, out: &mut String, b: Option<usize>, depth: usize) {
        let pad = "  ".repeat(depth);
        for &i in self.members_of(b) {
            let e = &self.m.elements[i];
            let (open, close) = match e.kind {
                ElementKind::User | ElementKind::Agent => ("(", ")"),
                ElementKind::Gateway => ("{{", "}}"),
                ElementKind::Dataset => ("[(", ")]"),
                ElementKind::Model => ("([", "])"),
                ElementKind::Destination => (">", "]"),
                ElementKind::Server => ("[[", "]]"),
                ElementKind::Tool => ("[", "]"),
            };
            let _ = writeln!(
                out,
                "{pad}n{i}{open}\"{}<br/>{}\"{close}",
                mermaid_text(&e.name),
                mermaid_text(&kind_line(self.m, i))
            );
        }
        for c in self.drawn_children(b) {
            let title = mermaid_text(&self.m.boundaries[c].title);
            let _ = writeln!(out, "{pad}subgraph b{c}[\"{title}\"]");
            self.mermaid_boundary(out, Some(c), depth + 1);
            let _ = writeln!(out, "{pad}end");
        }
        if b.is_none() {
            for (k, id) in self.unknown.iter().enumerate() {
                let n = self.m.elements.len() + k;
                let _ = writeln!(out, "{pad}n{n}[\"{}<br/>unknown\"]", mermaid_text(id));
            }
        }
    }

    /// As [`Graph::mermaid_boundary`], in DOT.
    fn dot_boundary(&self, out: &mut String, b: Option<usize>, depth: usize) {
        let pad = "  ".repeat(depth);
        for &i in self.members_of(b) {
            let e = &self.m.elements[i];
            let (shape, rounded) = match e.kind {
                ElementKind::User | ElementKind::Agent => ("box", true),
                ElementKind::Gateway => ("hexagon", false),
                ElementKind::Dataset => ("cylinder", false),
                ElementKind::Model => ("ellipse", false),
                ElementKind::Destination => ("cds", false),
                ElementKind::Server => ("component", false),
                ElementKind::Tool => ("box", false),
            };
            let style = if rounded { "rounded,filled" } else { "filled" };
            let (fill, line) = colours(self.element_status[i]).unwrap_or(("#ffffff", "#333333"));
            let _ = writeln!(
                out,
                "{pad}n{i} [label=\"{}\\n{}\", shape={shape}, style=\"{style}\", \
                 fillcolor=\"{fill}\", color=\"{line}\"];",
                dot_text(&e.name),
                dot_text(&kind_line(self.m, i))
            );
        }
        for c in self.drawn_children(b) {
            let _ = writeln!(out, "{pad}subgraph cluster_{c} {{");
            let _ = writeln!(
                out,
                "{pad}  label=\"{}\";\n{pad}  style=\"dashed,rounded\";\n{pad}  color=\"#7f8c8d\";",
                dot_text(&self.m.boundaries[c].title)
            );
            self.dot_boundary(out, Some(c), depth + 1);
            let _ = writeln!(out, "{pad}}}");
        }
        if b.is_none() {
            for (k, id) in self.unknown.iter().enumerate() {
                let n = self.m.elements.len() + k;
                let _ = writeln!(
                    out,
                    "{pad}n{n} [label=\"{}\\nunknown\", shape=box, style=\"dashed\"];",
                    dot_text(id)
                );
            }
        }
    }

    /// Writes a section per boundary inside `b` (every one, with elements or
    /// not), each followed by those inside it.
    fn markdown_boundary(&self, out: &mut String, b: Option<usize>) {
        for &c in self.children.get(&b).into_iter().flatten() {
            let boundary = &self.m.boundaries[c];
            let _ = writeln!(out, "### {}\n", text(&boundary.title));
            let _ = write!(out, "Boundary {}", code(&boundary.id));
            if let Some(p) = b {
                let _ = write!(out, ", inside {}", text(&self.m.boundaries[p].title));
            }
            out.push_str(".\n\n");
            element_list(out, self.m, self.members_of(Some(c)));
            self.markdown_boundary(out, Some(c));
        }
    }

    /// An element or flow end by name, as Markdown (the id if it is no element).
    fn name(&self, id: &str) -> String {
        match self.node.get(id) {
            Some(&n) if n < self.m.elements.len() => text(&self.m.elements[n].name),
            _ => code(id),
        }
    }

    /// What a threat is about, as Markdown.
    fn target(&self, id: &str) -> String {
        if let Some(&n) = self.node.get(id)
            && let Some(e) = self.m.elements.get(n)
        {
            return format!("{} {}", kind_name(e.kind), text(&e.name));
        }
        match self.m.flows.iter().find(|f| f.id == id) {
            Some(f) => format!(
                "{} → {} ({})",
                self.name(&f.from),
                self.name(&f.to),
                verb(f.kind)
            ),
            None => code(id),
        }
    }
}

/// Whether walking up `parent` from `i` comes back to `i`.
fn on_cycle(parent: &[Option<usize>], i: usize) -> bool {
    let mut up = parent[i];
    for _ in 0..parent.len() {
        match up {
            Some(j) if j == i => return true,
            Some(j) => up = parent[j],
            None => return false,
        }
    }
    false
}

/// The second line of an element's node: its kind and label.
fn kind_line(m: &ThreatModel, i: usize) -> String {
    let e = &m.elements[i];
    match e.label {
        Some(l) => format!("{}, {l}", kind_name(e.kind)),
        None => kind_name(e.kind).to_owned(),
    }
}

/// A flow's caption (`sends (confidential, untrusted)`) and, if blocked, the
/// line that says by what.
fn caption(f: &Flow) -> (String, Option<String>) {
    let mut notes = Vec::new();
    if let Some(l) = f.label {
        notes.push(l.as_str());
    }
    if f.untrusted {
        notes.push("untrusted");
    }
    let mut caption = verb(f.kind).to_owned();
    if !notes.is_empty() {
        let _ = write!(caption, " ({})", notes.join(", "));
    }
    let blocked = f.blocked_by.as_ref().map(|g| format!("blocked by {g}"));
    (caption, blocked)
}

/// Fill and line colour for a threat status; `None` when nothing needs colour.
fn colours(status: Option<Mitigation>) -> Option<(&'static str, &'static str)> {
    match status? {
        Mitigation::Unmitigated => Some(RED),
        Mitigation::PartlyMitigated => Some(AMBER),
        Mitigation::Mitigated => None,
    }
}

/// `prefix<i>` for each position whose status is `status`, comma-separated.
fn numbers(statuses: &[Option<Mitigation>], status: Mitigation, prefix: &str) -> String {
    let list: Vec<String> = statuses
        .iter()
        .enumerate()
        .filter(|(_, s)| **s == Some(status))
        .map(|(i, _)| format!("{prefix}{i}"))
        .collect();
    list.join(",")
}

fn kind_name(k: ElementKind) -> &'static str {
    match k {
        ElementKind::User => "user",
        ElementKind::Agent => "agent",
        ElementKind::Gateway => "gateway",
        ElementKind::Server => "MCP server",
        ElementKind::Tool => "tool",
        ElementKind::Dataset => "dataset",
        ElementKind::Model => "model",
        ElementKind::Destination => "destination",
    }
}

fn verb(k: FlowKind) -> &'static str {
    match k {
        FlowKind::ActsFor => "acts for",
        FlowKind::Delegates => "delegates",
        FlowKind::Calls => "calls",
        FlowKind::Reads => "reads",
        FlowKind::Writes => "writes",
        FlowKind::Returns => "returns",
        FlowKind::Invokes => "invokes",
        FlowKind::Sends => "sends",
    }
}

/// User text for a quoted Mermaid label: see the module documentation.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.trim().chars() {
        match c {
            c if c.is_alphanumeric() => out.push(c),
            ' ' | '-' | '_' | '.' | ',' | '/' | '@' | '+' | '=' | '!' | '?' | '\'' | '*' | '('
            | ')' => out.push(c),
            '"' => out.push_str("#quot;"),
            c if c.is_whitespace() || c.is_control() => out.push(' '),
            c => {
                let _ = write!(out, "#{};", u32::from(c));
            }
        }
    }
    out
}

/// User text for the inside of a quoted DOT string: see the module documentation.
fn dot_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.trim().chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// [`text`] for a table cell: a `|` inside a code span is escaped too, or it
/// would end the cell.
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c == '|' && !out.ends_with('\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn summary(out: &mut String, m: &ThreatModel) {
    let _ = writeln!(out, "## Summary\n");
    if m.threats.is_empty() {
        let _ = writeln!(out, "No threats.\n");
        return;
    }
    let count = |pred: &dyn Fn(&super::model::Threat) -> bool| {
        STATUSES.map(|s| {
            m.threats
                .iter()
                .filter(|t| t.status == s && pred(t))
                .count()
        })
    };
    let [u, p, d] = count(&|_| true);
    let _ = writeln!(out, "| Unmitigated | Partly mitigated | Mitigated |");
    let _ = writeln!(out, "| ---: | ---: | ---: |");
    let _ = writeln!(out, "| {u} | {p} | {d} |\n");
    let mut classes: Vec<_> = m.threats.iter().map(|t| t.class).collect();
    classes.sort_unstable();
    classes.dedup();
    let _ = writeln!(
        out,
        "| Threat class | Unmitigated | Partly mitigated | Mitigated |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: |");
    for class in classes {
        let [u, p, d] = count(&|t| t.class == class);
        let _ = writeln!(out, "| {} | {u} | {p} | {d} |", class.title());
    }
    out.push('\n');
}

fn element_list(out: &mut String, m: &ThreatModel, elements: &[usize]) {
    if elements.is_empty() {
        let _ = writeln!(out, "No elements.\n");
        return;
    }
    for &i in elements {
        let e = &m.elements[i];
        let _ = write!(out, "- {} {}", kind_name(e.kind), text(&e.name));
        if let Some(l) = e.label {
            let _ = write!(out, " ({l})");
        }
        if !e.note.trim().is_empty() {
            let _ = write!(out, ": {}", text(&e.note));
        }
        out.push('\n');
    }
    out.push('\n');
}

fn flows(out: &mut String, g: &Graph<'_>) {
    let _ = writeln!(out, "## Flows\n");
    if g.m.flows.is_empty() {
        let _ = writeln!(out, "No flows.\n");
        return;
    }
    let _ = writeln!(out, "| From | To | Kind | Label | Crosses | Blocked by |");
    let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
    for f in &g.m.flows {
        let crosses: Vec<String> = f
            .crosses
            .iter()
            .map(|id| match g.m.boundaries.iter().find(|b| b.id == *id) {
                Some(b) => text(&b.title),
                None => code(id),
            })
            .collect();
        let kind = if f.untrusted {
            format!("{} (untrusted content)", verb(f.kind))
        } else {
            verb(f.kind).to_owned()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {kind} | {} | {} | {} |",
            cell(&g.name(&f.from)),
            cell(&g.name(&f.to)),
            f.label.map_or("unknown", |l| l.as_str()),
            cell(&if crosses.is_empty() {
                "none".to_owned()
            } else {
                crosses.join(", ")
            }),
            cell(
                &f.blocked_by
                    .as_deref()
                    .map_or_else(|| "no".to_owned(), code)
            ),
        );
    }
    out.push('\n');
}

fn threats(out: &mut String, g: &Graph<'_>) {
    let _ = writeln!(out, "## Threats\n");
    if g.m.threats.is_empty() {
        let _ = writeln!(out, "None.\n");
        return;
    }
    for status in STATUSES {
        let group: Vec<_> = g.m.threats.iter().filter(|t| t.status == status).collect();
        if group.is_empty() {
            continue;
        }
        let mut title = status.title().to_owned();
        if let Some(first) = title.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        let _ = writeln!(out, "### {title} ({})\n", group.len());
        for t in group {
            let _ = writeln!(out, "#### {}: {}\n", t.class.title(), g.target(&t.target));
            if !t.scenario.trim().is_empty() {
                let _ = writeln!(out, "{}\n", para(&t.scenario));
            }
            let _ = writeln!(out, "- Threat {}, about {}", code(&t.id), code(&t.target));
            let refs: Vec<String> = [
                ("OWASP LLM", &t.owasp_llm),
                ("OWASP agentic", &t.owasp_agentic),
                ("MITRE ATLAS", &t.mitre_atlas),
            ]
            .iter()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(name, ids)| {
                let ids: Vec<String> = ids.iter().map(|i| text(i)).collect();
                format!("{name} {}", ids.join(", "))
            })
            .collect();
            if !refs.is_empty() {
                let _ = writeln!(out, "- References: {}", refs.join("; "));
            }
            sub_list(out, "Mitigated by", &t.mitigations);
            sub_list(out, "Gaps", &t.gaps);
            out.push('\n');
        }
    }
}

fn sub_list(out: &mut String, heading: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "- {heading}:");
    for item in items {
        let _ = writeln!(out, "  - {}", para(item));
    }
}

/// Where `program` is on `PATH`, if it is. Relative entries (an empty one
/// means the current directory) are skipped: a `dot` lying in whatever directory
/// zt4ai runs from is not run.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Why running a program failed.
#[derive(Debug)]
enum Run {
    /// It is not there.
    NotFound,
    /// It did not start, failed, timed out or wrote something other than UTF-8.
    Failed(String),
}

/// Runs `program` with `args`, `input` on stdin, and returns its stdout; kills it
/// after `timeout`.
fn run(program: &Path, args: &[&str], input: &str, timeout: Duration) -> Result<String, Run> {
    let name = program.display();
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Run::NotFound,
            _ => Run::Failed(format!("cannot run {name}: {e}")),
        })?;
    // Feed and drain in threads, so that neither side can block on a full pipe.
    let stdin = child.stdin.take();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // A program that exits early closes its end; its status says why.
            let _ = stdin.write_all(input.as_bytes());
        }
    });
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());

    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                // The reader threads end when the pipes close; not waited for.
                return Err(Run::Failed(format!(
                    "{name} took longer than {} s and was stopped",
                    timeout.as_secs_f32()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                let _ = child.kill();
                return Err(Run::Failed(format!("cannot wait for {name}: {e}")));
            }
        }
    };
    let _ = writer.join();
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        let message = String::from_utf8_lossy(&stderr);
        return Err(Run::Failed(format!(
            "{name} failed ({status}): {}",
            message.trim()
        )));
    }
    String::from_utf8(stdout)
        .map_err(|_| Run::Failed(format!("{name} wrote output that is not UTF-8")))
}

/// Reads `pipe` to its end in a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error ends the output early; the exit status says more.
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

#[cfg(test)]
mod tests {
    use zt4ai_core::Label;

    use super::*;
    use crate::threat::model::{Boundary, Element, Threat, ThreatClass};

    const SCRIPT: &str = "<script>alert(1)</script>";

    fn boundary(id: &str, title: &str, parent: Option<&str>) -> Boundary {
        Boundary {
            id: id.to_owned(),
            title: title.to_owned(),
            parent: parent.map(str::to_owned),
        }
    }

    fn element(id: &str, kind: ElementKind, name: &str, boundary: &str) -> Element {
        Element {
            id: id.to_owned(),
            kind,
            name: name.to_owned(),
            boundary: boundary.to_owned(),
            label: None,
            note: String::new(),
        }
    }

    fn flow(from: &str, to: &str, kind: FlowKind) -> Flow {
        Flow {
            id: format!("{from}->{to}"),
            from: from.to_owned(),
            to: to.to_owned(),
            kind,
            label: None,
            untrusted: false,
            crosses: Vec::new(),
            blocked_by: None,
        }
    }

    fn threat(class: ThreatClass, target: &str, status: Mitigation) -> Threat {
        Threat {
            id: format!("{class:?}:{target}"),
            class,
            target: target.to_owned(),
            scenario: format!("Someone abuses {target}."),
            owasp_llm: vec!["LLM06:2025".to_owned()],
            owasp_agentic: vec!["T3".to_owned()],
            mitre_atlas: vec!["AML.T0053".to_owned()],
            status,
            mitigations: vec!["`zt4ai.flow.send`".to_owned()],
            gaps: vec!["no approval <b>step</b>".to_owned()],
        }
    }

    /// Nested and empty boundaries, hostile names, a blocked and an untrusted
    /// flow, threats of every status on elements and flows.
    fn model() -> ThreatModel {
        let mut agent = element(
            "agent:report",
            ElementKind::Agent,
            "report-agent [v2] \"prod\"",
            "agents",
        );
        agent.label = Some(Label::Confidential);
        agent.note = "Writes the *weekly* report".to_owned();
        let mut customers = element(
            "dataset:customers",
            ElementKind::Dataset,
            "customers `db`",
            "mcp:crm",
        );
        customers.label = Some(Label::HighlyConfidential);
        let mut query = flow("agent:report", "tool:crm.query", FlowKind::Calls);
        query.crosses = vec!["mcp:crm".to_owned()];
        let mut reads = flow("tool:crm.query", "dataset:customers", FlowKind::Reads);
        reads.label = Some(Label::HighlyConfidential);
        let mut returns = flow("tool:crm.query", "agent:report", FlowKind::Returns);
        returns.untrusted = true;
        let mut send = flow("tool:crm.query", "destination:mail", FlowKind::Sends);
        send.label = Some(Label::HighlyConfidential);
        send.blocked_by = Some("zt4ai.flow.send".to_owned());
        send.crosses = vec!["external".to_owned(), "nowhere|x".to_owned()];
        ThreatModel {
            organisation: Some("Acme \"Labs\" <b>".to_owned()),
            inventory: "inventory.yaml".to_owned(),
            boundaries: vec![
                boundary("organisation", "Organisation \"HQ\" [main]", None),
                boundary("agents", "Agents {internal}", Some("organisation")),
                boundary("mcp:crm", "MCP server crm\\path", Some("organisation")),
                boundary("external", &format!("External {SCRIPT}"), None),
                boundary("empty", "Empty", Some("organisation")),
                boundary("humans", "%%{init: {\"theme\":\"dark\"}}%%", None),
            ],
            elements: vec![
                element("user:alice", ElementKind::User, "alice | admin", "humans"),
                agent,
                element(
                    "gateway:zt4ai",
                    ElementKind::Gateway,
                    "zt4ai",
                    "organisation",
                ),
                element("tool:crm.query", ElementKind::Tool, "crm.query", "mcp:crm"),
                customers,
                element("model:gpt", ElementKind::Model, SCRIPT, "external"),
                element(
                    "destination:mail",
                    ElementKind::Destination,
                    "mail\\evil#quot;x\nsecond line",
                    "external",
                ),
                element(
                    "tool:lost",
                    ElementKind::Tool,
                    "lost & found",
                    "no-such-boundary",
                ),
            ],
            flows: vec![
                flow("user:alice", "agent:report", FlowKind::ActsFor),
                query,
                reads,
                returns,
                flow("agent:report", "model:gpt", FlowKind::Invokes),
                send,
            ],
            threats: vec![
                threat(
                    ThreatClass::ExcessiveAgency,
                    "agent:report",
                    Mitigation::Unmitigated,
                ),
                threat(ThreatClass::Spoofing, "agent:report", Mitigation::Mitigated),
                threat(
                    ThreatClass::IndirectPromptInjection,
                    "tool:crm.query->agent:report",
                    Mitigation::PartlyMitigated,
                ),
                threat(
                    ThreatClass::SupplyChain,
                    "tool:crm.query",
                    Mitigation::PartlyMitigated,
                ),
                threat(
                    ThreatClass::SensitiveInformationDisclosure,
                    "tool:crm.query->destination:mail",
                    Mitigation::Mitigated,
                ),
                threat(
                    ThreatClass::DataModelPoisoning,
                    "model:gpt",
                    Mitigation::Mitigated,
                ),
            ],
        }
    }

    /// The contents of every `"…"` on `line`.
    fn quoted(line: &str) -> Vec<&str> {
        line.split('"').skip(1).step_by(2).collect()
    }

    #[test]
    fn mermaid_numbers_nodes_in_element_order_and_never_uses_ids() {
        let out = mermaid(&model());
        assert!(out.starts_with("flowchart LR\n"), "{out}");
        assert!(
            out.contains(
                "    n1(\"report-agent #91;v2#93; #quot;prod#quot;<br/>agent, confidential\")"
            ),
            "{out}"
        );
        assert!(out.contains("n2{{\"zt4ai<br/>gateway\"}}"), "{out}");
        assert!(out.contains("n3[\"crm.query<br/>tool\"]"), "{out}");
        assert!(
            out.contains("n4[(\"customers #96;db#96;<br/>dataset, highly_confidential\")]"),
            "{out}"
        );
        assert!(
            out.contains("n5([\"#60;script#62;alert(1)#60;/script#62;<br/>model\"])"),
            "{out}"
        );
        assert!(
            out.contains("n6>\"mail#92;evil#35;quot#59;x second line<br/>destination\"]"),
            "{out}"
        );
        assert!(out.contains("  n0 -->|\"acts for\"| n1\n"), "{out}");
        for id in ["agent:report", "tool:crm.query", "user:alice"] {
            assert!(!out.contains(id), "{id} in {out}");
        }
    }

    #[test]
    fn mermaid_labels_cannot_break_out() {
        let out = mermaid(&model());
        for bad in ["<script", "%%", "`", "\\", "&", "|x"] {
            assert!(!out.contains(bad), "{bad} in {out}");
        }
        for line in out.lines() {
            assert_eq!(line.matches('"').count() % 2, 0, "{line}");
            for label in quoted(line) {
                // Without our line breaks and the entity codes (`#` word `;`),
                // only characters that mean nothing in a label are left.
                let mut rest = label.replace("<br/>", "");
                while let Some(at) = rest.find('#') {
                    let len = rest[at + 1..]
                        .find(';')
                        .unwrap_or_else(|| panic!("unterminated entity code in {line}"));
                    let code = &rest[at + 1..at + 1 + len];
                    assert!(
                        !code.is_empty() && code.chars().all(char::is_alphanumeric),
                        "{line}"
                    );
                    rest.replace_range(at..at + len + 2, "");
                }
                assert!(
                    rest.chars()
                        .all(|c| c.is_alphanumeric() || " -_.,/@+=!?'*()".contains(c)),
                    "{line}: {rest}"
                );
            }
        }
    }

    #[test]
    fn mermaid_nests_boundaries_and_leaves_empty_ones_out() {
        let out = mermaid(&model());
        let lines: Vec<&str> = out.lines().collect();
        let at = |needle: &str| {
            lines
                .iter()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no {needle} in {out}"))
        };
        let org = at("subgraph b0[\"Organisation #quot;HQ#quot; #91;main#93;\"]");
        let agents = at("subgraph b1[");
        let crm = at("subgraph b2[\"MCP server crm#92;path\"]");
        let external = at("subgraph b3[");
        assert!(org < agents && agents < crm && crm < external, "{out}");
        assert!(lines[agents].starts_with("    subgraph"), "{out}");
        assert!(lines[at("n1(")].starts_with("      n1"), "{out}");
        assert!(lines[at("n2{{")].starts_with("    n2"), "{out}");
        assert!(!out.contains("b4"), "the empty boundary is drawn: {out}");
        assert!(out.contains("subgraph b5[\"#37;#37;#123;init#58; #123;#quot;theme#quot;#58;#quot;dark#quot;#125;#125;#37;#37;\"]"), "{out}");
        // The element in an unknown boundary sits outside all of them.
        assert!(lines[at("n7[")].starts_with("  n7"), "{out}");
        assert_eq!(
            out.matches("subgraph").count(),
            out.lines().filter(|l| l.trim() == "end").count()
        );
    }

    #[test]
    fn mermaid_draws_blocked_flows_dashed_and_untrusted_ones_thick() {
        let out = mermaid(&model());
        assert!(
            out.contains(
                "  n3 -.->|\"sends (highly_confidential)<br/>blocked by zt4ai.flow.send\"| n6\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("  n3 ==>|\"returns (untrusted)\"| n1\n"),
            "{out}"
        );
        assert!(
            out.contains("  n3 -->|\"reads (highly_confidential)\"| n4\n"),
            "{out}"
        );
    }

    #[test]
    fn mermaid_colours_by_the_worst_threat() {
        let out = mermaid(&model());
        assert!(out.contains("classDef unmitigated fill:#fde2e1"), "{out}");
        assert!(out.contains("classDef partly fill:#fff3cd"), "{out}");
        // Unmitigated beats mitigated on the agent; only mitigated on the model.
        assert!(out.contains("\n  class n1 unmitigated\n"), "{out}");
        assert!(out.contains("\n  class n3 partly\n"), "{out}");
        assert!(!out.contains("n5 "), "{out}");
        // The fourth flow (index 3) is partly mitigated; the blocked one is mitigated.
        assert!(
            out.contains("\n  linkStyle 3 stroke:#b9770e,stroke-width:2px\n"),
            "{out}"
        );
        assert_eq!(out.matches("linkStyle").count(), 1, "{out}");
    }

    #[test]
    fn unknown_flow_ends_and_parent_cycles_still_draw() {
        let mut m = model();
        m.flows.push(flow(
            "agent:ghost \"x\"",
            "agent:report",
            FlowKind::Delegates,
        ));
        m.boundaries.push(boundary("a", "A", Some("b")));
        m.boundaries.push(boundary("b", "B", Some("a")));
        m.boundaries.push(boundary("self", "Self", Some("self")));
        m.elements
            .push(element("user:bob", ElementKind::User, "bob", "a"));
        m.elements
            .push(element("user:eve", ElementKind::User, "eve", "self"));
        let out = mermaid(&m);
        assert!(
            out.contains("  n10[\"agent#58;ghost #quot;x#quot;<br/>unknown\"]"),
            "{out}"
        );
        assert!(out.contains("  n10 -->|\"delegates\"| n1\n"), "{out}");
        assert!(
            out.contains("\n  subgraph b6[\"A\"]\n    n8(\"bob<br/>user\")\n  end\n"),
            "{out}"
        );
        assert!(out.contains("\n  subgraph b8[\"Self\"]\n"), "{out}");
        let d = dot(&m);
        assert!(
            d.contains("  n10 [label=\"agent:ghost \\\"x\\\"\\nunknown\""),
            "{d}"
        );
        assert!(markdown(&m).contains("`agent:ghost \"x\"`"));
    }

    #[test]
    fn dot_quotes_every_string_and_nests_clusters() {
        let out = dot(&model());
        assert!(
            out.starts_with("digraph threat_model {\n") && out.ends_with("}\n"),
            "{out}"
        );
        assert!(
            out.contains("    label=\"Organisation \\\"HQ\\\" [main]\";\n"),
            "{out}"
        );
        assert!(
            out.contains("    subgraph cluster_2 {\n      label=\"MCP server crm\\\\path\";"),
            "{out}"
        );
        assert!(
            out.contains("n6 [label=\"mail\\\\evil#quot;x second line\\ndestination\", shape=cds"),
            "{out}"
        );
        assert!(
            out.contains("n7 [label=\"lost &amp; found\\ntool\""),
            "{out}"
        );
        assert!(
            out.contains(
                "n4 [label=\"customers `db`\\ndataset, highly_confidential\", shape=cylinder"
            ),
            "{out}"
        );
        assert!(
            out.contains("n2 [label=\"zt4ai\\ngateway\", shape=hexagon"),
            "{out}"
        );
        assert!(out.contains("n1 [label=\"report-agent [v2] \\\"prod\\\"\\nagent, confidential\", shape=box, style=\"rounded,filled\", fillcolor=\"#fde2e1\", color=\"#c0392b\"];"), "{out}");
        assert!(!out.contains("cluster_4"), "{out}");
        assert_eq!(out.matches('{').count(), out.matches('}').count(), "{out}");
        // Each line's quotes pair up once escaped quotes are set aside.
        for line in out.lines() {
            let bare = line.replace("\\\\", "").replace("\\\"", "");
            assert_eq!(bare.matches('"').count() % 2, 0, "{line}");
        }
    }

    #[test]
    fn dot_styles_edges_like_mermaid() {
        let out = dot(&model());
        assert!(out.contains("  n3 -> n6 [label=\"sends (highly_confidential)\\nblocked by zt4ai.flow.send\", style=\"dashed\"];\n"), "{out}");
        assert!(out.contains("  n3 -> n1 [label=\"returns (untrusted)\", style=\"bold\", color=\"#b9770e\", fontcolor=\"#b9770e\", penwidth=2];\n"), "{out}");
        assert!(out.contains("  n0 -> n1 [label=\"acts for\"];\n"), "{out}");
    }

    #[test]
    fn markdown_orders_sections_and_threats_by_status() {
        let out = markdown(&model());
        assert!(
            out.starts_with("# AI threat model: Acme \"Labs\" \\<b\\>\n"),
            "{out}"
        );
        let order = [
            "## Summary",
            "## Diagram",
            "```mermaid\nflowchart LR\n",
            "## Trust boundaries",
            "### Organisation \"HQ\" \\[main\\]",
            "### Agents {internal}",
            "### MCP server crm\\\\path",
            "### Empty\n\nBoundary `empty`, inside Organisation \"HQ\" \\[main\\].\n\nNo elements.",
            "### External \\<script\\>alert(1)\\</script\\>",
            "### Outside any trust boundary\n\n- tool lost \\& found\n",
            "## Flows",
            "## Threats",
            "### Unmitigated (1)",
            "#### Excessive agency: agent report-agent \\[v2\\] \"prod\"",
            "### Partly mitigated (2)",
            "#### Indirect prompt injection: crm.query → report-agent \\[v2\\] \"prod\" (returns)",
            "#### Supply-chain compromise: tool crm.query",
            "### Mitigated (3)",
            "#### Spoofing: agent report-agent",
        ];
        let mut from = 0;
        for heading in order {
            let at = out[from..]
                .find(heading)
                .unwrap_or_else(|| panic!("{heading:?} missing or out of order in {out}"));
            from += at + heading.len();
        }
        assert!(out.ends_with("\n") && !out.ends_with("\n\n"), "{out}");
        // Outside the diagram (where `<br/>` is Mermaid's line break), every `<`
        // is escaped.
        let prose = out.replace("<br/>", "");
        assert!(
            prose
                .match_indices('<')
                .all(|(i, _)| prose[..i].ends_with('\\')),
            "{out}"
        );
    }

    #[test]
    fn markdown_summarises_and_lists_references_and_gaps() {
        let out = markdown(&model());
        assert!(out.contains("| Unmitigated | Partly mitigated | Mitigated |\n| ---: | ---: | ---: |\n| 1 | 2 | 3 |\n"), "{out}");
        assert!(out.contains("| Spoofing | 0 | 0 | 1 |\n"), "{out}");
        assert!(out.contains("| Excessive agency | 1 | 0 | 0 |\n"), "{out}");
        assert!(
            out.contains(
                "- References: OWASP LLM LLM06:2025; OWASP agentic T3; MITRE ATLAS AML.T0053\n"
            ),
            "{out}"
        );
        assert!(out.contains("- Mitigated by:\n  - `zt4ai.flow.send`\n- Gaps:\n  - no approval \\<b\\>step\\</b\\>\n"), "{out}");
        assert!(out.contains("- agent report-agent \\[v2\\] \"prod\" (confidential): Writes the \\*weekly\\* report\n"), "{out}");
        // Table cells: pipes escaped, also inside code spans; names, not ids.
        assert!(out.contains("| alice \\| admin | report-agent \\[v2\\] \"prod\" | acts for | unknown | none | no |\n"), "{out}");
        assert!(out.contains("| crm.query | mail\\\\evil\\#quot;x second line | sends | highly_confidential | External \\<script\\>alert(1)\\</script\\>, `nowhere\\|x` | `zt4ai.flow.send` |\n"), "{out}");
        assert!(out.contains("| returns (untrusted content) |"), "{out}");
    }

    #[test]
    fn json_round_trips_with_a_trailing_newline() {
        let m = model();
        let out = json(&m);
        assert!(out.ends_with("}\n"), "{out}");
        let back: ThreatModel = serde_json::from_str(&out).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn rendering_is_deterministic() {
        let (a, b) = (model(), model());
        assert_eq!(mermaid(&a), mermaid(&b));
        assert_eq!(dot(&a), dot(&b));
        assert_eq!(markdown(&a), markdown(&b));
        assert_eq!(json(&a), json(&b));
    }

    #[test]
    fn an_empty_model_renders() {
        let m = ThreatModel {
            organisation: None,
            inventory: String::new(),
            boundaries: Vec::new(),
            elements: Vec::new(),
            flows: Vec::new(),
            threats: Vec::new(),
        };
        assert_eq!(
            mermaid(&m)
                .lines()
                .filter(|l| l.starts_with("  class "))
                .count(),
            0
        );
        assert!(dot(&m).ends_with("edge [fontsize=9];\n}\n"));
        let md = markdown(&m);
        assert!(
            md.starts_with("# AI threat model: unnamed organisation\n"),
            "{md}"
        );
        assert!(md.contains("## Threats\n\nNone.\n"), "{md}");
    }

    #[test]
    fn running_a_program_reports_failure_and_timeout() {
        let sh = Path::new("/bin/sh");
        let ok = run(sh, &["-c", "tr a-z A-Z"], "svg", Duration::from_secs(10));
        assert_eq!(ok.unwrap(), "SVG");
        let Err(Run::Failed(message)) = run(
            sh,
            &["-c", "echo 'syntax error' >&2; exit 3"],
            "",
            Duration::from_secs(10),
        ) else {
            panic!("a failing program succeeded");
        };
        assert!(message.contains("syntax error"), "{message}");
        let started = Instant::now();
        let Err(Run::Failed(message)) =
            run(sh, &["-c", "exec sleep 20"], "", Duration::from_millis(200))
        else {
            panic!("a hanging program was not stopped");
        };
        assert!(message.contains("took longer"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(matches!(
            run(
                Path::new("/nonexistent/dot"),
                &[],
                "",
                Duration::from_secs(1)
            ),
            Err(Run::NotFound)
        ));
    }
}
