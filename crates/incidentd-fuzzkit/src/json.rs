//! JSON bodies for the webhook parsers: arbitrary bytes, arbitrary values, and
//! structure-aware mutants of real payloads.
//!
//! A mutant is a seed payload with one to four [`Edit`]s, each at a spot
//! (a JSON pointer) of the value as the previous edits left it, then
//! serialised and perhaps damaged as bytes ([`Damage`]). What a `Value`
//! cannot hold (duplicate keys, `1e400`, lone surrogates, invalid UTF-8,
//! nesting past serde_json's limit) goes in as a marker string that is
//! swapped for the raw text after serialisation.

use crate::nasty_string;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Raw value texts a `Value` cannot carry.
const TOKENS: &[&[u8]] = &[
    b"1e400",
    b"-1e400",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"123456789012345678901234567890.5e-999",
    b"-0",
    b"\"\\ud800\"",
    b"\"\\udc00\\ud800\"",
    b"\"\\u0000\"",
    b"\"\xff\xfe\"",
    b"\"\xc3\"",
    b"\"\xed\xa0\x80\"",
    b"\"\\x\"",
    b"tru",
    b"NaN",
];

/// One structural change at a spot of the payload.
#[derive(Debug, Clone)]
pub enum Edit {
    /// The field or element goes away (the root becomes `null`).
    Delete,
    /// Another value, often of another type (a number where a string was).
    Replace(Value),
    /// Raw text in place of the value (see [`TOKENS`]; deep nesting).
    Token(Vec<u8>),
    /// The field gets another name.
    Rename(String),
    /// A new field in the object at the spot (or in the one holding it).
    Insert(String, Value),
    /// The field appears twice: an earlier duplicate holding this value.
    Duplicate(Value),
    /// The array element, that many more times.
    Repeat(usize),
    /// Wrapped in that many arrays (or objects, when the flag is set).
    Nest(usize, bool),
}

/// Damage to the serialised bytes.
#[derive(Debug, Clone)]
pub enum Damage {
    None,
    Truncate(Index),
    Splice(Index, Vec<u8>),
    Flip(Index, u8),
}

/// A body to feed a parser, with how it was made (shown when a case fails).
#[derive(Clone)]
pub struct Case {
    pub how: String,
    pub body: Vec<u8>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\nbody: {}", self.how, String::from_utf8_lossy(&self.body))
    }
}

/// Arbitrary bytes: raw, and from JSON's alphabet.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    const ALPHABET: &[u8] = b"{}[]\":,.0123456789eE+-truefalsn \\/u\xff\xc3";
    prop_oneof![vec(any::<u8>(), 0..512), vec(select(ALPHABET), 0..256),]
}

/// Object keys: mostly the parser's own field names.
fn key(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(keys).prop_map(str::to_string),
        1 => nasty_string(),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::Array(Vec::new())),
        Just(Value::Object(Map::new())),
    ]
}

/// Arbitrary JSON values whose objects mostly use `keys`.
pub fn value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![3 => scalar(), 2 => nasty_string().prop_map(Value::String)];
    leaf.prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            vec((key(keys), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => select(TOKENS).prop_map(<[u8]>::to_vec),
        1 => (100usize..=3000).prop_map(|n| [b"[".repeat(n), b"]".repeat(n)].concat()),
        1 => vec(any::<u8>(), 0..16).prop_map(|b| [&b"\""[..], &b, b"\""].concat()),
    ]
}

fn edit(keys: &'static [&'static str]) -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => Just(Edit::Delete),
        3 => scalar().prop_map(Edit::Replace),
        3 => nasty_string().prop_map(|s| Edit::Replace(Value::String(s))),
        1 => value(keys).prop_map(Edit::Replace),
        2 => token().prop_map(Edit::Token),
        2 => key(keys).prop_map(Edit::Rename),
        2 => (key(keys), value(keys)).prop_map(|(k, v)| Edit::Insert(k, v)),
        2 => scalar().prop_map(Edit::Duplicate),
        2 => prop_oneof![4 => 1usize..=3, 1 => 990usize..=1010].prop_map(Edit::Repeat),
        1 => (1usize..=40, any::<bool>()).prop_map(|(n, o)| Edit::Nest(n, o)),
    ]
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        6 => Just(Damage::None),
        1 => any::<Index>().prop_map(Damage::Truncate),
        1 => (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Damage::Splice(i, b)),
        1 => (any::<Index>(), 1u8..).prop_map(|(i, x)| Damage::Flip(i, x)),
    ]
}

/// Structure-aware mutants of `seeds` (real payloads); `keys` are the
/// parser's field names, used for inserted and renamed fields.
pub fn mutants(seeds: Vec<Value>, keys: &'static [&'static str]) -> impl Strategy<Value = Case> {
    assert!(!seeds.is_empty(), "mutants need at least one seed");
    let n = seeds.len();
    (0..n, vec((any::<Index>(), edit(keys)), 1..=4), damage())
        .prop_map(move |(seed, edits, damage)| mutate(&seeds[seed], &edits, &damage))
}

/// Applies `edits` then `damage` to `seed`.
pub fn mutate(seed: &Value, edits: &[(Index, Edit)], damage: &Damage) -> Case {
    let mut v = seed.clone();
    let mut subs = Vec::new();
    let mut how = String::new();
    for (at, e) in edits {
        let all = spots(&v);
        let spot = at.get(&all);
        how.push_str(&format!("at {spot:?}: {}\n", short(e)));
        apply(&mut v, spot, e, &mut subs);
    }
    let mut body = render(&v, &subs);
    match damage {
        Damage::None => {}
        Damage::Truncate(i) => body.truncate(i.index(body.len() + 1)),
        Damage::Splice(i, b) => {
            let at = i.index(body.len() + 1);
            body.splice(at..at, b.iter().copied());
        }
        Damage::Flip(i, x) => {
            if !body.is_empty() {
                let at = i.index(body.len());
                body[at] ^= x;
            }
        }
    }
    how.push_str(&format!("then {damage:?}"));
    Case { how, body }
}

/// `seed` with one edit at `spot` (a JSON pointer), serialised: for named
/// cases and regression tests.
pub fn edited(seed: &Value, spot: &str, edit: &Edit) -> Vec<u8> {
    let mut v = seed.clone();
    let mut subs = Vec::new();
    apply(&mut v, spot, edit, &mut subs);
    render(&v, &subs)
}

/// Serialises `v`, markers swapped for their raw text.
fn render(v: &Value, subs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut body = serde_json::to_vec(v).unwrap_or_default();
    for (marker, raw) in subs {
        body = replace_all(&body, marker.as_bytes(), raw);
    }
    body
}

/// An edit's description, long strings shortened.
fn short(e: &Edit) -> String {
    let text = format!("{e:?}");
    if text.len() <= 200 {
        return text;
    }
    let cut: String = text.chars().take(200).collect();
    format!("{cut}… ({} bytes)", text.len())
}

/// Every spot of a value as a JSON pointer, the root (`""`) last.
pub fn spots(v: &Value) -> Vec<String> {
    fn walk(v: &Value, at: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    walk(x, &format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, &format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
        out.push(at.to_string());
    }
    let mut out = Vec::new();
    walk(v, "", &mut out);
    out
}

/// A string unique to this payload, swapped for raw text after serialisation.
fn marker(subs: &mut Vec<(String, Vec<u8>)>, raw: Vec<u8>) -> String {
    let m = format!("\u{1}fz{}\u{1}", subs.len());
    subs.push((Value::String(m.clone()).to_string(), raw));
    m
}

fn apply(v: &mut Value, spot: &str, edit: &Edit, subs: &mut Vec<(String, Vec<u8>)>) {
    let (parent, last) = match spot.rfind('/') {
        Some(i) => (&spot[..i], Some(spot[i + 1..].replace("~1", "/").replace("~0", "~"))),
        None => ("", None),
    };
    let index = |a: &Vec<Value>| {
        last.as_deref()
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|i| *i < a.len())
    };
    match edit {
        Edit::Delete => match (v.pointer_mut(parent), &last) {
            (Some(Value::Object(m)), Some(k)) => {
                m.remove(k);
            }
            (Some(Value::Array(a)), _) => {
                if let Some(i) = index(a) {
                    a.remove(i);
                }
            }
            _ if spot.is_empty() => *v = Value::Null,
            _ => {}
        },
        Edit::Replace(x) => {
            if let Some(t) = v.pointer_mut(spot) {
                *t = x.clone();
            }
        }
        Edit::Token(raw) => {
            let m = marker(subs, raw.clone());
            if let Some(t) = v.pointer_mut(spot) {
                *t = Value::String(m);
            }
        }
        Edit::Rename(new) => {
            if let (Some(Value::Object(m)), Some(k)) = (v.pointer_mut(parent), &last)
                && let Some(x) = m.remove(k)
            {
                m.insert(new.clone(), x);
            }
        }
        Edit::Insert(k, x) => {
            let target = match v.pointer_mut(spot) {
                Some(Value::Object(_)) => spot,
                _ => parent,
            };
            if let Some(Value::Object(m)) = v.pointer_mut(target) {
                m.insert(k.clone(), x.clone());
            }
        }
        Edit::Duplicate(x) => {
            if let (Some(Value::Object(m)), Some(k)) = (v.pointer_mut(parent), &last) {
                let name = marker(subs, Value::String(k.clone()).to_string().into_bytes());
                m.insert(name, x.clone());
            }
        }
        Edit::Repeat(n) => {
            if let Some(Value::Array(a)) = v.pointer_mut(parent)
                && let Some(i) = index(a)
            {
                let copy = a[i].clone();
                a.splice(i..i, std::iter::repeat_n(copy, *n));
            }
        }
        Edit::Nest(n, object) => {
            if let Some(t) = v.pointer_mut(spot) {
                let mut x = t.take();
                for _ in 0..*n {
                    x = if *object {
                        Value::Object(Map::from_iter([("x".to_string(), x)]))
                    } else {
                        Value::Array(vec![x])
                    };
                }
                *t = x;
            }
        }
    }
}

fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn edited(v: Value, spot: &str, e: Edit) -> String {
        String::from_utf8_lossy(&super::edited(&v, spot, &e)).into_owned()
    }

    #[test]
    fn edits_do_what_they_say() {
        let v = json!({"a": [{"b": "x"}, 2], "c/d": 1});
        assert_eq!(spots(&v), ["/a/0/b", "/a/0", "/a/1", "/a", "/c~1d", ""]);
        assert_eq!(edited(v.clone(), "/a/0/b", Edit::Delete), r#"{"a":[{},2],"c/d":1}"#);
        assert_eq!(edited(v.clone(), "/a/1", Edit::Delete), r#"{"a":[{"b":"x"}],"c/d":1}"#);
        assert_eq!(
            edited(v.clone(), "/c~1d", Edit::Rename("e".into())),
            r#"{"a":[{"b":"x"},2],"e":1}"#
        );
        assert_eq!(
            edited(v.clone(), "/a/0/b", Edit::Token(b"1e400".to_vec())),
            r#"{"a":[{"b":1e400},2],"c/d":1}"#
        );
        assert_eq!(
            edited(v.clone(), "/a/0/b", Edit::Duplicate(json!(7))),
            r#"{"a":[{"b":7,"b":"x"},2],"c/d":1}"#
        );
        assert_eq!(
            edited(v.clone(), "/a/1", Edit::Repeat(2)),
            r#"{"a":[{"b":"x"},2,2,2],"c/d":1}"#
        );
        assert_eq!(
            edited(v.clone(), "/c~1d", Edit::Nest(2, false)),
            r#"{"a":[{"b":"x"},2],"c/d":[[1]]}"#
        );
        assert_eq!(
            edited(v.clone(), "/a/0/b", Edit::Insert("k".into(), json!(null))),
            r#"{"a":[{"b":"x","k":null},2],"c/d":1}"#
        );
        assert_eq!(edited(v, "", Edit::Delete), "null");
    }
}
