//! Reading the JSON metadata files of zarr (`zarr.json`, `.zarray`) and N5 (`attributes.json`)
//! robustly.
//!
//! The files come from other tools and may be damaged or hostile. Every way they can be wrong
//! is one [`Error::Metadata`] (a Python `ValueError`) naming the file: a file too large to be
//! metadata, bytes that are not UTF-8, text that is not a JSON object, a member nested deeper
//! than the parser follows. The object's top-level members are split without recursion and
//! only the members asked for are parsed, so user attributes nested 100,000 levels deep (which
//! serde_json refuses beyond 128 levels) do not stop an array from opening.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Metadata files larger than this are refused rather than read into memory.
pub const MAX_METADATA_BYTES: u64 = 64 << 20;

/// Which top-level members to parse.
#[derive(Clone, Copy, Debug)]
pub enum Members<'a> {
    All,
    Only(&'a [&'a str]),
    AllBut(&'a [&'a str]),
}

impl Members<'_> {
    fn wants(&self, key: &str) -> bool {
        match self {
            Members::All => true,
            Members::Only(keys) => keys.contains(&key),
            Members::AllBut(keys) => !keys.contains(&key),
        }
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::Metadata {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The JSON object in the file at `path` with the `members` asked for; `None` when the file
/// does not exist.
pub fn read_object(path: &Path, members: Members<'_>) -> Result<Option<Map<String, Value>>> {
    let bytes = match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_dir() => {
            return Err(invalid(path, "is a folder, not a metadata file"))
        }
        Ok(metadata) if metadata.len() > MAX_METADATA_BYTES => {
            let reason = format!(
                "holds {} bytes, too many for a metadata file (at most {MAX_METADATA_BYTES})",
                metadata.len()
            );
            return Err(invalid(path, reason));
        }
        Ok(_) => match crate::fs::read_if_exists(path)? {
            Some(bytes) => bytes,
            None => return Ok(None),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    parse_object(&bytes, members)
        .map(Some)
        .map_err(|reason| invalid(path, reason))
}

/// The JSON object at `key` of `store` with the `members` asked for; `None` when there is no
/// such value.
pub fn read_object_at(
    store: &dyn crate::storage::Store,
    key: &str,
    members: Members<'_>,
) -> Result<Option<Map<String, Value>>> {
    let too_long = |len: u64| Error::Metadata {
        path: store.url(key),
        reason: format!(
            "holds {len} bytes, too many for a metadata file (at most {MAX_METADATA_BYTES})"
        ),
    };
    let Some(bytes) = store.get(key, MAX_METADATA_BYTES, &too_long)? else {
        return Ok(None);
    };
    parse_object(&bytes, members)
        .map(Some)
        .map_err(|reason| Error::Metadata {
            path: store.url(key),
            reason,
        })
}

/// The members asked for of the JSON object `bytes` holds; `Err` is the reason it is invalid.
pub fn parse_object(bytes: &[u8], members: Members<'_>) -> Result<Map<String, Value>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        format!(
            "is not UTF-8 text (byte {:#04x} at offset {at}); JSON metadata must be UTF-8",
            bytes[at]
        )
    })?;
    let mut object = Map::new();
    for (key, value) in split_members(text)? {
        if members.wants(&key) {
            let parsed = serde_json::from_str(value).map_err(|e| {
                if e.to_string().contains("recursion limit") {
                    format!("member {key:?} is nested too deeply to parse")
                } else {
                    format!("member {key:?} is not valid JSON: {e}")
                }
            })?;
            object.insert(key, parsed);
        }
    }
    Ok(object)
}

/// A cursor over JSON text that skips values without recursion.
struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn skip_whitespace(&mut self) {
        while self
            .bytes
            .get(self.pos)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn error(&self, what: &str) -> String {
        // Line and column as serde_json reports them.
        let mut end = self.pos.min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &self.text[..end];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("is not a valid JSON object: {what} at line {line} column {column}")
    }

    /// Moves past the string starting at the cursor (a `"`).
    fn skip_string(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'\\' => self.pos += 1,
                b'"' => return Ok(()),
                _ => {}
            }
        }
        self.pos = start;
        Err(self.error("an unterminated string"))
    }

    /// Moves past the value starting at the cursor: strings and brackets are matched (without
    /// recursion), scalars end at the next delimiter. Only the members parsed later are checked
    /// in full.
    fn skip_value(&mut self) -> Result<(), String> {
        match self.peek() {
            None => Err(self.error("a value is missing")),
            Some(b'"') => self.skip_string(),
            Some(b'[' | b'{') => {
                let mut depth = 0usize;
                while let Some(b) = self.peek() {
                    match b {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'[' | b'{' => depth += 1,
                        b']' | b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos += 1;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    self.pos += 1;
                }
                Err(self.error("unbalanced brackets"))
            }
            Some(_) => {
                let start = self.pos;
                while self.peek().is_some_and(|b| {
                    !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.pos += 1;
                }
                if self.pos == start {
                    Err(self.error("a value is missing"))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The top-level members of the JSON object `text` holds, as (key, raw value text) pairs.
fn split_members(text: &str) -> Result<Vec<(String, &str)>, String> {
    let mut scanner = Scanner {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    scanner.skip_whitespace();
    if scanner.peek() != Some(b'{') {
        return Err(if scanner.peek().is_none() {
            "is empty, not a JSON object".to_owned()
        } else {
            scanner.error("expected '{'")
        });
    }
    scanner.pos += 1;
    let mut members = Vec::new();
    scanner.skip_whitespace();
    if scanner.peek() == Some(b'}') {
        scanner.pos += 1;
    } else {
        loop {
            scanner.skip_whitespace();
            if scanner.peek() != Some(b'"') {
                return Err(scanner.error("expected a member name"));
            }
            let key_start = scanner.pos;
            scanner.skip_string()?;
            let key: String = serde_json::from_str(&text[key_start..scanner.pos])
                .map_err(|e| scanner.error(&format!("invalid member name ({e})")))?;
            scanner.skip_whitespace();
            if scanner.peek() != Some(b':') {
                return Err(scanner.error("expected ':'"));
            }
            scanner.pos += 1;
            scanner.skip_whitespace();
            let value_start = scanner.pos;
            scanner.skip_value()?;
            members.push((key, &text[value_start..scanner.pos]));
            scanner.skip_whitespace();
            match scanner.peek() {
                Some(b',') => scanner.pos += 1,
                Some(b'}') => {
                    scanner.pos += 1;
                    break;
                }
                _ => return Err(scanner.error("expected ',' or '}'")),
            }
        }
    }
    scanner.skip_whitespace();
    if scanner.pos != text.len() {
        return Err(scanner.error("trailing characters after the object"));
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, members: Members<'_>) -> Result<Map<String, Value>, String> {
        parse_object(text.as_bytes(), members)
    }

    #[test]
    fn parses_the_members_asked_for() {
        let text = r#" {"a": [1, {"x": "]}"}], "b" : "s\"}", "c": -1.5e3, "d": null} "#;
        let all = parse(text, Members::All).unwrap();
        assert_eq!(
            Value::Object(all),
            serde_json::from_str::<Value>(text).unwrap()
        );
        let only = parse(text, Members::Only(&["b", "z"])).unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(only["b"], "s\"}");
        let but = parse(text, Members::AllBut(&["a"])).unwrap();
        assert_eq!(but.keys().collect::<Vec<_>>(), ["b", "c", "d"]);
        assert!(parse("{}", Members::All).unwrap().is_empty());
    }

    #[test]
    fn deep_nesting_outside_the_members_asked_for_is_skipped() {
        let deep = format!(
            r#"{{"shape": [3], "attributes": {{"x": {}1{}}}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let parsed = parse(&deep, Members::AllBut(&["attributes"])).unwrap();
        assert_eq!(parsed["shape"], serde_json::json!([3]));
        let error = parse(&deep, Members::All).unwrap_err();
        assert!(
            error.contains("\"attributes\" is nested too deeply"),
            "{error}"
        );
    }

    #[test]
    fn every_damage_is_an_error() {
        for bad in [
            "",
            "   ",
            "[1, 2]",
            "\"text\"",
            "this is { not json",
            "{\"a\": 1",
            "{\"a\": [1, 2}",
            "{\"a\" 1}",
            "{a: 1}",
            "{\"a\": 1,}",
            "{\"a\": }",
            "{\"a\": 1} x",
            "{\"a\": \"unterminated}",
            "{\"a\": [1,,2]}",
        ] {
            assert!(parse(bad, Members::All).is_err(), "{bad:?} was accepted");
        }
        let error = parse_object(b"{\"a\": \"\xff\"}", Members::All).unwrap_err();
        assert!(
            error.contains("not UTF-8") && error.contains("0xff"),
            "{error}"
        );
    }

    #[test]
    fn files_are_named_in_errors() {
        let dir = std::env::temp_dir().join(format!("bioimage_py_json_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("zarr.json");
        assert!(read_object(&path, Members::All).unwrap().is_none());
        std::fs::write(&path, b"[]").unwrap();
        let error = read_object(&path, Members::All).unwrap_err();
        assert!(matches!(error, Error::Metadata { .. }));
        assert!(error.to_string().contains("zarr.json"), "{error}");
        let error = read_object(&dir, Members::All).unwrap_err();
        assert!(error.to_string().contains("folder"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
