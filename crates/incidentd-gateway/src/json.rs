//! A JSON tree that borrows its strings from the request body, for the alert
//! edges' parsers. `serde_json::Value` copies every key and string into its
//! own allocation; on the webhook path that was a tenth of the CPU.
//!
//! Same meaning as `serde_json::Value`: objects are sorted by key and a key
//! given twice keeps its last value; numbers are `serde_json::Number`; the
//! parser's recursion limit applies.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

pub type Obj<'a> = BTreeMap<Cow<'a, str>, Json<'a>>;

#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Obj<'a>),
}

impl<'a> Json<'a> {
    /// Parses `body` (which the tree then borrows from).
    pub fn parse(body: &'a [u8]) -> serde_json::Result<Json<'a>> {
        serde_json::from_slice(body)
    }
}

/// A string borrowed from the input when it has no escapes.
struct Text<'a>(Cow<'a, str>);

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Borrowed(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text<'de>, E> {
        Ok(Text(Cow::Owned(v)))
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(d)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        // JSON has no NaN or infinity; `Null` is what serde_json makes of them too.
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut out = Obj::new();
        while let Some((Text(k), v)) = map.next_entry::<Text<'de>, Json<'de>>()? {
            out.insert(k, v);
        }
        Ok(Json::Object(out))
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::Json;
    use proptest::prelude::*;
    use serde_json::Value;
    use std::borrow::Cow;

    /// The tree says what `serde_json::Value` says of the same bytes.
    fn same(json: &Json<'_>, value: &Value) -> bool {
        match (json, value) {
            (Json::Null, Value::Null) => true,
            (Json::Bool(a), Value::Bool(b)) => a == b,
            (Json::Number(a), Value::Number(b)) => a == b && a.to_string() == b.to_string(),
            (Json::String(a), Value::String(b)) => a == b,
            (Json::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
            (Json::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
            }
            _ => false,
        }
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let body = br#"{"a":"plain","b":"esc\"aped","a":"last","n":[1,-2,2.5,1e3],"t":true,"z":null}"#;
        let j = Json::parse(body).unwrap_or(Json::Null);
        let Json::Object(m) = &j else {
            panic!("not an object: {j:?}");
        };
        assert!(matches!(m.get("a"), Some(Json::String(Cow::Borrowed("last")))));
        assert!(matches!(m.get("b"), Some(Json::String(Cow::Owned(s))) if s == "esc\"aped"));
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        assert!(same(&j, &v));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes: both parsers accept the same inputs and agree.
        #[test]
        fn agrees_with_serde_json_value(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let ours = Json::parse(&bytes);
            let theirs: serde_json::Result<Value> = serde_json::from_slice(&bytes);
            match (ours, theirs) {
                (Ok(a), Ok(b)) => prop_assert!(same(&a, &b), "{a:?} vs {b:?}"),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "{a:?} vs {b:?}"),
            }
        }

        /// Arbitrary JSON documents (as text), including duplicate keys and escapes.
        #[test]
        fn agrees_on_documents(doc in json_text()) {
            let ours = Json::parse(doc.as_bytes());
            let theirs: serde_json::Result<Value> = serde_json::from_str(&doc);
            match (ours, theirs) {
                (Ok(a), Ok(b)) => prop_assert!(same(&a, &b), "{doc}"),
                (a, b) => prop_assert!(false, "{doc}: {a:?} vs {b:?}"),
            }
        }
    }

    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (-1e12f64..1e12).prop_map(|f| format!("{f:e}")),
            "[a-c\"\\\\é\\n]{0,6}".prop_map(|s| Value::String(s).to_string()),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
                proptest::collection::vec(("[a-c]{0,2}", inner), 0..5).prop_map(|kv| {
                    let body: Vec<String> = kv
                        .into_iter()
                        .map(|(k, v)| format!("{}:{v}", Value::String(k)))
                        .collect();
                    format!("{{{}}}", body.join(","))
                }),
            ]
        })
    }
}
