//! Source positions for inventory paths, so semantic errors can name a line.
//!
//! serde reports the position of syntax and type errors itself, but a reference to
//! an unknown user is found only after parsing, on plain data. This module walks the
//! YAML event stream once and records where each path (`agents[1].owner`) starts,
//! using the same path syntax as `serde_path_to_error`.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// Line (1-based) and column (1-based) of each path in a YAML text.
#[derive(Debug, Default)]
pub struct Locations(HashMap<String, (usize, usize)>);

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn value_path(stack: &mut [Frame]) -> String {
    match stack.last_mut() {
        Some(Frame::Map { key, path }) => key.take().unwrap_or_else(|| path.clone()),
        Some(Frame::Seq { path, next }) => {
            let p = format!("{path}[{next}]");
            *next += 1;
            p
        }
        None => String::new(),
    }
}

impl Locations {
    /// Indexes `text`; a YAML syntax error simply ends the index early
    /// (the deserializer reports it with its own position).
    pub fn index(text: &str) -> Locations {
        let mut out: HashMap<String, (usize, usize)> = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        for item in Parser::new_from_str(text) {
            let Ok((event, span)) = item else { break };
            let pos = (span.start.line(), span.start.col() + 1);
            match event {
                Event::Scalar(value, ..) => {
                    let is_key = matches!(stack.last(), Some(Frame::Map { key: None, .. }));
                    if is_key {
                        if let Some(Frame::Map { path, key }) = stack.last_mut() {
                            let p = join(path, &value);
                            out.entry(p.clone()).or_insert(pos);
                            *key = Some(p);
                        }
                    } else {
                        let p = value_path(&mut stack);
                        out.entry(p).or_insert(pos);
                    }
                }
                Event::Alias(_) => {
                    let p = value_path(&mut stack);
                    out.entry(p).or_insert(pos);
                }
                Event::MappingStart(..) => {
                    let path = value_path(&mut stack);
                    out.entry(path.clone()).or_insert(pos);
                    stack.push(Frame::Map { path, key: None });
                }
                Event::SequenceStart(..) => {
                    let path = value_path(&mut stack);
                    out.entry(path.clone()).or_insert(pos);
                    stack.push(Frame::Seq { path, next: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        Locations(out)
    }

    /// The position of `path`, or of its nearest ancestor that has one.
    pub fn find(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(pos) = self.0.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return self.0.get("").copied().unwrap_or((1, 1)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_items_and_ancestors() {
        let text = "users:\n  - id: alice\n    groups: [a, b]\nagents:\n  - id: x\n  - id: y\n    owner: bob\n";
        let l = Locations::index(text);
        assert_eq!(l.find("users"), (1, 1));
        assert_eq!(l.find("users[0].id"), (2, 5));
        assert_eq!(l.find("users[0].groups[1]"), (3, 17));
        assert_eq!(l.find("agents[1].owner"), (7, 5));
        assert_eq!(l.find("agents[1].missing"), (6, 5));
    }
}
