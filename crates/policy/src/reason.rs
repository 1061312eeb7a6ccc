//! Filling `{…}` placeholders in a policy's `@reason`.

/// Replaces each `{name}` in `template` with `lookup(name)`; unknown names stay as written.
pub(crate) fn render(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match lookup(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn fills_known_and_keeps_unknown() {
        let f = |n: &str| (n == "a").then(|| "X".to_owned());
        assert_eq!(render("{a} and {b} and {a", &f), "X and {b} and {a");
        assert_eq!(render("plain", &f), "plain");
    }
}
