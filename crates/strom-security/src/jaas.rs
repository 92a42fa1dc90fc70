//! Kafka's JAAS configuration lines, the form `sasl.jaas.config` takes:
//!
//! ```text
//! org.apache.kafka.common.security.plain.PlainLoginModule required
//!     username="admin" password="admin-secret" user_admin="admin-secret" user_alice="pw";
//! ```
//!
//! A broker reads its PLAIN users from the `user_NAME="password"` options, and the
//! `username`/`password` options are the credentials it uses itself as a client of other
//! brokers. Only one login module per line is supported, which is what Kafka allows in
//! `sasl.jaas.config`.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasConfig {
    pub login_module: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("sasl.jaas.config: {0}")]
pub struct InvalidJaas(String);

impl JaasConfig {
    pub fn parse(text: &str) -> Result<Self, InvalidJaas> {
        let mut tokens = Tokens { rest: text.trim() };
        let login_module = tokens
            .word()
            .ok_or_else(|| InvalidJaas("expected a login module class".into()))?;
        let flag = tokens
            .word()
            .ok_or_else(|| InvalidJaas(format!("{login_module}: expected a control flag")))?;
        if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
            return Err(InvalidJaas(format!(
                "{login_module}: {flag} is not a control flag (required, requisite, sufficient, optional)"
            )));
        }
        let mut options = BTreeMap::new();
        loop {
            tokens.skip_space();
            if tokens.rest.is_empty() {
                return Err(InvalidJaas("the login module must end with ';'".into()));
            }
            if let Some(after) = tokens.rest.strip_prefix(';') {
                if !after.trim().is_empty() {
                    return Err(InvalidJaas(
                        "only one login module is allowed in sasl.jaas.config".into(),
                    ));
                }
                break;
            }
            let key = tokens
                .word_until('=')
                .ok_or_else(|| InvalidJaas(format!("expected key=value at {:?}", tokens.rest)))?;
            tokens.rest = tokens
                .rest
                .trim_start()
                .strip_prefix('=')
                .ok_or_else(|| InvalidJaas(format!("{key}: expected '=' and a value")))?;
            let value = tokens.value()?;
            options.insert(key, value);
        }
        Ok(Self {
            login_module,
            flag,
            options,
        })
    }

    /// The PLAIN users a broker accepts: `user_NAME="password"` options.
    pub fn plain_users(&self) -> BTreeMap<String, String> {
        self.options
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
            .collect()
    }

    pub fn username(&self) -> Option<&str> {
        self.options.get("username").map(String::as_str)
    }

    pub fn password(&self) -> Option<&str> {
        self.options.get("password").map(String::as_str)
    }
}

struct Tokens<'a> {
    rest: &'a str,
}

impl Tokens<'_> {
    fn skip_space(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn word(&mut self) -> Option<String> {
        self.skip_space();
        let end = self
            .rest
            .find(|c: char| c.is_whitespace() || c == ';')
            .unwrap_or(self.rest.len());
        (end > 0).then(|| {
            let word = self.rest[..end].to_string();
            self.rest = &self.rest[end..];
            word
        })
    }

    fn word_until(&mut self, stop: char) -> Option<String> {
        self.skip_space();
        let end = self
            .rest
            .find(|c: char| c.is_whitespace() || c == stop || c == ';')
            .unwrap_or(self.rest.len());
        (end > 0).then(|| {
            let word = self.rest[..end].to_string();
            self.rest = &self.rest[end..];
            word
        })
    }

    /// A quoted value (`"..."` with `\"` and `\\` escapes) or a bare word.
    fn value(&mut self) -> Result<String, InvalidJaas> {
        self.skip_space();
        let Some(quoted) = self.rest.strip_prefix('"') else {
            return self
                .word()
                .ok_or_else(|| InvalidJaas("expected a value".into()));
        };
        let mut out = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, escaped)) => out.push(escaped),
                    None => break,
                },
                '"' => {
                    self.rest = &quoted[i + 1..];
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err(InvalidJaas("a quoted value is not closed".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kafkas_plain_broker_line() {
        let jaas = JaasConfig::parse(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" \
             user_alice=\"alice \\\"quoted\\\" pw\";",
        )
        .unwrap();
        assert_eq!(
            jaas.login_module,
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        );
        assert_eq!(jaas.username(), Some("admin"));
        assert_eq!(jaas.password(), Some("admin-secret"));
        let users = jaas.plain_users();
        assert_eq!(users["admin"], "admin-secret");
        assert_eq!(users["alice"], "alice \"quoted\" pw");
    }

    #[test]
    fn bare_values_and_newlines_are_fine() {
        let jaas =
            JaasConfig::parse("x.ScramLoginModule required\n  username=bob\n  password=pw ;")
                .unwrap();
        assert_eq!(jaas.username(), Some("bob"));
        assert_eq!(jaas.password(), Some("pw"));
    }

    #[test]
    fn malformed_lines_are_refused() {
        for bad in [
            "",
            "Module",
            "Module maybe a=\"b\";",
            "Module required a=\"b\"",
            "Module required a=\"b;",
            "Module required a;",
            "Module required a=\"b\"; Other required;",
        ] {
            assert!(JaasConfig::parse(bad).is_err(), "{bad:?}");
        }
    }
}
