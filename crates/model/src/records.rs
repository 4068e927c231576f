//! Cutting a request body or an input file into one raw record per indicator.
//!
//! Accepted framings, told apart by the first byte that is not white space:
//! - `[`: a JSON array; each element is a record.
//! - anything else: one object, NDJSON, or concatenated objects (pretty-printed or not, with
//!   white space, nothing, or a comma between them).
//!
//! Each record is a JSON object; anything else is an error naming its line. Line numbers are
//! 1-based (a line ends at `\n`, `\r\n` or a lone `\r`) and an error names the line the bad
//! record starts on.
//!
//! Recovery, so one bad record never hides the good ones after it: a record is parsed only up to
//! the next line that starts (after its indentation, which must not be deeper than the record's)
//! with `{`, because that is where the next record of NDJSON or pretty-printed input begins;
//! after a syntax error, reading resumes at the next `}{` boundary inside that span, else at
//! the span's end. Bounding each record this way also keeps the work linear in the input size,
//! however the input is broken.

use serde_json::value::RawValue;
use thiserror::Error;

use crate::Indicator;

/// One record: the exact text of one JSON object and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// The 1-based line the record starts on.
    pub line: usize,
    /// The record exactly as received (what `event.original` keeps).
    pub text: &'a str,
}

impl RawRecord<'_> {
    /// Parses the record into an [`Indicator`].
    pub fn parse(&self) -> Result<Indicator, RecordError> {
        self.text.parse::<Indicator>().map_err(|error| {
            let column = if error.line() <= 1 {
                None
            } else {
                Some(error.column())
            };
            RecordError::Malformed {
                line: self.line + error.line().saturating_sub(1),
                column: column.unwrap_or(error.column()),
                reason: reason_of(&error),
            }
        })
    }
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The JSON is malformed at the given position.
    #[error("line {line} column {column}: malformed JSON: {reason}")]
    Malformed {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error on that line.
        column: usize,
        /// What the JSON parser expected.
        reason: String,
    },
    /// The record is valid JSON but not an object.
    #[error("line {line}: expected a JSON object (one indicator), found {found}")]
    NotAnObject {
        /// 1-based line the value starts on.
        line: usize,
        /// The kind of value found, such as `a number`.
        found: &'static str,
    },
}

impl RecordError {
    /// The 1-based line the error is on.
    pub fn line(&self) -> usize {
        match self {
            Self::Malformed { line, .. } | Self::NotAnObject { line, .. } => *line,
        }
    }
}

/// Splits `input` into records, in input order. See the module docs for the framings.
pub fn split(input: &[u8]) -> Records<'_> {
    let mut splitter = Records {
        input,
        pos: 0,
        line: 1,
        line_start: 0,
        mode: Mode::Stream,
        resumed_at_object: false,
        span_cache: None,
    };
    // A UTF-8 byte-order mark is not part of the JSON.
    if input.starts_with(b"\xEF\xBB\xBF") {
        splitter.pos = 3;
        splitter.line_start = 3;
    }
    splitter.skip_whitespace();
    if splitter.peek() == Some(b'[') {
        splitter.advance_to(splitter.pos + 1);
        splitter.mode = Mode::Array { first: true };
    }
    splitter
}

/// The iterator [`split`] returns.
#[derive(Debug)]
pub struct Records<'a> {
    input: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
    mode: Mode,
    /// Set when recovery stopped at the `{` of the next record (an array then reads it as an
    /// element without expecting a comma first).
    resumed_at_object: bool,
    /// The last span computed: (line start, indentation, end). Records that share a line share
    /// a span, so a long line of concatenated objects is scanned once, not once per object.
    span_cache: Option<(usize, usize, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Stream,
    Array { first: bool },
    Done,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RawRecord<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.mode {
            Mode::Done => None,
            Mode::Stream => self.next_in_stream(),
            Mode::Array { first } => self.next_in_array(first),
        }
    }
}

fn is_line_break(byte: u8) -> bool {
    byte == b'\n' || byte == b'\r'
}

impl<'a> Records<'a> {
    fn next_in_stream(&mut self) -> Option<Result<RawRecord<'a>, RecordError>> {
        // White space and commas may separate top-level objects.
        loop {
            self.skip_whitespace();
            if self.peek() == Some(b',') {
                self.advance_to(self.pos + 1);
            } else {
                break;
            }
        }
        if self.pos >= self.input.len() {
            self.mode = Mode::Done;
            return None;
        }
        Some(self.next_value())
    }

    fn next_in_array(&mut self, first: bool) -> Option<Result<RawRecord<'a>, RecordError>> {
        self.skip_whitespace();
        match self.peek() {
            None => {
                return Some(Err(
                    self.stop(self.error_here("unterminated array: expected `]`"))
                ));
            }
            Some(b']') => {
                self.advance_to(self.pos + 1);
                self.skip_whitespace();
                self.mode = Mode::Done;
                return if self.pos < self.input.len() {
                    Some(Err(self.error_here("trailing characters after the array")))
                } else {
                    None
                };
            }
            Some(b',') if !first => {
                self.advance_to(self.pos + 1);
                self.skip_whitespace();
            }
            Some(_) if !first => {
                let error = self.error_here("expected `,` or `]` after an element");
                let start = self.pos;
                let end = self.span_end(start);
                self.resume_after_error(start, end);
                self.mode = Mode::Array {
                    first: self.resumed_at_object,
                };
                return Some(Err(error));
            }
            Some(_) => {}
        }
        self.resumed_at_object = false;
        let value = self.next_value();
        self.mode = Mode::Array {
            first: self.resumed_at_object,
        };
        Some(value)
    }

    /// One value at `pos`, parsed within its span. On success `pos` moves past it; on a
    /// syntax error it moves to where the next record can start.
    fn next_value(&mut self) -> Result<RawRecord<'a>, RecordError> {
        let start = self.pos;
        let line = self.line;
        let end = self.span_end(start);
        let mut stream =
            serde_json::Deserializer::from_slice(&self.input[start..end]).into_iter::<&RawValue>();
        let parsed = stream.next();
        let consumed = stream.byte_offset();
        match parsed {
            Some(Ok(raw)) => {
                let text = raw.get();
                self.advance_to(start + consumed);
                let found = match text.as_bytes().first() {
                    Some(b'{') => return Ok(RawRecord { line, text }),
                    Some(b'[') => "an array",
                    Some(b'"') => "a string",
                    Some(b't' | b'f') => "a boolean",
                    Some(b'n') => "null",
                    _ => "a number",
                };
                Err(RecordError::NotAnObject { line, found })
            }
            Some(Err(error)) => {
                let error_at = start + self.offset_in(start, end, &error);
                let reported = if error.is_eof() {
                    RecordError::Malformed {
                        line,
                        column: start - self.line_start + 1,
                        reason: "incomplete JSON object (the record ends before its closing brace)"
                            .to_owned(),
                    }
                } else {
                    self.error_at(error_at, &reason_of(&error))
                };
                self.resume_after_error(error_at, end);
                Err(reported)
            }
            None => {
                self.advance_to(end);
                Err(self.error_here("unexpected end of input"))
            }
        }
    }

    /// Where a record starting at `start` may end: the next line whose first non-blank byte is
    /// `{`, indented no deeper than the record's own line.
    fn span_end(&mut self, start: usize) -> usize {
        let input = self.input;
        // `start` is on the current line: `pos` never passes a line break unseen.
        let line_begin = self.line_start.min(start);
        let indent_of = |from: usize| {
            input[from..]
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t')
                .count()
        };
        let own_indent = if input[line_begin..start]
            .iter()
            .all(|&b| b == b' ' || b == b'\t')
        {
            start - line_begin
        } else {
            0
        };
        if let Some((cached_line, cached_indent, end)) = self.span_cache
            && cached_line == line_begin
            && cached_indent == own_indent
            && end > start
        {
            return end;
        }
        let mut end = input.len();
        let mut at = start;
        while let Some(offset) = input[at..].iter().position(|&b| is_line_break(b)) {
            let next_line = at + offset + 1;
            let indent = indent_of(next_line);
            if input.get(next_line + indent) == Some(&b'{') && indent <= own_indent {
                end = next_line;
                break;
            }
            at = next_line;
        }
        self.span_cache = Some((line_begin, own_indent, end));
        end
    }

    /// After a syntax error at `error_at` in a span ending at `end`: resume at the next `}{`
    /// (or `},{`) boundary in the span, else at the span's end.
    fn resume_after_error(&mut self, error_at: usize, end: usize) {
        let from = error_at.min(end);
        let span = &self.input[from..end];
        let mut resume = end;
        for (offset, _) in span.iter().enumerate().filter(|(_, b)| **b == b'}') {
            let after = &span[offset + 1..];
            let gap = after
                .iter()
                .take_while(|&&b| b == b' ' || b == b'\t' || b == b',')
                .count();
            if after.get(gap) == Some(&b'{') {
                resume = from + offset + 1 + gap;
                break;
            }
        }
        self.advance_to(resume);
        self.resumed_at_object = self.peek_past_whitespace() == Some(b'{');
    }

    fn peek_past_whitespace(&self) -> Option<u8> {
        self.input[self.pos..]
            .iter()
            .copied()
            .find(|b| !b" \t\r\n".contains(b))
    }

    /// The byte offset of a parser error inside the span that starts at `start`.
    fn offset_in(&self, start: usize, end: usize, error: &serde_json::Error) -> usize {
        let span = &self.input[start..end];
        let mut offset = 0;
        for _ in 1..error.line() {
            match span[offset..].iter().position(|&b| b == b'\n') {
                Some(newline) => offset += newline + 1,
                None => return span.len(),
            }
        }
        (offset + error.column().saturating_sub(1)).min(span.len())
    }

    fn advance_to(&mut self, target: usize) {
        let target = target.min(self.input.len());
        for index in self.pos..target {
            let byte = self.input[index];
            let breaks =
                byte == b'\n' || (byte == b'\r' && self.input.get(index + 1) != Some(&b'\n'));
            if breaks {
                self.line += 1;
                self.line_start = index + 1;
            }
        }
        self.pos = target;
    }

    fn skip_whitespace(&mut self) {
        let skip = self.input[self.pos..]
            .iter()
            .position(|b| !b" \t\r\n".contains(b))
            .unwrap_or(self.input.len() - self.pos);
        self.advance_to(self.pos + skip);
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn stop(&mut self, error: RecordError) -> RecordError {
        self.mode = Mode::Done;
        error
    }

    fn error_here(&self, reason: &str) -> RecordError {
        RecordError::Malformed {
            line: self.line,
            column: self.pos - self.line_start + 1,
            reason: reason.to_owned(),
        }
    }

    /// An error at byte `at` (at or after `pos`), with its line and column.
    fn error_at(&self, at: usize, reason: &str) -> RecordError {
        let mut line = self.line;
        let mut line_start = self.line_start;
        for index in self.pos..at.min(self.input.len()) {
            let byte = self.input[index];
            if byte == b'\n' || (byte == b'\r' && self.input.get(index + 1) != Some(&b'\n')) {
                line += 1;
                line_start = index + 1;
            }
        }
        RecordError::Malformed {
            line,
            column: at - line_start + 1,
            reason: reason.to_owned(),
        }
    }
}

/// The parser's message without its " at line L column C" suffix (we give our own position).
fn reason_of(error: &serde_json::Error) -> String {
    let message = error.to_string();
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_and_texts(input: &str) -> Vec<Result<(usize, String), String>> {
        split(input.as_bytes())
            .map(|item| {
                item.map(|r| (r.line, r.text.to_owned()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    #[test]
    fn ndjson_lines_are_records() {
        let got = lines_and_texts("{\"id\":1}\n\n{\"id\":2}\r\n{\"id\":3}");
        assert_eq!(
            got,
            vec![
                Ok((1, "{\"id\":1}".into())),
                Ok((3, "{\"id\":2}".into())),
                Ok((4, "{\"id\":3}".into()))
            ]
        );
    }

    #[test]
    fn array_elements_are_records() {
        let got = lines_and_texts("[\n {\"id\":1},\n {\"id\":2}\n]\n");
        assert_eq!(
            got,
            vec![Ok((2, "{\"id\":1}".into())), Ok((3, "{\"id\":2}".into()))]
        );
        assert!(lines_and_texts("[]").is_empty());
    }

    #[test]
    fn concatenated_pretty_objects_are_records() {
        let got = lines_and_texts("{\n  \"id\": 1\n}{\"id\":2}\n{\n\"id\":3}");
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Ok((1, "{\n  \"id\": 1\n}".into())));
        assert_eq!(got[1], Ok((3, "{\"id\":2}".into())));
        assert_eq!(got[2], Ok((4, "{\n\"id\":3}".into())));
    }

    #[test]
    fn a_malformed_line_is_named_and_the_rest_still_read() {
        let got = lines_and_texts("{\"id\":1}\n{\"id\": }\n{\"id\":3}\n");
        assert_eq!(got[0], Ok((1, "{\"id\":1}".into())));
        let error = got[1].clone().unwrap_err();
        assert!(
            error.starts_with("line 2 column 8: malformed JSON"),
            "{error}"
        );
        assert_eq!(got[2], Ok((3, "{\"id\":3}".into())));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn a_truncated_line_does_not_swallow_the_next_one() {
        let got = lines_and_texts("{\"id\":1\n{\"id\":2}\n");
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0]
                .clone()
                .unwrap_err()
                .starts_with("line 1 column 1: malformed JSON: incomplete"),
            "{got:?}"
        );
        assert_eq!(got[1], Ok((2, "{\"id\":2}".into())));
        // Truncated after `:` or inside an array, where the next lines would keep the JSON
        // valid: each is reported on its own line, and the work stays linear.
        let many: String = (0..2000)
            .map(|i| format!("{{\"id\":{i},\"domain\":\n"))
            .collect();
        let got = lines_and_texts(&many);
        assert_eq!(got.len(), 2000);
        for (index, item) in got.iter().enumerate() {
            let error = item.clone().unwrap_err();
            assert!(
                error.starts_with(&format!("line {} ", index + 1)),
                "{error}"
            );
        }
    }

    #[test]
    fn concatenated_objects_recover_after_a_bad_one() {
        let got = lines_and_texts("{\"id\":1}{\"id\":3,\"domain\":}{\"id\":4}");
        let ok: Vec<String> = got
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(_, t)| t.clone())
            .collect();
        assert_eq!(ok, ["{\"id\":1}", "{\"id\":4}"], "{got:?}");
        assert_eq!(got.iter().filter(|r| r.is_err()).count(), 1);

        let got = lines_and_texts("{\"id\":1},{\"id\":2}");
        assert_eq!(
            got,
            vec![Ok((1, "{\"id\":1}".into())), Ok((1, "{\"id\":2}".into()))]
        );

        let got = lines_and_texts("{\"id\":1}\r{\"id\":2,}\r{\"id\":3}\r{\"id\":4}\r");
        let ok: Vec<usize> = got
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(line, _)| *line)
            .collect();
        assert_eq!(ok, [1, 3, 4], "{got:?}");
        assert!(
            got[1].clone().unwrap_err().starts_with("line 2 "),
            "{got:?}"
        );
    }

    #[test]
    fn non_objects_are_errors_with_their_line() {
        let got = lines_and_texts("5\n\"x\"\n[1]\nnull\ntrue\n{\"id\":1}");
        let errors: Vec<String> = got[..5].iter().map(|r| r.clone().unwrap_err()).collect();
        assert_eq!(
            errors[0],
            "line 1: expected a JSON object (one indicator), found a number"
        );
        assert_eq!(
            errors[1],
            "line 2: expected a JSON object (one indicator), found a string"
        );
        assert_eq!(
            errors[2],
            "line 3: expected a JSON object (one indicator), found an array"
        );
        assert_eq!(
            errors[3],
            "line 4: expected a JSON object (one indicator), found null"
        );
        assert_eq!(
            errors[4],
            "line 5: expected a JSON object (one indicator), found a boolean"
        );
        assert_eq!(got[5], Ok((6, "{\"id\":1}".into())));
    }

    #[test]
    fn array_errors_skip_the_bad_element_only() {
        let got = lines_and_texts("[{\"id\":1}, {\"id\":}, {\"id\":3}]");
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], Ok((1, "{\"id\":1}".into())));
        assert!(
            got[1].clone().unwrap_err().starts_with("line 1 column 18"),
            "{got:?}"
        );
        assert_eq!(got[2], Ok((1, "{\"id\":3}".into())));

        let pretty = "[\n  {\"id\":1},\n  {\"id\":2,, },\n  {\"id\":3},\n  {\"id\":4}\n]\n";
        let got = lines_and_texts(pretty);
        let ids: Vec<usize> = got
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|(line, _)| *line)
            .collect();
        assert_eq!(ids, [2, 4, 5], "{got:?}");
        assert!(got[1].clone().unwrap_err().starts_with("line 3"), "{got:?}");
        for bad in [
            "[{\"id\":1}",
            "[{\"id\":1} {\"id\":2}]",
            "[{\"id\":1}] x",
            "[,]",
        ] {
            let got = lines_and_texts(bad);
            assert!(got.iter().any(Result::is_err), "{bad}: {got:?}");
        }
    }

    #[test]
    fn empty_and_blank_input_have_no_records() {
        assert!(lines_and_texts("").is_empty());
        assert!(lines_and_texts(" \n\t\r\n").is_empty());
        assert_eq!(
            lines_and_texts("\u{feff}{\"id\":1}"),
            vec![Ok((1, "{\"id\":1}".into()))]
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_not_a_panic() {
        let got: Vec<_> = split(b"{\"id\":\"\xff\"}\n{\"id\":2}").collect();
        assert!(got[0].is_err());
        assert_eq!(got[1].as_ref().unwrap().text, "{\"id\":2}");
    }

    #[test]
    fn parse_positions_deep_nesting_errors_on_the_record_line() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let input = format!("{{\"id\":1}}\n{deep}\n");
        let records: Vec<_> = split(input.as_bytes()).collect();
        let second = records[1].as_ref().unwrap();
        let error = second.parse().unwrap_err();
        assert_eq!(error.line(), 2, "{error}");
    }
}
