//! Cutting a request body or an input file into one raw record per indicator.
//!
//! Accepted framings, told apart by the first byte that is not white space:
//! - `[`: a JSON array; each element is a record. A syntax error ends the array (what follows
//!   it cannot be framed reliably); the elements before it are still yielded.
//! - anything else: one object, NDJSON, or concatenated objects (pretty-printed or not). After a
//!   syntax error the splitter skips to the next line that starts with `{` and goes on, so one
//!   bad line never hides the good ones after it.
//!
//! Each record is a JSON object; anything else is an error naming its line. Line numbers are
//! 1-based and name the line the record starts on.

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
        Indicator::from_slice(self.text.as_bytes()).map_err(|error| {
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

impl<'a> Records<'a> {
    fn next_in_stream(&mut self) -> Option<Result<RawRecord<'a>, RecordError>> {
        self.skip_whitespace();
        if self.pos >= self.input.len() {
            self.mode = Mode::Done;
            return None;
        }
        let start_line = self.line;
        match self.parse_value() {
            Ok(record) => Some(record),
            Err(error) => {
                self.resync_after(start_line);
                Some(Err(error))
            }
        }
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
                return Some(Err(
                    self.stop(self.error_here("expected `,` or `]` after an element"))
                ));
            }
            Some(_) => {}
        }
        self.mode = Mode::Array { first: false };
        match self.parse_value() {
            Ok(record) => Some(record),
            Err(error) => Some(Err(self.stop(error))),
        }
    }

    /// Parses one JSON value at `pos`; on success moves past it. A value that is not an object is
    /// consumed and reported as an error.
    fn parse_value(&mut self) -> Result<Result<RawRecord<'a>, RecordError>, RecordError> {
        let rest = &self.input[self.pos..];
        let mut stream = serde_json::Deserializer::from_slice(rest).into_iter::<&RawValue>();
        let parsed = stream.next();
        let consumed = stream.byte_offset();
        match parsed {
            None => Err(self.error_here("unexpected end of input")),
            Some(Err(error)) => Err(self.error_from(&error)),
            Some(Ok(raw)) => {
                let line = self.line;
                let text = raw.get();
                self.advance_to(self.pos + consumed);
                let found = match text.as_bytes().first() {
                    Some(b'{') => return Ok(Ok(RawRecord { line, text })),
                    Some(b'[') => "an array",
                    Some(b'"') => "a string",
                    Some(b't' | b'f') => "a boolean",
                    Some(b'n') => "null",
                    _ => "a number",
                };
                Ok(Err(RecordError::NotAnObject { line, found }))
            }
        }
    }

    /// After a syntax error in a record that started on `start_line`: go to the next line that
    /// starts with `{`, so later records are still read.
    fn resync_after(&mut self, start_line: usize) {
        // Restart from the beginning of the failed record's line, then skip at least that line.
        let mut pos = self.line_start_of(start_line);
        loop {
            match self.input[pos..].iter().position(|&b| b == b'\n') {
                None => {
                    self.advance_to(self.input.len());
                    return;
                }
                Some(newline) => pos += newline + 1,
            }
            let first = self.input[pos..].iter().position(|b| !b" \t\r".contains(b));
            if let Some(offset) = first
                && self.input[pos + offset] == b'{'
            {
                self.seek(pos + offset);
                return;
            }
        }
    }

    fn line_start_of(&self, line: usize) -> usize {
        if line == self.line {
            return self.line_start;
        }
        let mut current = 1;
        let mut start = 0;
        for (index, &byte) in self.input.iter().enumerate() {
            if current == line {
                break;
            }
            if byte == b'\n' {
                current += 1;
                start = index + 1;
            }
        }
        start
    }

    /// Moves to `target`, which may lie before `pos`; recounts lines from the start.
    fn seek(&mut self, target: usize) {
        if target >= self.pos {
            self.advance_to(target);
        } else {
            self.pos = 0;
            self.line = 1;
            self.line_start = 0;
            self.advance_to(target);
        }
    }

    fn advance_to(&mut self, target: usize) {
        let target = target.min(self.input.len());
        for (offset, &byte) in self.input[self.pos..target].iter().enumerate() {
            if byte == b'\n' {
                self.line += 1;
                self.line_start = self.pos + offset + 1;
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

    /// Turns a parser error, positioned relative to `pos`, into one positioned in the input.
    fn error_from(&self, error: &serde_json::Error) -> RecordError {
        let line = self.line + error.line().saturating_sub(1);
        let column = if error.line() <= 1 {
            self.pos - self.line_start + error.column().max(1)
        } else {
            error.column().max(1)
        };
        RecordError::Malformed {
            line,
            column,
            reason: reason_of(error),
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
        assert!(got[0].clone().unwrap_err().starts_with("line 2"), "{got:?}");
        assert_eq!(got[1], Ok((2, "{\"id\":2}".into())));
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
    fn array_errors_stop_the_array_but_keep_what_came_before() {
        let got = lines_and_texts("[{\"id\":1}, {\"id\":}, {\"id\":3}]");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok((1, "{\"id\":1}".into())));
        assert!(
            got[1].clone().unwrap_err().starts_with("line 1 column 18"),
            "{got:?}"
        );
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
