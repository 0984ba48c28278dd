//! A YAML document as a tree whose every node remembers its line and column, so validation long
//! after parsing can still point the operator at `file:line:column`. Parsing runs under tight
//! budgets (size, depth, alias replay) so no input — binary, huge, deeply nested, an alias bomb —
//! can hang or exhaust the controller.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Inventory files larger than this are refused before parsing: real inventories are kilobytes,
/// and the bound keeps every later step fast.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// A position in a source file (1-based).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One YAML node with its position.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// The YAML value kinds an inventory can contain. Mappings keep their order and their keys'
/// positions; duplicate keys are kept here and reported by the loader.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// Human name of the kind, for "expected a list, found a string" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

impl Node {
    /// The scalar as text, the way Ansible would template it (`2` → "2", `true` → "true").
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// Whether two values are equal, wherever each was written: positions of nested items
    /// are ignored (a list set on two hosts sits on two lines).
    pub fn same_value(&self, other: &Node) -> bool {
        match (&self.value, &other.value) {
            (Value::Seq(a), Value::Seq(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_value(y))
            }
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((k1, v1), (k2, v2))| k1.same_value(k2) && v1.same_value(v2))
            }
            (a, b) => a == b,
        }
    }

    /// The value as JSON, the way `ansible-inventory --list` prints a variable: mapping keys
    /// as their text (`null` for a null key), a float that JSON cannot hold as null.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.scalar_text().unwrap_or_else(|| "null".into()),
                            v.to_json(),
                        )
                    })
                    .collect(),
            ),
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }
}

/// Why a file could not be read as YAML, with the position when the parser knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Option<Pos>,
    pub message: String,
}

/// Parses one YAML document. An empty document is `Null` at 1:1.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(YamlError {
            pos: None,
            message: format!(
                "file is {} bytes; inventories larger than {} bytes are refused",
                text.len(),
                MAX_FILE_BYTES
            ),
        });
    }
    if text.trim().is_empty() {
        return Ok(Node {
            value: Value::Null,
            pos: Pos { line: 1, column: 1 },
        });
    }
    let options = serde_saphyr::options! {
        // Duplicates are reported by the loader with both positions.
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::PassThrough,
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 100_000,
            max_replay_stack_depth: 16,
            max_alias_expansions_per_anchor: 10_000,
        },
        budget: serde_saphyr::budget! {
            max_depth: 48,
            max_nodes: 200_000,
            max_documents: 1,
        },
    };
    serde_saphyr::from_str_with_options::<Node>(text, options).map_err(|e| YamlError {
        pos: e.location().map(|l| Pos {
            line: clamp(l.line()),
            column: clamp(l.column()),
        }),
        message: first_line(&e.to_string()),
    })
}

/// Reads and parses a file, mapping I/O and UTF-8 problems to the same error type.
pub fn parse_file(path: &Path) -> Result<Node, YamlError> {
    let bytes = std::fs::read(path).map_err(|e| YamlError {
        pos: None,
        message: format!("cannot read: {e}"),
    })?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(YamlError {
            pos: None,
            message: format!(
                "file is {} bytes; inventories larger than {} bytes are refused",
                bytes.len(),
                MAX_FILE_BYTES
            ),
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        YamlError {
            pos: None,
            message: format!(
                "not UTF-8 text (invalid byte at offset {offset}); is this a binary file?"
            ),
        }
    })?;
    parse(&text)
}

fn clamp(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// serde-saphyr renders a multi-line snippet; the first line carries the message and the
/// location is reported separately.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    // The position is reported separately; drop serde-saphyr's own "error: line N column M: ".
    let without_prefix = line.strip_prefix("error: ").unwrap_or(line);
    match without_prefix.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => {
            rest.to_string()
        }
        _ => without_prefix.to_string(),
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            pos: Pos {
                line: clamp(spanned.referenced.line()),
                column: clamp(spanned.referenced.column()),
            },
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Node, Node>()? {
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_keys_and_values() {
        let node = parse("all:\n  vars:\n    ha_keepalive: 2\n").unwrap();
        let all = node.as_map().unwrap();
        assert_eq!(all[0].0.pos, Pos { line: 1, column: 1 });
        let vars = all[0].1.as_map().unwrap()[0].1.as_map().unwrap();
        assert_eq!(vars[0].0.value, Value::Str("ha_keepalive".into()));
        assert_eq!(vars[0].0.pos.line, 3);
        assert_eq!(vars[0].1.value, Value::Int(2));
        assert_eq!(
            vars[0].1.pos,
            Pos {
                line: 3,
                column: 19
            }
        );
    }

    #[test]
    fn ansible_booleans_and_strings() {
        let node = parse("a: yes\nb: off\nc: 225.0.0.1\nd: 500ms\n").unwrap();
        let m = node.as_map().unwrap();
        assert_eq!(m[0].1.value, Value::Bool(true));
        assert_eq!(m[1].1.value, Value::Bool(false));
        assert_eq!(m[2].1.value, Value::Str("225.0.0.1".into()));
        assert_eq!(m[3].1.value, Value::Str("500ms".into()));
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse("all:\n  hosts: [a, b\n  vars: {}\n").unwrap_err();
        assert!(err.pos.is_some(), "{err:?}");
    }

    /// Hostile inputs must come back as an error (or a value) quickly, never a panic or a hang.
    #[test]
    fn hostile_inputs_are_refused_cleanly() {
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        let deep_block: String = (0..500)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let prev = (b'a' + level - 1) as char;
            let this = (b'a' + level) as char;
            bomb.push_str(&format!("{this}: &{this} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let huge = "k: v\n".repeat(2_500_000);
        for (name, input) in [
            ("deep flow", deep),
            ("deep block", deep_block),
            ("alias bomb", bomb),
            ("10 MB", huge),
        ] {
            let result = parse(&input);
            assert!(result.is_err(), "{name} should be refused");
        }
        for input in [
            "\u{0}\u{1}\u{2}",
            "\t\t- [",
            "&a *a",
            "? ? ?",
            "{{{{",
            "- &x\n- *y",
            "!!binary ????",
        ] {
            let _ = parse(input);
        }
    }

    #[test]
    fn random_mutations_never_panic() {
        let seed = "all:\n  vars: &v {ha_keepalive: 2, x: [1, 2, {y: *v}]}\n  children:\n    web:\n      hosts:\n        n[1:2]: {ansible_host: 10.0.0.1}\n      vars: {ha_vips: [10.0.0.9/24]}\n";
        for text in
            crate::config::inventory::mutations(seed, b"[]{}:-&*!|>'\"#%@`,? \n\tax0", 7, 3000)
        {
            let _ = parse(&text);
        }
    }

    #[test]
    fn json_as_ansible_inventory_prints_it() {
        let node = parse("a: [1, 2.5, yes, ~, x]\nb: {1: c, ~: d}\n").unwrap();
        assert_eq!(
            node.to_json(),
            serde_json::json!({"a": [1, 2.5, true, null, "x"], "b": {"1": "c", "null": "d"}})
        );
    }

    #[test]
    fn same_value_ignores_positions() {
        let node = parse("a: [x, {k: 1}]\nb:   [x, {k: 1}]\nc: [x, {k: 2}]\n").unwrap();
        let m = node.as_map().unwrap();
        assert_ne!(m[0].1, m[1].1);
        assert!(m[0].1.same_value(&m[1].1));
        assert!(!m[0].1.same_value(&m[2].1));
    }

    #[test]
    fn empty_is_null() {
        assert_eq!(parse("").unwrap().value, Value::Null);
        assert_eq!(parse("  \n# only a comment\n").unwrap().value, Value::Null);
    }
}
