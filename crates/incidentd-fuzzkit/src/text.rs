//! Line-level mutants of real TOML files (the org config, scenario files):
//! lines dropped, duplicated, swapped or inserted; values swapped between
//! keys or replaced; keys renamed; the text cut short.

use crate::nasty_string;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use std::fmt;

/// Values that are wrong somewhere: types, enums, ids, durations, syntax.
const VALUES: &[&str] = &[
    "\"\"",
    "\"SEV9\"",
    "\"sev1\"",
    "0",
    "-1",
    "9223372036854775808",
    "1e999",
    "nan",
    "true",
    "[]",
    "[[]]",
    "{}",
    "{ a = 1 }",
    "[\"x\", 1]",
    "\"999999999999999999999d\"",
    "\"18446744073709551615ms\"",
    "\"30m1h\"",
    "\"1h30m5s99ms\"",
    "'''",
    "\"\"\"",
    "\"unterminated",
    "1979-05-27T07:32:00Z",
    "\"Bad Id\"",
    "\"*\"",
    "\"a\\u0000b\"",
    "\"\\uD800\"",
    "\"ÜNICODE ⚠ 👩‍👩‍👧\"",
    "",
];

/// Lines to insert: headers (duplicate, unknown), keys (duplicate, unknown), junk.
const LINES: &[&str] = &[
    "[org]",
    "[[teams]]",
    "[[people]]",
    "[[steps]]",
    "[policy]",
    "[policy.severity.SEV9]",
    "[teams.policy]",
    "[contacts]",
    "id = \"platform\"",
    "id = \"x\"",
    "x = 1",
    "= 1",
    "[",
    "[[",
    "a.b.c = 1",
    "\"quoted key\" = \"v\"",
];

/// One change at a line (indices are taken modulo the current count).
#[derive(Debug, Clone)]
pub enum LineEdit {
    Drop(usize),
    Duplicate(usize),
    Swap(usize, usize),
    /// The values of two `key = value` lines change places.
    SwapValues(usize, usize),
    /// A `key = value` line's value becomes this text.
    Value(usize, String),
    /// A `key = value` line's key becomes this name.
    Rename(usize, String),
    Insert(usize, String),
    /// The text ends before this character.
    Cut(usize),
}

/// A text to feed a parser, with how it was made (shown when a case fails).
#[derive(Clone)]
pub struct Case {
    pub how: String,
    pub text: String,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\ntext:\n{}", self.how, self.text)
    }
}

/// The `key = value` lines of a text: (line index, byte offset of `=`).
pub fn assignments(lines: &[String]) -> Vec<(usize, usize)> {
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let eq = l.find('=')?;
            let key = l[..eq].trim();
            let bare = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            bare.then_some((i, eq))
        })
        .collect()
}

/// The `[section]` or `[[section]]` header above line `index` ("" at the top).
pub fn section_of(lines: &[String], index: usize) -> &str {
    lines[..index.min(lines.len())]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim())
        .unwrap_or("")
}

fn value_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(VALUES).prop_map(str::to_string),
        // JSON string escapes are TOML basic-string escapes.
        2 => nasty_string().prop_map(|s| serde_json::Value::String(s).to_string()),
        1 => "\\PC{0,12}",
    ]
}

fn key_name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_]{1,12}", "[A-Za-z0-9_-]{1,20}"]
}

fn line_edit() -> impl Strategy<Value = LineEdit> {
    let i = any::<usize>;
    prop_oneof![
        3 => i().prop_map(LineEdit::Drop),
        1 => i().prop_map(LineEdit::Duplicate),
        1 => (i(), i()).prop_map(|(a, b)| LineEdit::Swap(a, b)),
        3 => (i(), i()).prop_map(|(a, b)| LineEdit::SwapValues(a, b)),
        3 => (i(), value_text()).prop_map(|(a, v)| LineEdit::Value(a, v)),
        2 => (i(), key_name()).prop_map(|(a, k)| LineEdit::Rename(a, k)),
        1 => (i(), prop_oneof![3 => select(LINES).prop_map(str::to_string), 1 => "\\PC{0,30}"])
            .prop_map(|(a, l)| LineEdit::Insert(a, l)),
        1 => i().prop_map(LineEdit::Cut),
    ]
}

/// Mutants of `seeds` with one to three line edits.
pub fn mutants<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> impl Strategy<Value = Case> {
    let seeds: Vec<String> = seeds.into_iter().map(Into::into).collect();
    assert!(!seeds.is_empty(), "mutants need at least one seed");
    let n = seeds.len();
    (0..n, vec(line_edit(), 1..=3)).prop_map(move |(seed, edits)| mutate(&seeds[seed], &edits))
}

/// Applies `edits` to `seed`, in order.
pub fn mutate(seed: &str, edits: &[LineEdit]) -> Case {
    let mut lines: Vec<String> = seed.lines().map(str::to_string).collect();
    let mut how = String::new();
    for e in edits {
        how.push_str(&apply(&mut lines, e));
        how.push('\n');
    }
    let mut text = lines.join("\n");
    text.push('\n');
    Case { how, text }
}

/// Applies one edit, saying what it did (by 1-based line).
fn apply(lines: &mut Vec<String>, e: &LineEdit) -> String {
    let n = lines.len();
    if n == 0 {
        return "no lines left".to_string();
    }
    let keyed = assignments(lines);
    let pick = |i: &usize| keyed.get(i % keyed.len().max(1)).copied();
    match e {
        LineEdit::Drop(i) => {
            let at = i % n;
            lines.remove(at);
            format!("line {} dropped", at + 1)
        }
        LineEdit::Duplicate(i) => {
            let at = i % n;
            lines.insert(at, lines[at].clone());
            format!("line {} duplicated", at + 1)
        }
        LineEdit::Swap(a, b) => {
            let (a, b) = (a % n, b % n);
            lines.swap(a, b);
            format!("lines {} and {} swapped", a + 1, b + 1)
        }
        LineEdit::SwapValues(a, b) => match (pick(a), pick(b)) {
            (Some((la, ea)), Some((lb, eb))) => {
                let va = lines[la][ea + 1..].to_string();
                let vb = lines[lb][eb + 1..].to_string();
                lines[la].replace_range(ea + 1.., &vb);
                lines[lb].replace_range(eb + 1.., &va);
                format!("values of lines {} and {} swapped", la + 1, lb + 1)
            }
            _ => "no values to swap".to_string(),
        },
        LineEdit::Value(a, v) => match pick(a) {
            Some((l, eq)) => {
                lines[l].replace_range(eq + 1.., &format!(" {v}"));
                format!("line {} value replaced", l + 1)
            }
            None => "no value to replace".to_string(),
        },
        LineEdit::Rename(a, k) => match pick(a) {
            Some((l, eq)) => {
                lines[l].replace_range(..eq, &format!("{k} "));
                format!("line {} key renamed to {k:?}", l + 1)
            }
            None => "no key to rename".to_string(),
        },
        LineEdit::Insert(i, text) => {
            let at = i % (n + 1);
            lines.insert(at, text.clone());
            format!("line {} inserted", at + 1)
        }
        LineEdit::Cut(at) => {
            let mut text = lines.join("\n");
            let cut = text
                .char_indices()
                .nth(at % text.chars().count().max(1))
                .map_or(0, |(b, _)| b);
            text.truncate(cut);
            *lines = text.split('\n').map(str::to_string).collect();
            format!("cut short in line {}", lines.len())
        }
    }
}

/// Every text with one `key = value` line's key renamed to an unknown one
/// (suffix `_zz`): (text, 1-based line, section of that line).
pub fn renamed_keys(seed: &str) -> Vec<(String, usize, String)> {
    let lines: Vec<String> = seed.lines().map(str::to_string).collect();
    assignments(&lines)
        .into_iter()
        .map(|(l, eq)| {
            let mut changed = lines.clone();
            let key = changed[l][..eq].trim_end().to_string();
            changed[l].replace_range(..key.len(), &format!("{key}_zz"));
            (changed.join("\n"), l + 1, section_of(&lines, l).to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "# c\n[org]\nname = \"A\"  # x\n[[teams]]\nid = \"p\"\nchat = [\"c\"]\n";

    #[test]
    fn finds_keys_and_sections() {
        let lines: Vec<String> = SEED.lines().map(str::to_string).collect();
        assert_eq!(assignments(&lines), [(2, 5), (4, 3), (5, 5)]);
        assert_eq!(section_of(&lines, 2), "[org]");
        assert_eq!(section_of(&lines, 5), "[[teams]]");
        assert_eq!(section_of(&lines, 0), "");
        let renamed = renamed_keys(SEED);
        assert_eq!(renamed[1].0.lines().nth(4), Some("id_zz = \"p\""));
        assert_eq!((renamed[1].1, renamed[1].2.as_str()), (5, "[[teams]]"));
    }

    #[test]
    fn edits_do_what_they_say() {
        let c = mutate(SEED, &[LineEdit::SwapValues(0, 1)]);
        assert!(
            c.text.contains("name = \"p\"\n") && c.text.contains("id = \"A\"  # x\n"),
            "{c:?}"
        );
        let c = mutate(SEED, &[LineEdit::Rename(0, "nom".into())]);
        assert!(c.text.contains("nom = \"A\""), "{c:?}");
        let c = mutate(SEED, &[LineEdit::Value(0, "7".into())]);
        assert!(c.text.contains("name = 7\n"), "{c:?}");
    }
}
