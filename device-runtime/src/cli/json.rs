//! A small JSON writer for the machine-readable output of both binaries (`--json` results,
//! `--progress json` lines, errors). The device has no JSON library: this writes only what
//! romlib emits (objects of strings, integers, booleans, nulls and arrays), always as one
//! line, with strings escaped as RFC 8259 requires.

use std::fmt::Write as _;

/// The version of every JSON object both binaries write (field `v`). It changes only when
/// a field is removed or changes meaning; new fields may appear within a version.
pub const JSON_VERSION: u64 = 1;

/// The fields every object romlib writes starts with: `v`, `type` (`result`, `error`,
/// `warning`, `progress`) and `op`, the command.
pub fn envelope(kind: &'static str, op: &'static str) -> Obj {
    Obj::new()
        .field("v", JSON_VERSION)
        .field("type", kind)
        .field("op", op)
}

/// One JSON value being written.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An unsigned integer.
    U64(u64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Value>),
    /// An object, its fields in the order they were added.
    Object(Obj),
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::U64(n)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::U64(n.into())
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Self {
        Value::U64(n as u64)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}
impl From<&std::path::Path> for Value {
    fn from(p: &std::path::Path) -> Self {
        Value::Str(p.to_string_lossy().into_owned())
    }
}
impl From<Obj> for Value {
    fn from(o: Obj) -> Self {
        Value::Object(o)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

/// A JSON object under construction: `Obj::new().field("a", 1u64).field("b", "x")`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Obj(Vec<(&'static str, Value)>);

impl Obj {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds field `name` (names are romlib's own, never escaped).
    pub fn field(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.0.push((name, value.into()));
        self
    }

    /// This object's fields followed by `other`'s.
    pub fn extend(mut self, other: Obj) -> Self {
        self.0.extend(other.0);
        self
    }

    /// The object as one line of JSON.
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(128);
        write_obj(&mut s, self);
        s
    }
}

fn write_obj(out: &mut String, o: &Obj) {
    out.push('{');
    for (i, (k, v)) in o.0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, k);
        out.push(':');
        write_value(out, v);
    }
    out.push('}');
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::U64(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Str(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(o) => write_obj(out, o),
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_one_line_with_escapes() {
        let o = Obj::new()
            .field("s", "a\"b\\c\nd\u{1}é")
            .field("n", 42u64)
            .field("t", true)
            .field("z", None::<u64>)
            .field("a", vec!["x", "y"])
            .field("o", Obj::new().field("k", 0u64));
        assert_eq!(
            o.to_line(),
            r#"{"s":"a\"b\\c\nd\u0001é","n":42,"t":true,"z":null,"a":["x","y"],"o":{"k":0}}"#
        );
    }
}
