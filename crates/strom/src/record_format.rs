//! How `strom consume` prints a record: a kcat-style `--format` string or one JSON object per
//! line. Pure: records in, bytes out, so every placeholder is tested without a broker.
//!
//! Placeholders (kcat's spelling): `%t` topic, `%p` partition, `%o` offset, `%T` timestamp
//! (ms since the epoch), `%k` key, `%s` value, `%h` headers as `k=v,k2=v2`, `%K` key length,
//! `%S` value length (-1 for null), `%%` a percent sign. Escapes: `\n`, `\r`, `\t`, `\\`.
//! Like kcat, nothing is added: end the format with `\n` to get one record per line. Keys,
//! values and header values are written as raw bytes; null ones print as nothing.

use std::borrow::Cow;
use std::io::Write;

use serde::Serialize;
use strom_client::{ConsumerRecord, TimestampType};

/// One piece of a parsed format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Value,
    Headers,
    KeyLength,
    ValueLength,
}

/// A parsed `--format` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFormat {
    tokens: Vec<Token>,
}

impl RecordFormat {
    /// Parses a format; an unknown placeholder or escape, or a trailing lone `%` or `\`, is
    /// an error naming it.
    pub fn parse(format: &str) -> Result<RecordFormat, String> {
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut chars = format.chars();
        while let Some(c) = chars.next() {
            match c {
                '%' => {
                    let token = match chars.next() {
                        Some('%') => {
                            literal.push(b'%');
                            continue;
                        }
                        Some('t') => Token::Topic,
                        Some('p') => Token::Partition,
                        Some('o') => Token::Offset,
                        Some('T') => Token::Timestamp,
                        Some('k') => Token::Key,
                        Some('s') => Token::Value,
                        Some('h') => Token::Headers,
                        Some('K') => Token::KeyLength,
                        Some('S') => Token::ValueLength,
                        Some(other) => {
                            return Err(format!(
                                "unknown placeholder '%{other}' in --format (known: %t %p %o %T %k %s %h %K %S %%)"
                            ));
                        }
                        None => return Err("--format ends with a lone '%'".to_owned()),
                    };
                    if !literal.is_empty() {
                        tokens.push(Token::Literal(std::mem::take(&mut literal)));
                    }
                    tokens.push(token);
                }
                '\\' => match chars.next() {
                    Some('n') => literal.push(b'\n'),
                    Some('r') => literal.push(b'\r'),
                    Some('t') => literal.push(b'\t'),
                    Some('\\') => literal.push(b'\\'),
                    Some(other) => {
                        return Err(format!(
                            "unknown escape '\\{other}' in --format (known: \\n \\r \\t \\\\)"
                        ));
                    }
                    None => return Err("--format ends with a lone '\\'".to_owned()),
                },
                other => {
                    let mut utf8 = [0; 4];
                    literal.extend_from_slice(other.encode_utf8(&mut utf8).as_bytes());
                }
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(RecordFormat { tokens })
    }

    /// Appends `record` rendered with this format to `out`.
    pub fn render(&self, record: &ConsumerRecord, out: &mut Vec<u8>) {
        for token in &self.tokens {
            // Writing into a Vec cannot fail.
            let _ = match token {
                Token::Literal(bytes) => out.write_all(bytes),
                Token::Topic => out.write_all(record.topic.as_bytes()),
                Token::Partition => write!(out, "{}", record.partition),
                Token::Offset => write!(out, "{}", record.offset),
                Token::Timestamp => write!(out, "{}", record.timestamp),
                Token::Key => out.write_all(record.key.as_deref().unwrap_or_default()),
                Token::Value => out.write_all(record.value.as_deref().unwrap_or_default()),
                Token::KeyLength => write!(out, "{}", length(record.key.as_deref())),
                Token::ValueLength => write!(out, "{}", length(record.value.as_deref())),
                Token::Headers => {
                    for (i, header) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        out.extend_from_slice(header.key.as_bytes());
                        if let Some(value) = &header.value {
                            out.push(b'=');
                            out.extend_from_slice(value);
                        }
                    }
                    Ok(())
                }
            };
        }
    }
}

fn length(bytes: Option<&[u8]>) -> i64 {
    bytes.map_or(-1, |b| i64::try_from(b.len()).unwrap_or(i64::MAX))
}

/// A record as `--json` prints it. Keys, values and header values are UTF-8 text (invalid
/// bytes replaced by U+FFFD); null stays null.
#[derive(Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    timestamp_type: &'static str,
    key: Option<Cow<'a, str>>,
    value: Option<Cow<'a, str>>,
    headers: Vec<JsonHeader<'a>>,
}

#[derive(Serialize)]
struct JsonHeader<'a> {
    key: &'a str,
    value: Option<Cow<'a, str>>,
}

fn text(bytes: &Option<bytes::Bytes>) -> Option<Cow<'_, str>> {
    bytes.as_deref().map(String::from_utf8_lossy)
}

/// Appends `record` as one line of JSON to `out`.
pub fn render_json(record: &ConsumerRecord, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let json = JsonRecord {
        topic: &record.topic,
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        timestamp_type: match record.timestamp_type {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        },
        key: text(&record.key),
        value: text(&record.value),
        headers: record
            .headers
            .iter()
            .map(|h| JsonHeader {
                key: &h.key,
                value: text(&h.value),
            })
            .collect(),
    };
    serde_json::to_writer(&mut *out, &json)?;
    out.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::Arc;
    use strom_client::Header;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: Arc::from("events"),
            partition: 2,
            offset: 41,
            timestamp: 1_700_000_000_000,
            timestamp_type: TimestampType::CreateTime,
            key: Some(Bytes::from_static(b"user-1")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![
                Header::new("trace", Some("abc")),
                Header::new("flag", None::<Bytes>),
            ],
            leader_epoch: None,
        }
    }

    fn render(format: &str, record: &ConsumerRecord) -> String {
        let mut out = Vec::new();
        RecordFormat::parse(format)
            .unwrap()
            .render(record, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_placeholder_renders_its_field() {
        assert_eq!(
            render("%t/%p@%o %T %k=%s [%h] %K %S 100%%\\n", &record()),
            "events/2@41 1700000000000 user-1=hello [trace=abc,flag] 6 5 100%\n"
        );
    }

    #[test]
    fn null_key_and_value_print_nothing_and_length_minus_one() {
        let mut r = record();
        r.key = None;
        r.value = None;
        r.headers.clear();
        assert_eq!(render("<%k><%s><%h> %K %S", &r), "<><><> -1 -1");
    }

    #[test]
    fn escapes_become_control_characters() {
        assert_eq!(render("a\\tb\\r\\n\\\\", &record()), "a\tb\r\n\\");
    }

    #[test]
    fn unknown_placeholders_and_dangling_escapes_are_refused() {
        assert!(RecordFormat::parse("%x").unwrap_err().contains("%x"));
        assert!(RecordFormat::parse("abc%").is_err());
        assert!(RecordFormat::parse("\\q").unwrap_err().contains("\\q"));
        assert!(RecordFormat::parse("abc\\").is_err());
    }

    #[test]
    fn literal_text_keeps_non_ascii_characters() {
        assert_eq!(render("→ %s ✓", &record()), "→ hello ✓");
    }

    #[test]
    fn json_lines_carry_every_field_with_nulls_kept() {
        let mut r = record();
        r.key = None;
        let mut out = Vec::new();
        render_json(&r, &mut out).unwrap();
        assert_eq!(out.last(), Some(&b'\n'));
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["topic"], "events");
        assert_eq!(value["partition"], 2);
        assert_eq!(value["offset"], 41);
        assert_eq!(value["timestamp"], 1_700_000_000_000_i64);
        assert_eq!(value["timestamp_type"], "CreateTime");
        assert!(value["key"].is_null());
        assert_eq!(value["value"], "hello");
        assert_eq!(value["headers"][0]["key"], "trace");
        assert_eq!(value["headers"][0]["value"], "abc");
        assert!(value["headers"][1]["value"].is_null());
    }
}
