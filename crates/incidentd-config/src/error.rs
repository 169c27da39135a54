//! Config errors: every problem carries the 1-based line it was found on,
//! and TOML/serde errors are translated into `unknown key "x" in [[teams]]`
//! style messages by locating their span in the parsed document.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Anything wrong with a config: it cannot be read, or it is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The path given to [`crate::OrgConfig::load`].
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a valid config. Displays one problem per line,
    /// ordered by line (problems without a line first).
    #[error("{}", ProblemLines(.problems))]
    Invalid {
        /// All problems found (at least one).
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems of a [`ConfigError::Invalid`] error (empty for `Read`).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems } => problems,
        }
    }
}

/// One thing wrong with a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line in the config text, when the problem has a location.
    pub line: Option<usize>,
    /// What is wrong, naming the key and its section.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "config line {line}: {}", self.message),
            None => write!(f, "config: {}", self.message),
        }
    }
}

struct ProblemLines<'a>(&'a [Problem]);

impl fmt::Display for ProblemLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Collects problems against one config text.
pub(crate) struct Problems<'t> {
    text: &'t str,
    list: Vec<Problem>,
}

impl<'t> Problems<'t> {
    pub(crate) fn new(text: &'t str) -> Self {
        Problems { text, list: Vec::new() }
    }

    /// 1-based line of a byte offset.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() + 1
    }

    /// A problem at a span of the text.
    pub(crate) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let line = Some(self.line_of(span.start));
        self.list.push(Problem {
            line,
            message: one_line(message.into()),
        });
    }

    /// A problem located at a spanned value.
    pub(crate) fn at_value<T>(&mut self, value: &Spanned<T>, message: impl Into<String>) {
        self.at(value.span(), message);
    }

    /// A problem without a location.
    pub(crate) fn global(&mut self, message: impl Into<String>) {
        self.list.push(Problem {
            line: None,
            message: one_line(message.into()),
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn into_error(self) -> ConfigError {
        let mut problems = self.list;
        problems.sort_by_key(|p| p.line);
        problems.dedup();
        ConfigError::Invalid { problems }
    }
}

/// A problem is one line of the error's display: line breaks inside a
/// message (a quoted key, a section named by one) are escaped.
fn one_line(message: String) -> String {
    if message.contains(['\n', '\r']) {
        message.replace('\r', "\\r").replace('\n', "\\n")
    } else {
        message
    }
}

/// Where a span sits in the document: the section it belongs to, and the
/// key when the span is a key or a key's value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) section: String,
    pub(crate) key: Option<String>,
}

#[derive(Clone)]
enum Seg {
    Key(String),
    Index,
}

/// Renders a path the way a TOML header names it: `[policy.severity.SEV2]`,
/// `[[teams]]`, `[teams.policy]`, `[[policy.escalations]]`; empty = top level.
fn render(path: &[Seg]) -> String {
    let keys: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index => None,
        })
        .collect();
    if keys.is_empty() {
        return "the top level".to_string();
    }
    match path.last() {
        Some(Seg::Index) => format!("[[{}]]", keys.join(".")),
        _ => format!("[{}]", keys.join(".")),
    }
}

/// Finds where `span` is in the document.
pub(crate) fn locate(root: &DeTable<'_>, span: &Range<usize>) -> Option<Location> {
    let mut path = Vec::new();
    locate_in_table(root, &mut path, span)
}

fn locate_in_table(table: &DeTable<'_>, path: &mut Vec<Seg>, span: &Range<usize>) -> Option<Location> {
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if key.span() == *span {
            return Some(Location {
                section: render(path),
                key: Some(name),
            });
        }
        if value.span() == *span {
            if value.get_ref().is_table() {
                path.push(Seg::Key(name));
                return Some(Location {
                    section: render(path),
                    key: None,
                });
            }
            return Some(Location {
                section: render(path),
                key: Some(name),
            });
        }
        path.push(Seg::Key(name.clone()));
        if let Some(found) = locate_in_value(value, path, span, &name) {
            return Some(found);
        }
        path.pop();
    }
    None
}

fn locate_in_value(
    value: &Spanned<DeValue<'_>>,
    path: &mut Vec<Seg>,
    span: &Range<usize>,
    name: &str,
) -> Option<Location> {
    match value.get_ref() {
        DeValue::Table(table) => locate_in_table(table, path, span),
        DeValue::Array(items) => {
            for item in items.iter() {
                if item.span() == *span {
                    if item.get_ref().is_table() {
                        path.push(Seg::Index);
                        return Some(Location {
                            section: render(path),
                            key: None,
                        });
                    }
                    // An element of a plain array: report the array's key.
                    let parent = &path[..path.len().saturating_sub(1)];
                    return Some(Location {
                        section: render(parent),
                        key: Some(name.to_string()),
                    });
                }
                path.push(Seg::Index);
                if let Some(found) = locate_in_value(item, path, span, name) {
                    return Some(found);
                }
                path.pop();
            }
            None
        }
        _ => None,
    }
}

/// Turns the first TOML/serde error into a problem with a readable message.
pub(crate) fn describe_de_error(problems: &mut Problems<'_>, root: Option<&DeTable<'_>>, err: &toml::de::Error) {
    let message = err.message().trim().to_string();
    let span = err.span();
    let location = match (root, &span) {
        (Some(root), Some(span)) => locate(root, span),
        _ => None,
    };
    let section = location.as_ref().map(|l| l.section.clone());
    let in_section = section.as_deref().map(|s| format!(" in {s}")).unwrap_or_default();

    let text = if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let expected = expected.trim_start_matches(", ").replace('`', "");
        let hint = if expected.is_empty() || expected == "there are no fields" {
            String::new()
        } else {
            format!(" ({expected})")
        };
        format!("unknown key {name:?}{in_section}{hint}")
    } else if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or(rest);
        format!("missing key {name:?}{in_section}")
    } else {
        match location.as_ref().and_then(|l| l.key.as_deref()) {
            Some(key) => format!("key {key:?}{in_section}: {message}"),
            None if section.is_some() => format!("{}: {message}", in_section.trim_start_matches(" in ")),
            None => message,
        }
    };
    match span {
        Some(span) => problems.at(span, text),
        None => problems.global(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_keys_and_tables() {
        let text = "a = 1\n[org]\nname = 'x'\n[[teams]]\nid = 'p'\n[teams.policy]\nreview_due = '1h'\n\
                    [[teams]]\nid = 'q'\nchat = ['c', 'd']\n[policy.severity.SEV2]\nupdate_every = '5m'\n";
        let root = DeTable::parse(text).unwrap();
        let root = root.get_ref();
        let find = |needle: &str| {
            let start = text.find(needle).unwrap();
            locate(root, &(start..start + needle.len()))
        };
        let loc = |section: &str, key: Option<&str>| {
            Some(Location {
                section: section.to_string(),
                key: key.map(str::to_string),
            })
        };
        assert_eq!(find("a"), loc("the top level", Some("a")));
        assert_eq!(find("name"), loc("[org]", Some("name")));
        assert_eq!(find("'x'"), loc("[org]", Some("name")));
        assert_eq!(find("review_due"), loc("[teams.policy]", Some("review_due")));
        assert_eq!(find("'q'"), loc("[[teams]]", Some("id")));
        assert_eq!(find("'d'"), loc("[[teams]]", Some("chat")));
        assert_eq!(
            find("update_every"),
            loc("[policy.severity.SEV2]", Some("update_every"))
        );
    }
}
