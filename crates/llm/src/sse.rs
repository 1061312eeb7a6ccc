//! Server-sent events framing, as OpenAI-compatible providers stream chat
//! completions: events separated by a blank line, the payload in `data:`
//! lines. Only the framing is handled here (a few lines, so no dependency):
//! each event's `data` lines joined by `\n`; comments, `event:`, `id:` and
//! `retry:` fields are ignored, as the chat-completions stream uses none.

/// Splits a byte stream into the `data` of its events.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    buf: Vec<u8>,
}

impl Parser {
    /// Adds `bytes`; returns the data of every event they complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, skip)) = boundary(&self.buf) {
            let event: Vec<u8> = self.buf.drain(..end + skip).take(end).collect();
            let text = String::from_utf8_lossy(&event);
            let mut data: Option<String> = None;
            for line in text.split('\n') {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if let Some(v) = line.strip_prefix("data:") {
                    let v = v.strip_prefix(' ').unwrap_or(v);
                    match &mut data {
                        Some(d) => {
                            d.push('\n');
                            d.push_str(v);
                        }
                        None => data = Some(v.to_owned()),
                    }
                }
            }
            if let Some(d) = data {
                out.push(d);
            }
        }
        out
    }

    /// Bytes received but not yet part of a complete event.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// The end of the first event in `buf` and the length of the blank line
/// that ends it (`\n\n`, `\r\n\r\n`, or a mix).
fn boundary(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            let rest = &buf[i + 1..];
            if rest.first() == Some(&b'\n') {
                return Some((i, 2));
            }
            if rest.starts_with(b"\r\n") {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_are_joined() {
        let mut p = Parser::default();
        assert!(p.push(b"data: {\"a\"").is_empty());
        assert_eq!(p.push(b":1}\n\ndata: [DONE]\n\n"), ["{\"a\":1}", "[DONE]"]);
        assert_eq!(p.pending(), 0);
    }

    #[test]
    fn crlf_comments_and_multi_line_data() {
        let mut p = Parser::default();
        let got = p.push(b": keep-alive\r\n\r\nevent: x\r\ndata: one\r\ndata:two\r\n\r\n");
        assert_eq!(got, ["one\ntwo"]);
    }
}
