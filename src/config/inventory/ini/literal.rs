//! Python's `ast.literal_eval`, as Ansible's INI plugin applies it to every value: an int, a
//! float, `True`/`False`/`None`, a (concatenated, prefixed, escaped) string, a list, a tuple or
//! a dict of those. Anything that is not such a literal — a syntax error or any other expression —
//! is, as in Ansible, no error at all: the value stays the text it was. The few literals Ansible
//! itself cannot use (sets, complex numbers, unhashable dict keys) are refused with a reason.

use crate::config::inventory::yaml::{Node, Pos, Value};

/// What `literal_eval` made of a value.
#[derive(Debug, PartialEq)]
pub enum Literal {
    /// A literal: the typed value, positioned in the line.
    Value(Node),
    /// Not a Python literal: Ansible keeps the text as a string.
    Text,
    /// A Python literal hadeploy cannot represent, and why.
    Unsupported { column: u32, reason: String },
}

/// Python's tokenizer refuses brackets nested this deep ("too many nested parentheses"), so the
/// value falls back to text there too — and the recursion is bounded.
const MAX_NESTING: usize = 200;

/// CPython refuses decimal literals longer than this (the int/str conversion limit).
const MAX_DECIMAL_DIGITS: usize = 4300;

/// Evaluates `text`; `pos` is where its first character sits in the file, and every node's
/// position is counted from there (one column per character: a value never spans lines).
/// `columns` optionally maps each character of `text` to its column, for text that was
/// unquoted from the line first (host-line values go through shlex).
pub fn eval(text: &str, pos: Pos, columns: Option<&[u32]>) -> Literal {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Parser {
        chars: &chars,
        at: 0,
        depth: 0,
        pos,
        columns,
    };
    match p.top() {
        Ok(node) => Literal::Value(node),
        Err(Fail::Text) => Literal::Text,
        Err(Fail::Unsupported(at, reason)) => Literal::Unsupported {
            column: p.column(at),
            reason,
        },
    }
}

enum Fail {
    Text,
    Unsupported(usize, String),
}

type Parsed<T> = Result<T, Fail>;

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
    depth: usize,
    pos: Pos,
    columns: Option<&'a [u32]>,
}

/// One parsed element, with what literal_eval needs to know beyond its value.
struct Item {
    node: Node,
    /// A plain number (int or float, not bool), which a unary sign may apply to.
    number: bool,
    /// Started at `at`, for messages.
    at: usize,
}

impl Parser<'_> {
    fn column(&self, at: usize) -> u32 {
        match self.columns {
            Some(cols) => cols
                .get(at)
                .or(cols.last())
                .copied()
                .unwrap_or(self.pos.column),
            None => self
                .pos
                .column
                .saturating_add(u32::try_from(at).unwrap_or(u32::MAX)),
        }
    }

    fn node(&self, value: Value, at: usize) -> Node {
        Node {
            value,
            pos: Pos {
                line: self.pos.line,
                column: self.column(at),
            },
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    /// Skips Python's in-line whitespace and a trailing comment.
    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\x0c' => self.at += 1,
                '#' => self.at = self.chars.len(),
                _ => break,
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// The whole value: one expression, or a bare tuple (`1, 2`), and nothing after it.
    fn top(&mut self) -> Parsed<Node> {
        if self.chars.contains(&'\0') {
            return Err(Fail::Text);
        }
        self.skip_space();
        let start = self.at;
        let first = self.expr()?;
        let node = if self.eat(',') {
            let mut items = vec![first.node];
            self.skip_space();
            while self.peek().is_some() {
                items.push(self.expr()?.node);
                if !self.eat(',') {
                    break;
                }
                self.skip_space();
            }
            self.node(Value::Seq(items), start)
        } else {
            first.node
        };
        self.skip_space();
        if self.peek().is_some() {
            return Err(Fail::Text);
        }
        Ok(node)
    }

    /// One element: a signed number, a complex sum (refused), or an atom.
    fn expr(&mut self) -> Parsed<Item> {
        self.skip_space();
        let start = self.at;
        let negative = match self.peek() {
            Some('-') => Some(true),
            Some('+') => Some(false),
            _ => None,
        };
        let item = match negative {
            Some(negative) => {
                self.at += 1;
                let operand = self.atom()?;
                if !operand.number {
                    return Err(Fail::Text);
                }
                let value = match operand.node.value {
                    Value::Int(i) if negative => i
                        .checked_neg()
                        .map_or(Value::Float(-(i as f64)), Value::Int),
                    Value::Float(f) if negative => Value::Float(-f),
                    other => other,
                };
                Item {
                    node: self.node(value, start),
                    number: true,
                    at: start,
                }
            }
            None => self.atom()?,
        };
        self.skip_space();
        if matches!(self.peek(), Some('+' | '-')) {
            // literal_eval's only binary operation is a real plus or minus an imaginary number.
            self.at += 1;
            let right = self.expr_operand()?;
            return Err(if item.number && right {
                Fail::Unsupported(
                    item.at,
                    "a Python complex number, which Ansible turns into text; quote it".into(),
                )
            } else {
                Fail::Text
            });
        }
        Ok(item)
    }

    /// The right side of `a + b`: whether it is an imaginary number literal.
    fn expr_operand(&mut self) -> Parsed<bool> {
        self.skip_space();
        match self.number_token() {
            Some(Ok(Number::Imaginary)) => Ok(true),
            Some(Err(())) => Err(Fail::Text),
            _ => Ok(false),
        }
    }

    fn atom(&mut self) -> Parsed<Item> {
        self.skip_space();
        let start = self.at;
        let Some(c) = self.peek() else {
            return Err(Fail::Text);
        };
        let item = |node: Node, number: bool| Item {
            node,
            number,
            at: start,
        };
        match c {
            '0'..='9' => self.number(start).map(|n| item(n, true)),
            '.' if self.peek_at(1).is_some_and(|d| d.is_ascii_digit()) => {
                self.number(start).map(|n| item(n, true))
            }
            '.' if self.peek_at(1) == Some('.') && self.peek_at(2) == Some('.') => {
                // Ansible turns `...` (Ellipsis) into the text "...".
                self.at += 3;
                Ok(item(self.node(Value::Str("...".into()), start), false))
            }
            '\'' | '"' => self.strings(start).map(|n| item(n, false)),
            '[' => self.nested(|p| p.list(start)).map(|n| item(n, false)),
            '(' => self.nested(|p| p.parens(start)),
            '{' => self.nested(|p| p.dict(start)).map(|n| item(n, false)),
            c if c.is_alphabetic() || c == '_' => {
                let word = self.word();
                let quote_follows = matches!(self.peek(), Some('\'' | '"'));
                if quote_follows && string_prefix(&word).is_some() {
                    self.at = start;
                    return self.strings(start).map(|n| item(n, false));
                }
                let value = match word.as_str() {
                    "True" => Value::Bool(true),
                    "False" => Value::Bool(false),
                    "None" => Value::Null,
                    _ => return Err(Fail::Text),
                };
                Ok(item(self.node(value, start), false))
            }
            _ => Err(Fail::Text),
        }
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<T> {
        if self.depth >= MAX_NESTING {
            return Err(Fail::Text);
        }
        self.depth += 1;
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn word(&mut self) -> String {
        let mut word = String::new();
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                word.push(c);
                self.at += 1;
            } else {
                break;
            }
        }
        word
    }

    /// Comma-separated elements up to `close`, a trailing comma allowed; returns the items and
    /// whether any comma was seen (which makes `(x,)` a tuple).
    fn elements(&mut self, close: char) -> Parsed<(Vec<Item>, bool)> {
        let mut items = Vec::new();
        let mut comma = false;
        loop {
            if self.eat(close) {
                return Ok((items, comma));
            }
            items.push(self.expr()?);
            if self.eat(',') {
                comma = true;
            } else if self.eat(close) {
                return Ok((items, comma));
            } else {
                return Err(Fail::Text);
            }
        }
    }

    fn list(&mut self, start: usize) -> Parsed<Node> {
        self.at += 1;
        let (items, _) = self.elements(']')?;
        Ok(self.node(
            Value::Seq(items.into_iter().map(|i| i.node).collect()),
            start,
        ))
    }

    /// `(x)` is x; `()`, `(x,)` and `(x, y)` are tuples, which Ansible makes lists.
    fn parens(&mut self, start: usize) -> Parsed<Item> {
        self.at += 1;
        let (mut items, comma) = self.elements(')')?;
        if items.len() == 1 && !comma {
            let mut inner = items.remove(0);
            inner.at = start;
            return Ok(inner);
        }
        Ok(Item {
            node: self.node(
                Value::Seq(items.into_iter().map(|i| i.node).collect()),
                start,
            ),
            number: false,
            at: start,
        })
    }

    fn dict(&mut self, start: usize) -> Parsed<Node> {
        self.at += 1;
        let mut entries: Vec<(Node, Node)> = Vec::new();
        loop {
            if self.eat('}') {
                break;
            }
            let key = self.expr()?;
            if !self.eat(':') {
                // `{x}` or `{x, y}`: a set, if the rest parses.
                if self.eat(',') {
                    self.elements('}')?;
                } else if !self.eat('}') {
                    return Err(Fail::Text);
                }
                return Err(Fail::Unsupported(
                    start,
                    "a Python set; write a list `[...]` instead".into(),
                ));
            }
            let value = self.expr()?;
            if matches!(key.node.value, Value::Seq(_) | Value::Map(_)) {
                return Err(Fail::Unsupported(
                    key.at,
                    "a dict key must be a string, number, boolean or None".into(),
                ));
            }
            // A repeated key keeps its first place and takes the later value, as in Python.
            match entries.iter_mut().find(|(k, _)| k.value == key.node.value) {
                Some(entry) => entry.1 = value.node,
                None => entries.push((key.node, value.node)),
            }
            if !self.eat(',') {
                if self.eat('}') {
                    break;
                }
                return Err(Fail::Text);
            }
        }
        Ok(self.node(Value::Map(entries), start))
    }

    fn number(&mut self, start: usize) -> Parsed<Node> {
        let token_start = self.at;
        match self.number_token() {
            Some(Ok(Number::Int(digits, radix))) => {
                if radix == 10 && digits.len() > MAX_DECIMAL_DIGITS {
                    return Err(Fail::Text);
                }
                let value = i64::from_str_radix(&digits, radix)
                    .map_or_else(|_| Value::Float(approximate(&digits, radix)), Value::Int);
                Ok(self.node(value, start))
            }
            Some(Ok(Number::Float(text))) => text
                .parse::<f64>()
                .map(|f| self.node(Value::Float(f), start))
                .map_err(|_| Fail::Text),
            Some(Ok(Number::Imaginary)) => Err(Fail::Unsupported(
                token_start,
                "a Python complex number, which Ansible turns into text; quote it".into(),
            )),
            Some(Err(())) | None => Err(Fail::Text),
        }
    }

    /// Reads one Python number token at the cursor (None if there is none): `None` leaves the
    /// cursor, `Err` means a malformed number (a syntax error in Python).
    fn number_token(&mut self) -> Option<Result<Number, ()>> {
        let first = self.peek()?;
        if !(first.is_ascii_digit()
            || first == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit()))
        {
            return None;
        }
        let result = self.number_body();
        // A number running straight into a name (`1abc`, `0x1g`) is a syntax error.
        if result.is_ok() && self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return Some(Err(()));
        }
        Some(result)
    }

    fn number_body(&mut self) -> Result<Number, ()> {
        if self.peek() == Some('0')
            && let Some(radix) = match self.peek_at(1) {
                Some('x' | 'X') => Some(16),
                Some('o' | 'O') => Some(8),
                Some('b' | 'B') => Some(2),
                _ => None,
            }
        {
            self.at += 2;
            // An underscore may follow the prefix: 0x_1f.
            if self.peek() == Some('_') {
                self.at += 1;
            }
            let digits = self.digits(radix)?;
            return Ok(Number::Int(digits, radix));
        }
        let mut text = String::new();
        let mut float = false;
        if self.peek() != Some('.') {
            text.push_str(&self.digits(10)?);
        }
        if self.peek() == Some('.') {
            float = true;
            self.at += 1;
            text.push('.');
            if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                text.push_str(&self.digits(10)?);
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign = matches!(self.peek_at(1), Some('+' | '-'));
            let digit_at = if sign { 2 } else { 1 };
            if !self.peek_at(digit_at).is_some_and(|c| c.is_ascii_digit()) {
                return Err(());
            }
            float = true;
            text.push('e');
            if sign {
                text.push(self.peek_at(1).unwrap_or('+'));
            }
            self.at += digit_at;
            text.push_str(&self.digits(10)?);
        }
        if matches!(self.peek(), Some('j' | 'J')) {
            self.at += 1;
            return Ok(Number::Imaginary);
        }
        if float {
            return Ok(Number::Float(text));
        }
        // Python forbids leading zeros in a decimal integer, except for zero itself.
        if text.len() > 1 && text.starts_with('0') && text.chars().any(|c| c != '0') {
            return Err(());
        }
        Ok(Number::Int(text, 10))
    }

    /// Digits of `radix` with single underscores between them; at least one digit.
    fn digits(&mut self, radix: u32) -> Result<String, ()> {
        let mut out = String::new();
        loop {
            match self.peek() {
                Some(c) if c.is_digit(radix) => {
                    out.push(c);
                    self.at += 1;
                }
                Some('_')
                    if !out.is_empty() && self.peek_at(1).is_some_and(|c| c.is_digit(radix)) =>
                {
                    self.at += 1;
                }
                Some(c) if radix < 10 && c.is_ascii_digit() => return Err(()),
                _ => break,
            }
        }
        if out.is_empty() { Err(()) } else { Ok(out) }
    }

    /// One or more adjacent string literals, concatenated (`'a' 'b'` is "ab"); text and bytes
    /// literals do not mix.
    fn strings(&mut self, start: usize) -> Parsed<Node> {
        let mut text = String::new();
        let mut bytes: Option<bool> = None;
        loop {
            self.skip_space();
            let here = self.at;
            let word = self.word();
            let Some(prefix) = (if word.is_empty() {
                Some(Prefix::default())
            } else {
                string_prefix(&word)
            }) else {
                self.at = here;
                break;
            };
            let Some(quote) = self.peek().filter(|c| matches!(c, '\'' | '"')) else {
                self.at = here;
                break;
            };
            if prefix.format {
                return Err(Fail::Text);
            }
            if bytes.is_some_and(|b| b != prefix.bytes) {
                return Err(Fail::Text);
            }
            bytes = Some(prefix.bytes);
            let piece = self.string_body(quote, prefix)?;
            text.push_str(&piece);
        }
        if bytes.is_none() {
            return Err(Fail::Text);
        }
        Ok(self.node(Value::Str(text), start))
    }

    fn string_body(&mut self, quote: char, prefix: Prefix) -> Parsed<String> {
        let body_start = self.at;
        let triple = self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote);
        self.at += if triple { 3 } else { 1 };
        let mut raw: Vec<u32> = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(Fail::Text);
            };
            if c == quote
                && (!triple || self.peek_at(1) == Some(quote) && self.peek_at(2) == Some(quote))
            {
                self.at += if triple { 3 } else { 1 };
                break;
            }
            if prefix.bytes && !c.is_ascii() {
                return Err(Fail::Text);
            }
            self.at += 1;
            if c != '\\' {
                raw.push(u32::from(c));
                continue;
            }
            let Some(next) = self.peek() else {
                return Err(Fail::Text);
            };
            if prefix.raw {
                // A raw string keeps the backslash, which only stops the next quote ending it.
                raw.push(u32::from('\\'));
                raw.push(u32::from(next));
                self.at += 1;
                continue;
            }
            self.at += 1;
            let simple = match next {
                '\\' => Some('\\'),
                '\'' => Some('\''),
                '"' => Some('"'),
                'a' => Some('\x07'),
                'b' => Some('\x08'),
                'f' => Some('\x0c'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'v' => Some('\x0b'),
                _ => None,
            };
            if let Some(s) = simple {
                raw.push(u32::from(s));
                continue;
            }
            match next {
                '0'..='7' => {
                    let mut value = next.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match self.peek().and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                value = value * 8 + d;
                                self.at += 1;
                            }
                            None => break,
                        }
                    }
                    raw.push(if prefix.bytes { value & 0xff } else { value });
                }
                'x' => raw.push(self.hex_escape(2)?),
                'u' if !prefix.bytes => raw.push(self.hex_escape(4)?),
                'U' if !prefix.bytes => raw.push(self.hex_escape(8)?),
                'N' if !prefix.bytes => {
                    return Err(Fail::Unsupported(
                        self.at - 2,
                        "a `\\N{...}` escape; write the character itself".into(),
                    ));
                }
                other => {
                    raw.push(u32::from('\\'));
                    raw.push(u32::from(other));
                }
            }
        }
        if prefix.bytes {
            let bytes: Vec<u8> = raw.iter().map(|&b| (b & 0xff) as u8).collect();
            // Ansible decodes bytes as UTF-8 text.
            return String::from_utf8(bytes).map_err(|_| {
                Fail::Unsupported(body_start, "bytes that are not UTF-8 text".into())
            });
        }
        raw.into_iter()
            .map(char::from_u32)
            .collect::<Option<String>>()
            .ok_or_else(|| {
                Fail::Unsupported(
                    body_start,
                    "an escape that names no Unicode character (a lone surrogate)".into(),
                )
            })
    }

    fn hex_escape(&mut self, len: usize) -> Parsed<u32> {
        let mut value: u32 = 0;
        for _ in 0..len {
            let d = self.peek().and_then(|c| c.to_digit(16)).ok_or(Fail::Text)?;
            value = value.checked_mul(16).ok_or(Fail::Text)? + d;
            self.at += 1;
        }
        if value > 0x10ffff {
            return Err(Fail::Text);
        }
        Ok(value)
    }
}

enum Number {
    Int(String, u32),
    Float(String),
    Imaginary,
}

/// An integer beyond i64, as a float (as the YAML reader does), so it is still a number.
fn approximate(digits: &str, radix: u32) -> f64 {
    digits.chars().fold(0.0, |acc, c| {
        acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0))
    })
}

#[derive(Clone, Copy, Default)]
struct Prefix {
    raw: bool,
    bytes: bool,
    format: bool,
}

/// Python's string prefixes, in any case: r, u, b, br/rb, f, fr/rf.
fn string_prefix(word: &str) -> Option<Prefix> {
    let lower = word.to_ascii_lowercase();
    let p = |raw, bytes, format| Some(Prefix { raw, bytes, format });
    match lower.as_str() {
        "r" => p(true, false, false),
        "u" => p(false, false, false),
        "b" => p(false, true, false),
        "br" | "rb" => p(true, true, false),
        "f" => p(false, false, true),
        "fr" | "rf" => p(true, false, true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(text: &str) -> Value {
        match eval(text, Pos { line: 1, column: 1 }, None) {
            Literal::Value(node) => node.value,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    fn seq(items: Vec<Value>) -> Value {
        Value::Seq(
            items
                .into_iter()
                .map(|value| Node {
                    value,
                    pos: Pos::default(),
                })
                .collect(),
        )
    }

    /// Compares ignoring positions.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Seq(x), Value::Seq(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(m, n)| same(&m.value, &n.value))
            }
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len()
                    && x.iter().zip(y).all(|((k1, v1), (k2, v2))| {
                        same(&k1.value, &k2.value) && same(&v1.value, &v2.value)
                    })
            }
            _ => a == b,
        }
    }

    /// Each pair was checked against CPython 3.11's `ast.literal_eval`.
    #[test]
    fn literals_as_python_reads_them() {
        let cases: Vec<(&str, Value)> = vec![
            ("23", Value::Int(23)),
            ("-(1)", Value::Int(-1)),
            ("- 1", Value::Int(-1)),
            ("+1.5", Value::Float(1.5)),
            ("(1)", Value::Int(1)),
            ("00", Value::Int(0)),
            ("0_0", Value::Int(0)),
            ("0x_1f", Value::Int(31)),
            ("0o17", Value::Int(15)),
            ("0b11", Value::Int(3)),
            ("1_000", Value::Int(1000)),
            ("010.5", Value::Float(10.5)),
            ("010e1", Value::Float(100.0)),
            ("1.e5", Value::Float(100000.0)),
            (".5", Value::Float(0.5)),
            ("1.", Value::Float(1.0)),
            ("-1.5e-3", Value::Float(-0.0015)),
            ("1_000.0_1", Value::Float(1000.01)),
            ("1 # comment", Value::Int(1)),
            ("\x0c1", Value::Int(1)),
            ("\t1\t", Value::Int(1)),
            ("True", Value::Bool(true)),
            ("False", Value::Bool(false)),
            ("None", Value::Null),
            ("...", s("...")),
            ("'a' 'b'", s("ab")),
            ("'a''b'", s("ab")),
            ("u'a' 'b'", s("ab")),
            ("'''a'''", s("a")),
            ("\"a\\'b\"", s("a'b")),
            ("r'\\''", s("\\'")),
            ("r'\\d'", s("\\d")),
            ("'\\d'", s("\\d")),
            ("'\\0'", s("\0")),
            ("'\\08'", s("\u{0}8")),
            ("'\\777'", s("\u{1ff}")),
            ("'a\\tb\\x41\\u00e9'", s("a\tbA\u{e9}")),
            ("b'bytes'", s("bytes")),
            ("Rb'x'", s("x")),
            ("b'\\u00e9'", s("\\u00e9")),
            ("'é'", s("é")),
            ("'03#pa33w0rd'", s("03#pa33w0rd")),
            ("['10.0.0.1/24']", seq(vec![s("10.0.0.1/24")])),
            ("[1 , 2 ,]", seq(vec![Value::Int(1), Value::Int(2)])),
            ("[\x0c1]", seq(vec![Value::Int(1)])),
            ("[...]", seq(vec![s("...")])),
            ("1,", seq(vec![Value::Int(1)])),
            ("1,2", seq(vec![Value::Int(1), Value::Int(2)])),
            ("()", seq(vec![])),
            ("(1,)", seq(vec![Value::Int(1)])),
            ("[]", seq(vec![])),
        ];
        for (text, expected) in cases {
            let got = value(text);
            assert!(same(&got, &expected), "{text:?}: {got:?} != {expected:?}");
        }
    }

    #[test]
    fn dicts_keep_first_place_and_last_value() {
        let Value::Map(entries) = value("{'k': 1, 'b': [1, {'c': None}], 'k': 2,}") else {
            panic!("not a map");
        };
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0.value, s("k"));
        assert_eq!(entries[0].1.value, Value::Int(2));
        assert!(matches!(value("{}"), Value::Map(m) if m.is_empty()));
    }

    /// Each of these is a SyntaxError or ValueError in CPython, so Ansible keeps the text.
    #[test]
    fn non_literals_stay_text() {
        for text in [
            "",
            "true",
            "FALSE",
            "sha1",
            "sha1 # secure",
            "010",
            "0777",
            "0o",
            "1__0",
            "1e",
            ".e5",
            "(,)",
            "{,}",
            "--1",
            "-True",
            "-'a'",
            "1+2",
            "10/24",
            "10.0.0.1/24",
            "[10.0.0.1/24]",
            "1.2.3",
            "'a' b'b'",
            "ur'x'",
            "f'x'",
            "[f'x']",
            "'\\x4'",
            "1abc",
            "0x1g",
            "1 2",
            "[1] [0]",
            "'a'[0]",
            "1if 1 else 2",
            "b'é'",
            "'unterminated",
            "[1, 2",
            "{'a' 1}",
            "x=y",
            "nginx",
            "a\0",
            "500ms",
            "{**a}",
            "lambda: 1",
        ] {
            assert_eq!(
                eval(text, Pos::default(), None),
                Literal::Text,
                "{text:?} should stay text"
            );
        }
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        assert_eq!(eval(&deep, Pos::default(), None), Literal::Text);
        let shallow = format!(
            "{}1{}",
            "[".repeat(MAX_NESTING - 1),
            "]".repeat(MAX_NESTING - 1)
        );
        assert!(matches!(
            eval(&shallow, Pos::default(), None),
            Literal::Value(_)
        ));
        let long = "1".repeat(MAX_DECIMAL_DIGITS + 1);
        assert_eq!(eval(&long, Pos::default(), None), Literal::Text);
    }

    #[test]
    fn unusable_literals_are_refused_with_a_reason() {
        for (text, reason) in [
            ("{1, 2}", "set"),
            ("{1}", "set"),
            ("1j", "complex"),
            ("1+2j", "complex"),
            ("[-1.5-2j]", "complex"),
            ("{[1]: 2}", "dict key"),
            ("'\\N{BULLET}'", "\\N{"),
            ("'\\ud800'", "surrogate"),
            ("b'\\xff'", "UTF-8"),
        ] {
            match eval(text, Pos::default(), None) {
                Literal::Unsupported { reason: r, .. } => {
                    assert!(r.contains(reason), "{text:?}: {r}")
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn positions_count_from_the_value() {
        let Literal::Value(node) = eval("['a', 'b']", Pos { line: 4, column: 9 }, None) else {
            panic!()
        };
        let Value::Seq(items) = node.value else {
            panic!()
        };
        assert_eq!(node.pos, Pos { line: 4, column: 9 });
        assert_eq!(
            items[1].pos,
            Pos {
                line: 4,
                column: 15
            }
        );
        let columns = [3, 4, 5, 9, 10];
        let Literal::Value(node) = eval("[1,2]", Pos { line: 1, column: 3 }, Some(&columns)) else {
            panic!()
        };
        let Value::Seq(items) = node.value else {
            panic!()
        };
        assert_eq!(items[1].pos.column, 9);
    }

    #[test]
    fn random_text_never_panics() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let alphabet: Vec<char> = "[](){}:,'\"\\#-+.0123456789eEjxXbBrRuUfNT _a\t"
            .chars()
            .collect();
        for _ in 0..20_000 {
            let len = rng.random_range(0..24);
            let text: String = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let _ = eval(&text, Pos::default(), None);
        }
    }
}
