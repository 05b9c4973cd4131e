//! Server-Sent Events framing, as `streamGenerateContent?alt=sse` sends it: each event is
//! `data: <JSON>` lines ended by a blank line, `\n\n` or `\r\n\r\n`. No `event:` names matter
//! and there is no `[DONE]`: the body's end is the stream's end.
//!
//! An error in the middle of a 200 stream often comes as a raw JSON object with no `data:`
//! prefix, possibly pretty-printed over several lines: a line that is no SSE field starts such
//! an object, and lines are gathered until its braces balance (strings are skipped when
//! counting). Pure and incremental: bytes in as they arrive, items out as they complete.

/// What the body said, one complete item at a time.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// An event's data (its `data:` lines joined with `\n`).
    Event(Vec<u8>),
    /// Text outside the SSE framing (a bare JSON object, the service's error): not an event.
    Bare(Vec<u8>),
}

#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes not yet split into lines.
    pending: Vec<u8>,
    /// Where the scan for the next line end resumes in `pending`.
    scanned: usize,
    /// The current event's data so far, if a `data:` line was seen.
    data: Option<Vec<u8>>,
    /// A bare object being gathered, and its brace depth so far.
    bare: Option<(Vec<u8>, Braces)>,
}

/// Brace depth of JSON text read so far, outside strings.
#[derive(Debug, Default, Clone, Copy)]
struct Braces {
    depth: i64,
    in_string: bool,
    escaped: bool,
}

impl Braces {
    fn feed(&mut self, text: &[u8]) {
        for &b in text {
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => self.depth -= 1,
                _ => {}
            }
        }
    }
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Adds bytes as they arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete item in what was pushed, if any.
    pub fn next_item(&mut self) -> Option<Item> {
        loop {
            let end = self.pending[self.scanned..]
                .iter()
                .position(|&b| b == b'\n');
            let Some(end) = end else {
                self.scanned = self.pending.len();
                return None;
            };
            let end = self.scanned + end;
            let mut line: Vec<u8> = self.pending.drain(..=end).collect();
            self.scanned = 0;
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(item) = self.line(line) {
                return Some(item);
            }
        }
    }

    /// At the body's end: what is left, if anything (an event whose blank line never came, a
    /// bare object, even an unbalanced one, or stray text).
    pub fn finish(&mut self) -> Option<Item> {
        if !self.pending.is_empty() {
            let mut line = std::mem::take(&mut self.pending);
            self.scanned = 0;
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(item) = self.line(line) {
                // Keep what the last line left gathering for the next call.
                return Some(item);
            }
        }
        if let Some((text, _)) = self.bare.take() {
            return Some(Item::Bare(text));
        }
        self.data.take().map(Item::Event)
    }

    fn line(&mut self, line: Vec<u8>) -> Option<Item> {
        if let Some((text, braces)) = &mut self.bare {
            text.push(b'\n');
            text.extend_from_slice(&line);
            braces.feed(&line);
            if braces.depth <= 0 && !braces.in_string {
                return self.bare.take().map(|(text, _)| Item::Bare(text));
            }
            return None;
        }
        if line.is_empty() {
            return self.data.take().map(Item::Event);
        }
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            match &mut self.data {
                Some(data) => {
                    data.push(b'\n');
                    data.extend_from_slice(value);
                }
                None => self.data = Some(value.to_vec()),
            }
            return None;
        }
        // Comments and the other SSE fields carry nothing the Gemini stream uses.
        if line.starts_with(b":")
            || ["event:", "id:", "retry:"]
                .iter()
                .any(|f| line.starts_with(f.as_bytes()))
        {
            return None;
        }
        // Anything else is outside the framing: gather it until its braces balance.
        let mut braces = Braces::default();
        braces.feed(&line);
        if braces.depth <= 0 && !braces.in_string {
            return Some(Item::Bare(line));
        }
        self.bare = Some((line, braces));
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<Item> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c);
            while let Some(item) = p.next_item() {
                out.push(item);
            }
        }
        while let Some(item) = p.finish() {
            out.push(item);
        }
        out
    }

    fn ev(s: &str) -> Item {
        Item::Event(s.as_bytes().to_vec())
    }

    #[test]
    fn lf_and_crlf_framing_give_the_same_events_whatever_the_chunking() {
        let lf = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\n";
        let crlf = b"data: {\"a\":1}\r\n\r\ndata: {\"b\":2}\r\n\r\n";
        for body in [&lf[..], &crlf[..]] {
            assert_eq!(all(&[body]), vec![ev("{\"a\":1}"), ev("{\"b\":2}")]);
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(all(&bytes), vec![ev("{\"a\":1}"), ev("{\"b\":2}")]);
        }
    }

    #[test]
    fn a_bare_pretty_printed_error_is_gathered_until_its_braces_balance() {
        let body = b"data: {\"a\":1}\n\n{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"a } in a string\"\n  }\n}\n";
        let items = all(&[body]);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0], ev("{\"a\":1}"));
        let Item::Bare(text) = &items[1] else {
            panic!("{items:?}")
        };
        let v: serde_json::Value = serde_json::from_slice(text).unwrap();
        assert_eq!(v["error"]["code"], 503);
    }

    #[test]
    fn the_end_of_the_body_completes_what_is_left() {
        assert_eq!(all(&[b"data: {\"a\":1}"]), vec![ev("{\"a\":1}")]);
        assert_eq!(all(&[b"data: {\"a\":1}\n"]), vec![ev("{\"a\":1}")]);
        assert_eq!(
            all(&[b"{\"error\": {"]),
            vec![Item::Bare(b"{\"error\": {".to_vec())]
        );
        assert_eq!(all(&[b""]), vec![]);
        assert_eq!(all(&[b": comment\nevent: x\n\n"]), vec![]);
    }

    #[test]
    fn multi_line_data_is_joined_with_newlines() {
        assert_eq!(
            all(&[b"data: {\"a\":\ndata: 1}\n\n"]),
            vec![ev("{\"a\":\n1}")]
        );
    }
}
