//! OVSDB data encoding (RFC 7047 section 5.1): atoms, sets, maps and UUID references.
//!
//! On the wire a set is `["set",[...]]`, a map `["map",[[k,v],...]]`, a UUID `["uuid","..."]` and
//! a reference to a row inserted earlier in the same transaction `["named-uuid","name"]`. A set of
//! exactly one element may also appear as the bare atom, so readers treat an atom as a 1-set.

use super::Error;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::fmt;

/// A row UUID as the server prints it (36 characters, lower-case hex and dashes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(String);

impl Uuid {
    /// Validates the textual form, so a malformed server value never becomes a `Uuid`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let ok = s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        if ok {
            Ok(Uuid(s.to_ascii_lowercase()))
        } else {
            Err(Error::InvalidValue(format!("not a UUID: {s:?}")))
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One OVSDB atom.
#[derive(Debug, Clone, PartialEq)]
pub enum Atom {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    String(String),
    Uuid(Uuid),
    /// `["named-uuid", name]`: only valid inside the transaction that inserted `name`.
    NamedUuid(String),
}

impl Atom {
    pub(crate) fn to_json(&self) -> Json {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(s),
            Atom::Uuid(u) => json!(["uuid", u.as_str()]),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    pub(crate) fn from_json(j: &Json) -> Result<Self, Error> {
        match j {
            Json::Bool(b) => Ok(Atom::Boolean(*b)),
            Json::String(s) => Ok(Atom::String(s.clone())),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Ok(Atom::Integer(i)),
                None => n
                    .as_f64()
                    .map(Atom::Real)
                    .ok_or_else(|| Error::InvalidValue(format!("number out of range: {n}"))),
            },
            Json::Array(a) => match (a.first().and_then(Json::as_str), a.get(1), a.len()) {
                (Some("uuid"), Some(Json::String(s)), 2) => Ok(Atom::Uuid(Uuid::parse(s)?)),
                (Some("named-uuid"), Some(Json::String(s)), 2) => Ok(Atom::NamedUuid(s.clone())),
                _ => Err(Error::InvalidValue(format!("not an atom: {j}"))),
            },
            _ => Err(Error::InvalidValue(format!("not an atom: {j}"))),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_integer(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }

    pub(crate) fn as_uuid(&self) -> Option<&Uuid> {
        match self {
            Atom::Uuid(u) => Some(u),
            _ => None,
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Self {
        Atom::String(s.to_string())
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Self {
        Atom::String(s)
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Self {
        Atom::Integer(i)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Self {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Self {
        Atom::Uuid(u)
    }
}

/// A column value: an atom, a set, or a map.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Atom(Atom),
    Set(Vec<Atom>),
    Map(Vec<(Atom, Atom)>),
}

impl Value {
    /// `["set", [...]]`, the empty set being how OVSDB writes "no value" in optional columns.
    pub fn set<A: Into<Atom>>(items: impl IntoIterator<Item = A>) -> Self {
        Value::Set(items.into_iter().map(Into::into).collect())
    }

    pub fn empty_set() -> Self {
        Value::Set(Vec::new())
    }

    /// `["map", [[k, v], ...]]`.
    pub fn map<K: Into<Atom>, V: Into<Atom>>(items: impl IntoIterator<Item = (K, V)>) -> Self {
        Value::Map(
            items
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    pub fn uuid(u: Uuid) -> Self {
        Value::Atom(Atom::Uuid(u))
    }

    /// A reference to the row inserted with `uuid-name` `name` in the same transaction.
    pub fn named_uuid(name: &str) -> Self {
        Value::Atom(Atom::NamedUuid(name.to_string()))
    }

    pub(crate) fn to_json(&self) -> Json {
        match self {
            Value::Atom(a) => a.to_json(),
            Value::Set(items) => {
                json!(["set", items.iter().map(Atom::to_json).collect::<Vec<_>>()])
            }
            Value::Map(pairs) => json!([
                "map",
                pairs
                    .iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    pub(crate) fn from_json(j: &Json) -> Result<Self, Error> {
        let tag = j.as_array().and_then(|a| a.first()).and_then(Json::as_str);
        let body = || {
            j.as_array()
                .filter(|a| a.len() == 2)
                .and_then(|a| a[1].as_array())
                .ok_or_else(|| Error::InvalidValue(format!("malformed {tag:?}: {j}")))
        };
        match tag {
            Some("set") => Ok(Value::Set(
                body()?
                    .iter()
                    .map(Atom::from_json)
                    .collect::<Result<_, _>>()?,
            )),
            Some("map") => Ok(Value::Map(
                body()?
                    .iter()
                    .map(|pair| match pair.as_array().map(Vec::as_slice) {
                        Some([k, v]) => Ok((Atom::from_json(k)?, Atom::from_json(v)?)),
                        _ => Err(Error::InvalidValue(format!("bad map pair: {pair}"))),
                    })
                    .collect::<Result<_, _>>()?,
            )),
            _ => Ok(Value::Atom(Atom::from_json(j)?)),
        }
    }

    /// Elements viewed as a set (a bare atom is a 1-set).
    pub(crate) fn as_set(&self) -> &[Atom] {
        match self {
            Value::Atom(a) => std::slice::from_ref(a),
            Value::Set(s) => s,
            Value::Map(_) => &[],
        }
    }

    /// The single element of an atom or 1-set; `None` for empty sets (unset optional columns).
    pub(crate) fn as_atom(&self) -> Option<&Atom> {
        match self.as_set() {
            [a] => Some(a),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i64> {
        self.as_atom().and_then(Atom::as_integer)
    }

    pub fn as_str(&self) -> Option<&str> {
        self.as_atom().and_then(Atom::as_str)
    }

    pub fn as_uuid(&self) -> Option<&Uuid> {
        self.as_atom().and_then(Atom::as_uuid)
    }

    /// Looks up a string key in a map value.
    pub fn map_get(&self, key: &str) -> Option<&Atom> {
        match self {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

impl<T: Into<Atom>> From<T> for Value {
    fn from(a: T) -> Self {
        Value::Atom(a.into())
    }
}

/// A row as column name -> value.
pub type Row = BTreeMap<String, Value>;

/// Builds a row from `(column, value)` pairs.
pub fn row<V: Into<Value>>(cols: impl IntoIterator<Item = (&'static str, V)>) -> Row {
    cols.into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect()
}

pub(crate) fn row_to_json(r: &Row) -> Json {
    Json::Object(r.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

pub(crate) fn row_from_json(j: &Json) -> Result<Row, Error> {
    let obj = j
        .as_object()
        .ok_or_else(|| Error::InvalidValue(format!("row is not an object: {j}")))?;
    obj.iter()
        .map(|(k, v)| Ok((k.clone(), Value::from_json(v)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_and_decodes_every_shape() {
        let u = Uuid::parse("0F8A4C47-8bc8-4d6e-9b1c-3b2d5c8e1a77").unwrap();
        assert_eq!(u.as_str(), "0f8a4c47-8bc8-4d6e-9b1c-3b2d5c8e1a77");
        let cases = [
            (Value::from(7), json!(7)),
            (Value::from("x"), json!("x")),
            (Value::from(true), json!(true)),
            (Value::uuid(u.clone()), json!(["uuid", u.as_str()])),
            (Value::named_uuid("p"), json!(["named-uuid", "p"])),
            (Value::set(["a", "b"]), json!(["set", ["a", "b"]])),
            (Value::empty_set(), json!(["set", []])),
            (Value::map([("k", "v")]), json!(["map", [["k", "v"]]])),
        ];
        for (v, j) in cases {
            assert_eq!(v.to_json(), j);
            assert_eq!(Value::from_json(&j).unwrap(), v);
        }
    }

    #[test]
    fn bare_atom_is_a_one_element_set() {
        let v = Value::from_json(&json!(5)).unwrap();
        assert_eq!(v.as_set().len(), 1);
        assert_eq!(v.as_integer(), Some(5));
        assert_eq!(Value::empty_set().as_integer(), None);
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            json!(["uuid", "nope"]),
            json!(["set", "x"]),
            json!(["map", [["k"]]]),
            json!({"a": 1}),
            json!(null),
            json!(["bogus", 1]),
        ] {
            assert!(Value::from_json(&bad).is_err(), "{bad}");
        }
    }
}
