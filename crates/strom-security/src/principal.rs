//! Who a connection is: Kafka's `KafkaPrincipal` (`User:alice`), and the mapping from a
//! client certificate's subject to a user name (`ssl.principal.mapping.rules`).

use std::fmt;

use regex::Regex;

/// A principal as ACLs name it: a type (always `User` for what Strom authenticates) and a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    pub principal_type: String,
    pub name: String,
}

impl KafkaPrincipal {
    /// The principal of a connection nobody authenticated (PLAINTEXT, or TLS without a client
    /// certificate), as Kafka names it.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    pub fn user(name: impl Into<String>) -> Self {
        Self {
            principal_type: "User".into(),
            name: name.into(),
        }
    }

    /// Parses `Type:name` (`User:alice`); the name may itself contain colons.
    pub fn parse(text: &str) -> Option<Self> {
        let (principal_type, name) = text.split_once(':')?;
        if principal_type.is_empty() {
            return None;
        }
        Some(Self {
            principal_type: principal_type.to_string(),
            name: name.to_string(),
        })
    }

    pub fn is_anonymous(&self) -> bool {
        self.principal_type == "User" && self.name == "ANONYMOUS"
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("ssl.principal.mapping.rules: {0}")]
pub struct InvalidRules(String);

/// `ssl.principal.mapping.rules`: a list of `RULE:pattern/replacement/[LU]` and `DEFAULT`,
/// tried in order against the certificate's distinguished name (RFC 2253 form, as Java's
/// `X500Principal.getName()` writes it). The first rule whose pattern matches the whole name
/// gives the user name; `DEFAULT` gives the distinguished name itself. No match is an error
/// (the connection is refused), as in Kafka.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl Default for PrincipalMapper {
    fn default() -> Self {
        Self {
            rules: vec![Rule::Default],
        }
    }
}

impl PrincipalMapper {
    pub fn parse(text: &str) -> Result<Self, InvalidRules> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (rule, after) = parse_rule(after)?;
                rules.push(rule);
                rest = after;
            } else {
                return Err(InvalidRules(format!("cannot read a rule at {rest:?}")));
            }
            rest = rest.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(Self { rules })
    }

    /// The user name for a distinguished name, or `None` when no rule matches.
    pub fn map(&self, distinguished_name: &str) -> Option<String> {
        self.rules.iter().find_map(|rule| match rule {
            Rule::Default => Some(distinguished_name.to_string()),
            Rule::Replace {
                pattern,
                replacement,
                case,
            } => {
                let captures = pattern.captures(distinguished_name)?;
                let mut name = String::new();
                captures.expand(replacement, &mut name);
                Some(match case {
                    Case::Keep => name,
                    Case::Lower => name.to_lowercase(),
                    Case::Upper => name.to_uppercase(),
                })
            }
        })
    }
}

/// One `pattern/replacement/[LU]` after `RULE:`; `\/` escapes a slash inside either part.
fn parse_rule(text: &str) -> Result<(Rule, &str), InvalidRules> {
    let (pattern, rest) = take_until_slash(text)
        .ok_or_else(|| InvalidRules(format!("RULE:{text}: expected pattern/replacement/")))?;
    let (replacement, rest) = take_until_slash(rest)
        .ok_or_else(|| InvalidRules(format!("RULE:{text}: expected pattern/replacement/")))?;
    let (case, rest) = match rest.chars().next() {
        Some('L') => (Case::Lower, &rest[1..]),
        Some('U') => (Case::Upper, &rest[1..]),
        _ => (Case::Keep, rest),
    };
    // Java's Matcher.matches() needs the whole name to match.
    let pattern = Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| InvalidRules(format!("RULE:{text}: {e}")))?;
    // Java writes groups as $1; the regex crate reads ${1} unambiguously.
    let replacement = java_replacement(&replacement);
    Ok((
        Rule::Replace {
            pattern,
            replacement,
            case,
        },
        rest,
    ))
}

fn take_until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if text[i + 1..].starts_with('/') => {
                out.push('/');
                chars.next();
            }
            '/' => return Some((out, &text[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

fn java_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut digits = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                digits.push(d);
                chars.next();
            }
            out.push_str(&format!("${{{digits}}}"));
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_print_and_parse_like_kafka() {
        assert_eq!(KafkaPrincipal::user("alice").to_string(), "User:alice");
        assert_eq!(
            KafkaPrincipal::parse("User:CN=a:b"),
            Some(KafkaPrincipal::user("CN=a:b"))
        );
        assert_eq!(KafkaPrincipal::parse("alice"), None);
        assert!(KafkaPrincipal::anonymous().is_anonymous());
    }

    #[test]
    fn the_default_rule_keeps_the_distinguished_name() {
        let m = PrincipalMapper::parse("DEFAULT").unwrap();
        assert_eq!(
            m.map("CN=client,O=Acme").as_deref(),
            Some("CN=client,O=Acme")
        );
    }

    #[test]
    fn rules_apply_in_order_with_groups_and_case() {
        // The examples of Kafka's documentation for ssl.principal.mapping.rules.
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("serviceuser")
        );
        assert_eq!(
            m.map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("adminuser@admin")
        );
        assert_eq!(m.map("CN=Bob.Smith,O=x").as_deref(), Some("bob.smith"));
        assert_eq!(m.map("O=nobody").as_deref(), Some("O=nobody"));
    }

    #[test]
    fn no_matching_rule_is_none_and_escaped_slashes_work() {
        let m = PrincipalMapper::parse("RULE:^CN=(.*)\\/x$/$1/U").unwrap();
        assert_eq!(m.map("CN=a/x").as_deref(), Some("A"));
        assert_eq!(m.map("CN=a"), None);
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(PrincipalMapper::parse("RULE:^(unclosed/$1/").is_err());
        assert!(PrincipalMapper::parse("RULE:nopattern").is_err());
        assert!(PrincipalMapper::parse("SOMETHING").is_err());
    }
}
