//! The heartbeat message and its two wire encodings (docs/protocol.md §1): an ordered list of typed
//! fields, decoded from the netstring form (`###\n` … `%%%\n` plus a trailing auth netstring)
//! that Heartbeat 3.0.6 puts in every UDP datagram and from the classic `>>>\n name=value <<<\n`
//! form it still accepts, and encoded back byte for byte as cluster-glue writes it. This module
//! owns framing only; signatures over these bytes live in `auth`. Input is hostile: every length
//! prefix is checked against the bytes that remain before anything is sliced or allocated, and
//! size, nesting depth and field counts are capped, so a datagram can cost at most a bounded
//! amount of memory and time and never a panic.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// Largest datagram (MAXMSG, 256 KiB): glue refuses to send a message this big and the UDP read
/// buffer is this size, so nothing larger can come from a real daemon.
pub const MAX_MESSAGE: usize = 256 * 1024;
/// Deepest nesting of struct fields (glue's MAXDEPTH); the top-level message is depth 0.
pub const MAX_DEPTH: usize = 16;
/// Fields per message. Glue has no limit short of memory; v1 messages carry about a dozen, so
/// this only stops a datagram of thousands of tiny fields from costing thousands of allocations.
pub const MAX_FIELDS: usize = 1024;
/// Elements per list field (glue caps a packed list at 1024 bytes, so this is never reached by
/// a real sender).
pub const MAX_LIST_ITEMS: usize = 1024;

const NETSTRING_START: &[u8] = b"###\n";
const NETSTRING_END: &[u8] = b"%%%\n";
const CLASSIC_START: &[u8] = b">>>\n";
const CLASSIC_END: &[u8] = b"<<<\n";
/// A length prefix longer than this cannot describe anything inside `MAX_MESSAGE`; refusing
/// it early also keeps the number from overflowing.
const MAX_LEN_DIGITS: usize = 7;
/// In classic text a newline inside a string value is written as this byte (glue SPECIAL_SYM).
const STRING_NEWLINE: u8 = 19;
/// In classic text a nested message's newlines become the byte for its depth (glue
/// SPECIAL_SYMS), so that the nested text fits on one line of its parent.
const STRUCT_NEWLINE: [u8; MAX_DEPTH] = [
    20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 15, 16, 17, 18,
];

/// Why bytes are not a heartbeat message, or a message cannot be written in a form.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("datagram of {0} bytes exceeds the {MAX_MESSAGE}-byte maximum")]
    TooLarge(usize),
    #[error("neither a netstring (###) nor a classic (>>>) message")]
    UnknownFormat,
    #[error("message ends before its end marker")]
    MissingEnd,
    #[error("bad netstring at byte {0}")]
    BadNetstring(usize),
    #[error("netstring length at byte {0} runs past the end of the input")]
    LengthOverrun(usize),
    #[error("bad field at byte {0}")]
    BadField(usize),
    #[error("unknown field type {0}")]
    UnknownType(u8),
    #[error("bad list value")]
    BadList,
    #[error("bad base64 value in field {0}")]
    BadBase64(String),
    #[error("messages nested deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("more than {MAX_FIELDS} fields in one message")]
    TooManyFields,
    #[error("more than {MAX_LIST_ITEMS} elements in one list")]
    TooManyItems,
    #[error("{0} unexpected bytes after the message")]
    TrailingBytes(usize),
    #[error("field name {0:?} cannot be encoded")]
    BadName(String),
    #[error("field {0} cannot be written in the classic form")]
    NotClassic(String),
}

/// One field's value, by the type digit glue writes in front of it (`(0)` … `(5)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// `(0)`: text; v1 carries every field but the UUIDs like this. Bytes, since glue does
    /// not promise UTF-8.
    String(Vec<u8>),
    /// `(1)`: raw bytes (`srcuuid`, `destuuid`); base64 in the classic form.
    Binary(Vec<u8>),
    /// `(2)`: a nested message.
    Struct(Message),
    /// `(3)`: a list of non-empty strings.
    List(Vec<Vec<u8>>),
    /// `(4)`: compressed bytes, kept as they came (only Pacemaker sends these).
    Compressed(Vec<u8>),
    /// `(5)`: a nested message glue meant to compress before sending.
    Uncompressed(Message),
}

impl Value {
    pub fn string(text: &str) -> Value {
        Value::String(text.as_bytes().to_vec())
    }

    /// The type digit on the wire.
    pub fn type_digit(&self) -> u8 {
        match self {
            Value::String(_) => 0,
            Value::Binary(_) => 1,
            Value::Struct(_) => 2,
            Value::List(_) => 3,
            Value::Compressed(_) => 4,
            Value::Uncompressed(_) => 5,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: Value,
}

/// A heartbeat message: fields in wire order. Order is kept because the inner signature is
/// computed over it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    fields: Vec<Field>,
}

/// Which encoding a datagram used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Netstring,
    Classic,
}

/// One decoded datagram: the message plus what its signatures cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datagram {
    pub encoding: Encoding,
    pub message: Message,
    /// Netstring: the bytes the trailing auth covers (`###\n` through `%%%\n`). Classic: empty,
    /// its signature is the `auth` field.
    pub signed: Vec<u8>,
    /// Netstring: the trailing auth string (`<index> <token>`), absent only when the sender
    /// had no authkeys. Always `None` for classic.
    pub trailer: Option<Vec<u8>>,
    /// Classic: whether a NUL followed `<<<\n` (glue writes one).
    pub classic_nul: bool,
}

impl Message {
    pub fn new() -> Self {
        Message::default()
    }

    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn push(&mut self, name: &str, value: Value) {
        self.fields.push(Field {
            name: name.to_string(),
            value,
        });
    }

    pub fn push_str(&mut self, name: &str, value: &str) {
        self.push(name, Value::string(value));
    }

    /// Replaces the first field called `name` in place, or appends one (how heartbeat sets
    /// `auth`).
    pub fn set(&mut self, name: &str, value: Value) {
        match self.fields.iter_mut().find(|f| f.name == name) {
            Some(field) => field.value = value,
            None => self.push(name, value),
        }
    }

    /// Removes every field called `name`.
    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|f| f.name != name);
    }

    /// The first field called `name` (glue's lookup rule when names repeat).
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| &f.value)
    }

    /// A string field as text; `None` if absent, not a string, or not UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            Value::String(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    fn get_hex(&self, name: &str) -> Option<u64> {
        u64::from_str_radix(self.get_str(name)?, 16).ok()
    }

    /// `t`: the message type.
    pub fn msg_type(&self) -> Option<&str> {
        self.get_str("t")
    }

    /// `src`: the originating node.
    pub fn src(&self) -> Option<&str> {
        self.get_str("src")
    }

    /// `dest`: the addressed node of a unicast-style message.
    pub fn dest(&self) -> Option<&str> {
        self.get_str("dest")
    }

    /// `seq`, hex on the wire.
    pub fn seq(&self) -> Option<u64> {
        self.get_hex("seq")
    }

    /// `hg`, the sender's generation, hex on the wire.
    pub fn hg(&self) -> Option<u64> {
        self.get_hex("hg")
    }

    /// `ts`, the sender's clock in seconds, hex on the wire.
    pub fn ts(&self) -> Option<u64> {
        self.get_hex("ts")
    }

    /// `dt`, the deadtime the sender asks for in milliseconds, hex on the wire.
    pub fn dt(&self) -> Option<u64> {
        self.get_hex("dt")
    }

    /// `ttl`, decimal on the wire.
    pub fn ttl(&self) -> Option<u32> {
        self.get_str("ttl")?.parse().ok()
    }

    /// `ld`, the sender's raw /proc/loadavg line.
    pub fn ld(&self) -> Option<&str> {
        self.get_str("ld")
    }

    /// `auth`, the classic signature `<index> <token>`.
    pub fn auth(&self) -> Option<&str> {
        self.get_str("auth")
    }

    /// `srcuuid`, 16 raw bytes.
    pub fn srcuuid(&self) -> Option<[u8; 16]> {
        match self.get("srcuuid")? {
            Value::Binary(bytes) => bytes.as_slice().try_into().ok(),
            _ => None,
        }
    }

    /// The netstring body (`###\n` … `%%%\n`) exactly as glue writes it, without the trailer.
    pub fn to_netstring(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.write_netstring(&mut out, 0)?;
        if out.len() >= MAX_MESSAGE {
            return Err(WireError::TooLarge(out.len()));
        }
        Ok(out)
    }

    fn write_netstring(&self, out: &mut Vec<u8>, depth: usize) -> Result<(), WireError> {
        if depth >= MAX_DEPTH {
            return Err(WireError::TooDeep);
        }
        out.extend_from_slice(NETSTRING_START);
        for field in &self.fields {
            check_name(&field.name)?;
            let mut item = format!("({})", field.value.type_digit()).into_bytes();
            item.extend_from_slice(field.name.as_bytes());
            item.push(b'=');
            match &field.value {
                Value::String(v) | Value::Binary(v) | Value::Compressed(v) => {
                    item.extend_from_slice(v)
                }
                Value::Struct(m) | Value::Uncompressed(m) => {
                    m.write_netstring(&mut item, depth + 1)?
                }
                Value::List(items) => {
                    if items.iter().any(Vec::is_empty) {
                        return Err(WireError::BadList);
                    }
                    for element in items {
                        write_netstring_item(&mut item, element);
                    }
                }
            }
            write_netstring_item(out, &item);
        }
        out.extend_from_slice(NETSTRING_END);
        Ok(())
    }

    /// The classic text (`>>>\n` … `<<<\n`, no NUL), as scripts write into the FIFO.
    pub fn to_classic(&self) -> Result<Vec<u8>, WireError> {
        let mut out = CLASSIC_START.to_vec();
        self.write_classic_fields(&mut out, 0, false)?;
        out.extend_from_slice(CLASSIC_END);
        Ok(out)
    }

    /// The text the inner `auth` field signs (PROTOCOL §2.3): every field but `auth`, classic
    /// style, without the start and end lines.
    pub fn classic_sign_text(&self) -> Result<Vec<u8>, WireError> {
        let mut out = Vec::new();
        self.write_classic_fields(&mut out, 0, true)?;
        Ok(out)
    }

    fn write_classic_fields(
        &self,
        out: &mut Vec<u8>,
        depth: usize,
        skip_auth: bool,
    ) -> Result<(), WireError> {
        if depth >= MAX_DEPTH {
            return Err(WireError::TooDeep);
        }
        for field in &self.fields {
            if skip_auth && field.name == "auth" {
                continue;
            }
            check_name(&field.name)?;
            let not_classic = || WireError::NotClassic(field.name.clone());
            if !matches!(field.value, Value::String(_)) {
                out.extend_from_slice(format!("({})", field.value.type_digit()).as_bytes());
            }
            out.extend_from_slice(field.name.as_bytes());
            out.push(b'=');
            match &field.value {
                Value::String(v) => {
                    // glue copies C strings, so a NUL would silently cut the value.
                    if v.contains(&0) {
                        return Err(not_classic());
                    }
                    out.extend(
                        v.iter()
                            .map(|&b| if b == b'\n' { STRING_NEWLINE } else { b }),
                    );
                }
                Value::Binary(v) | Value::Compressed(v) => {
                    out.extend_from_slice(BASE64.encode(v).as_bytes())
                }
                Value::Struct(m) => {
                    let mut nested = CLASSIC_START.to_vec();
                    m.write_classic_fields(&mut nested, depth + 1, false)?;
                    nested.extend_from_slice(CLASSIC_END);
                    let sym = STRUCT_NEWLINE[depth];
                    if nested.contains(&sym) {
                        return Err(not_classic());
                    }
                    out.extend(nested.iter().map(|&b| if b == b'\n' { sym } else { b }));
                }
                Value::List(items) => {
                    if items.iter().any(Vec::is_empty) {
                        return Err(WireError::BadList);
                    }
                    for element in items {
                        write_netstring_item(out, element);
                    }
                }
                // glue has no classic form for a struct awaiting compression.
                Value::Uncompressed(_) => return Err(not_classic()),
            }
            out.push(b'\n');
        }
        Ok(())
    }
}

impl Datagram {
    /// Writes the datagram back: the netstring body and the trailer as received, or the
    /// classic text. Byte-identical to what a real daemon sent.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        match self.encoding {
            Encoding::Netstring => {
                let mut out = self.message.to_netstring()?;
                if let Some(trailer) = &self.trailer {
                    write_netstring_item(&mut out, trailer);
                }
                Ok(out)
            }
            Encoding::Classic => {
                let mut out = self.message.to_classic()?;
                if self.classic_nul {
                    out.push(0);
                }
                Ok(out)
            }
        }
    }
}

/// Decodes one UDP payload in either encoding.
pub fn decode(bytes: &[u8]) -> Result<Datagram, WireError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(WireError::TooLarge(bytes.len()));
    }
    if bytes.starts_with(NETSTRING_START) {
        let (message, body_len) = parse_netstring_message(bytes, 0)?;
        let trailer = if body_len == bytes.len() {
            None
        } else {
            let (auth, end) = peel(bytes, body_len)?;
            if end != bytes.len() {
                return Err(WireError::TrailingBytes(bytes.len() - end));
            }
            Some(auth.to_vec())
        };
        Ok(Datagram {
            encoding: Encoding::Netstring,
            message,
            signed: bytes[..body_len].to_vec(),
            trailer,
            classic_nul: false,
        })
    } else if bytes.starts_with(CLASSIC_START) {
        let (message, end) = parse_classic_message(bytes, 0)?;
        let classic_nul = match &bytes[end..] {
            [] => false,
            [0] => true,
            rest => return Err(WireError::TrailingBytes(rest.len())),
        };
        Ok(Datagram {
            encoding: Encoding::Classic,
            message,
            signed: Vec::new(),
            trailer: None,
            classic_nul,
        })
    } else {
        Err(WireError::UnknownFormat)
    }
}

/// Real field names are identifiers; these bytes would break one of the two encodings.
fn check_name(name: &str) -> Result<(), WireError> {
    if name.is_empty() || name.bytes().any(|b| matches!(b, b'=' | 0 | b'\n' | b'\r')) {
        return Err(WireError::BadName(name.to_string()));
    }
    Ok(())
}

fn write_netstring_item(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(data);
    out.push(b',');
}

/// Reads `<len>:<len bytes>,` at `pos`; returns the data and the position after the comma.
fn peel(input: &[u8], pos: usize) -> Result<(&[u8], usize), WireError> {
    let rest = &input[pos..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > MAX_LEN_DIGITS || rest.get(digits) != Some(&b':') {
        return Err(WireError::BadNetstring(pos));
    }
    // At most seven ASCII digits: always a valid usize.
    let len: usize = rest[..digits]
        .iter()
        .fold(0, |n, &d| n * 10 + usize::from(d - b'0'));
    let start = digits + 1;
    // The data and its comma must fit in what is left, checked before slicing.
    if len >= rest.len() - start {
        return Err(WireError::LengthOverrun(pos));
    }
    if rest[start + len] != b',' {
        return Err(WireError::BadNetstring(pos + start + len));
    }
    Ok((&rest[start..start + len], pos + start + len + 1))
}

/// Parses `###\n` fields `%%%\n` at the start of `input`; returns the message and the bytes
/// consumed.
fn parse_netstring_message(input: &[u8], depth: usize) -> Result<(Message, usize), WireError> {
    if depth >= MAX_DEPTH {
        return Err(WireError::TooDeep);
    }
    if !input.starts_with(NETSTRING_START) {
        return Err(WireError::UnknownFormat);
    }
    let mut pos = NETSTRING_START.len();
    let mut message = Message::new();
    loop {
        if input[pos..].starts_with(NETSTRING_END) {
            return Ok((message, pos + NETSTRING_END.len()));
        }
        if pos >= input.len() {
            return Err(WireError::MissingEnd);
        }
        if message.fields.len() == MAX_FIELDS {
            return Err(WireError::TooManyFields);
        }
        let (item, next) = peel(input, pos)?;
        message
            .fields
            .push(parse_netstring_field(item, pos, depth)?);
        pos = next;
    }
}

/// `(T)name=value` inside one netstring.
fn parse_netstring_field(item: &[u8], pos: usize, depth: usize) -> Result<Field, WireError> {
    let bad = || WireError::BadField(pos);
    let (kind, rest) = match item {
        [b'(', digit @ b'0'..=b'9', b')', rest @ ..] => (digit - b'0', rest),
        _ => return Err(bad()),
    };
    let eq = rest.iter().position(|&b| b == b'=').ok_or_else(bad)?;
    let name = std::str::from_utf8(&rest[..eq]).map_err(|_| bad())?;
    check_name(name).map_err(|_| bad())?;
    let raw = &rest[eq + 1..];
    let value = match kind {
        0 => Value::String(raw.to_vec()),
        1 => Value::Binary(raw.to_vec()),
        2 | 5 => {
            let (nested, used) = parse_netstring_message(raw, depth + 1)?;
            if used != raw.len() {
                return Err(WireError::TrailingBytes(raw.len() - used));
            }
            if kind == 2 {
                Value::Struct(nested)
            } else {
                Value::Uncompressed(nested)
            }
        }
        3 => Value::List(parse_list(raw)?),
        4 => Value::Compressed(raw.to_vec()),
        other => return Err(WireError::UnknownType(other)),
    };
    Ok(Field {
        name: name.to_string(),
        value,
    })
}

/// A packed string list: `<len>:<bytes>,` repeated, every element non-empty.
fn parse_list(raw: &[u8]) -> Result<Vec<Vec<u8>>, WireError> {
    let mut items = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        if items.len() == MAX_LIST_ITEMS {
            return Err(WireError::TooManyItems);
        }
        let (element, next) = peel(raw, pos).map_err(|_| WireError::BadList)?;
        if element.is_empty() {
            return Err(WireError::BadList);
        }
        items.push(element.to_vec());
        pos = next;
    }
    Ok(items)
}

/// Parses `>>>\n` lines `<<<\n` at the start of `input`; returns the message and the bytes
/// consumed through the end marker. Stricter than glue in one way: the end marker is required
/// (glue also stops at a NUL), since every classic writer puts it there.
fn parse_classic_message(input: &[u8], depth: usize) -> Result<(Message, usize), WireError> {
    if depth >= MAX_DEPTH {
        return Err(WireError::TooDeep);
    }
    if !input.starts_with(CLASSIC_START) {
        return Err(WireError::UnknownFormat);
    }
    let mut pos = CLASSIC_START.len();
    let mut message = Message::new();
    loop {
        // Blank lines and stray CRs between fields are skipped, as glue does.
        pos += input[pos..]
            .iter()
            .take_while(|&&b| b == b'\n' || b == b'\r')
            .count();
        if input[pos..].starts_with(CLASSIC_END) {
            return Ok((message, pos + CLASSIC_END.len()));
        }
        let line_len = input[pos..]
            .iter()
            .position(|&b| matches!(b, b'\n' | b'\r' | 0))
            .ok_or(WireError::MissingEnd)?;
        if input[pos + line_len] == 0 {
            return Err(WireError::MissingEnd);
        }
        if message.fields.len() == MAX_FIELDS {
            return Err(WireError::TooManyFields);
        }
        let line = &input[pos..pos + line_len];
        message.fields.push(parse_classic_field(line, pos, depth)?);
        pos += line_len;
    }
}

/// `[(T)]name=value` on one classic line.
fn parse_classic_field(line: &[u8], pos: usize, depth: usize) -> Result<Field, WireError> {
    let bad = || WireError::BadField(pos);
    let eq = line.iter().position(|&b| b == b'=').ok_or_else(bad)?;
    let (kind, name) = match &line[..eq] {
        // An explicit `(0)` is refused by glue ("wrong type").
        [b'(', digit @ b'1'..=b'9', b')', name @ ..] => (digit - b'0', name),
        [b'(', ..] => return Err(bad()),
        name => (0, name),
    };
    let name = std::str::from_utf8(name).map_err(|_| bad())?;
    check_name(name).map_err(|_| bad())?;
    let raw = &line[eq + 1..];
    // glue drops a line with an empty value.
    if raw.is_empty() {
        return Err(bad());
    }
    let base64 = |raw: &[u8]| {
        BASE64
            .decode(raw)
            .map_err(|_| WireError::BadBase64(name.to_string()))
    };
    let value = match kind {
        0 => Value::String(
            raw.iter()
                .map(|&b| if b == STRING_NEWLINE { b'\n' } else { b })
                .collect(),
        ),
        1 => Value::Binary(base64(raw)?),
        2 => {
            let sym = *STRUCT_NEWLINE.get(depth).ok_or(WireError::TooDeep)?;
            let text: Vec<u8> = raw
                .iter()
                .map(|&b| if b == sym { b'\n' } else { b })
                .collect();
            let (nested, used) = parse_classic_message(&text, depth + 1)?;
            if used != text.len() {
                return Err(WireError::TrailingBytes(text.len() - used));
            }
            Value::Struct(nested)
        }
        3 => Value::List(parse_list(raw)?),
        4 => Value::Compressed(base64(raw)?),
        other => return Err(WireError::UnknownType(other)),
    };
    Ok(Field {
        name: name.to_string(),
        value,
    })
}

/// Text for people: printable ASCII as is, everything else escaped like the vectors' files.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            0 => out.push_str("\\0"),
            b'\\' => out.push_str("\\\\"),
            32..=126 => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// How many bytes of a binary value are shown in hex before eliding the rest.
const HEX_SHOWN: usize = 32;

impl Message {
    fn fmt_indented(&self, f: &mut fmt::Formatter<'_>, indent: usize) -> fmt::Result {
        let pad = "  ".repeat(indent);
        for field in &self.fields {
            let name = &field.name;
            match &field.value {
                Value::String(v) => writeln!(f, "{pad}{name} = {}", escape(v))?,
                Value::Binary(v) | Value::Compressed(v) => {
                    let kind = if matches!(field.value, Value::Binary(_)) {
                        "binary"
                    } else {
                        "compressed"
                    };
                    let hex: String = v
                        .iter()
                        .take(HEX_SHOWN)
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    let more = if v.len() > HEX_SHOWN { "…" } else { "" };
                    writeln!(f, "{pad}{name} = ({kind}, {} bytes) {hex}{more}", v.len())?
                }
                Value::Struct(m) | Value::Uncompressed(m) => {
                    writeln!(f, "{pad}{name} = (message, {} fields)", m.fields.len())?;
                    m.fmt_indented(f, indent + 1)?
                }
                Value::List(items) => {
                    let shown: Vec<String> = items.iter().map(|i| escape(i)).collect();
                    writeln!(f, "{pad}{name} = (list) [{}]", shown.join(", "))?
                }
            }
        }
        Ok(())
    }
}

/// One field per line, `name = value`; nested messages indented by two spaces per level;
/// binary values as length and a hex prefix.
impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_indented(f, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        let mut m = Message::new();
        m.push_str("t", "status");
        m.push("srcuuid", Value::Binary(vec![0x86, 0x7f, 0, 0x0a]));
        m.push_str("seq", "1a");
        m
    }

    #[test]
    fn netstring_layout_matches_glue() {
        let body = sample().to_netstring().unwrap();
        assert_eq!(
            body,
            b"###\n11:(0)t=status,15:(1)srcuuid=\x86\x7f\x00\x0a,9:(0)seq=1a,%%%\n"
        );
        let d = decode(&body).unwrap();
        assert_eq!(d.message, sample());
        assert_eq!(d.trailer, None);
        assert_eq!(d.message.seq(), Some(0x1a));
    }

    #[test]
    fn classic_round_trip_and_sign_text() {
        let mut m = sample();
        m.push_str("info", "two\nlines");
        m.push_str("auth", "1 abc");
        let text = m.to_classic().unwrap();
        assert_eq!(
            text,
            b">>>\nt=status\n(1)srcuuid=hn8ACg==\nseq=1a\ninfo=two\x13lines\nauth=1 abc\n<<<\n"
        );
        assert_eq!(decode(&text).unwrap().message, m);
        assert_eq!(
            m.classic_sign_text().unwrap(),
            b"t=status\n(1)srcuuid=hn8ACg==\nseq=1a\ninfo=two\x13lines\n"
        );
    }

    #[test]
    fn nested_list_and_compressed_round_trip_in_both_forms() {
        let mut inner = sample();
        inner.push("deeper", Value::Struct(sample()));
        let mut m = Message::new();
        m.push("child", Value::Struct(inner));
        m.push("names", Value::List(vec![b"a".to_vec(), b"bc".to_vec()]));
        m.push("z", Value::Compressed(vec![1, 2, 3]));
        let ns = m.to_netstring().unwrap();
        assert_eq!(decode(&ns).unwrap().message, m);
        let classic = m.to_classic().unwrap();
        assert_eq!(decode(&classic).unwrap().message, m);
        let shown = m.to_string();
        assert!(
            shown.contains("child = (message, 4 fields)\n  t = status\n"),
            "{shown}"
        );
        assert!(shown.contains("    t = status\n"), "{shown}");
        assert!(shown.contains("names = (list) [a, bc]"), "{shown}");
    }

    #[test]
    fn uncompressed_struct_has_no_classic_form() {
        let mut m = Message::new();
        m.push("x", Value::Uncompressed(sample()));
        assert_eq!(decode(&m.to_netstring().unwrap()).unwrap().message, m);
        assert_eq!(m.to_classic(), Err(WireError::NotClassic("x".into())));
    }

    #[test]
    fn set_replaces_in_place() {
        let mut m = sample();
        m.set("t", Value::string("x"));
        m.set("new", Value::string("y"));
        let names: Vec<&str> = m.fields().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["t", "srcuuid", "seq", "new"]);
        assert_eq!(m.msg_type(), Some("x"));
        m.remove("new");
        assert_eq!(m.fields().len(), 3);
    }

    #[test]
    fn length_prefix_is_checked_before_use() {
        assert_eq!(
            decode(b"###\n9999999:(0)t=x,%%%\n"),
            Err(WireError::LengthOverrun(4))
        );
        assert_eq!(
            decode(b"###\n99999999:(0)t=x,%%%\n"),
            Err(WireError::BadNetstring(4))
        );
        assert_eq!(
            decode(b"###\n6:(0)t=x;%%%\n"),
            Err(WireError::BadNetstring(12))
        );
        assert_eq!(decode(b"###\n6:(0)t=x,"), Err(WireError::MissingEnd));
        assert_eq!(
            decode(b"###\n6:(9)t=x,%%%\n"),
            Err(WireError::UnknownType(9))
        );
        assert_eq!(decode(b"###\n6:(0)=xx,%%%\n"), Err(WireError::BadField(4)));
        assert_eq!(
            decode(b"###\n%%%\n3:1 a,x"),
            Err(WireError::TrailingBytes(1))
        );
        assert_eq!(decode(b"hello"), Err(WireError::UnknownFormat));
    }

    #[test]
    fn limits_are_enforced() {
        assert_eq!(
            decode(&vec![b'#'; MAX_MESSAGE + 1]),
            Err(WireError::TooLarge(MAX_MESSAGE + 1))
        );
        let mut many = b"###\n".to_vec();
        for _ in 0..=MAX_FIELDS {
            many.extend_from_slice(b"6:(0)a=b,");
        }
        many.extend_from_slice(b"%%%\n");
        assert_eq!(decode(&many), Err(WireError::TooManyFields));
        let mut deep = Message::new();
        deep.push_str("t", "x");
        for _ in 0..MAX_DEPTH {
            let mut outer = Message::new();
            outer.push("m", Value::Struct(deep));
            deep = outer;
        }
        assert_eq!(deep.to_netstring(), Err(WireError::TooDeep));
        // Build the over-deep nesting by hand: the decoder must refuse it too.
        let mut bytes = b"###\n6:(0)t=x,%%%\n".to_vec();
        for _ in 0..MAX_DEPTH {
            let mut item = b"(2)m=".to_vec();
            item.extend_from_slice(&bytes);
            let mut outer = b"###\n".to_vec();
            write_netstring_item(&mut outer, &item);
            outer.extend_from_slice(b"%%%\n");
            bytes = outer;
        }
        assert_eq!(decode(&bytes), Err(WireError::TooDeep));
    }

    #[test]
    fn classic_rules() {
        // CR/LF tolerant, trailing NUL kept, explicit (0) and empty values refused.
        let d = decode(b">>>\n\r\nt=status\r\n\nsrc=a\n<<<\n\0").unwrap();
        assert!(d.classic_nul);
        assert_eq!(d.message.src(), Some("a"));
        assert!(decode(b">>>\n(0)t=x\n<<<\n").is_err());
        assert!(decode(b">>>\nt=\n<<<\n").is_err());
        assert!(decode(b">>>\nt=x\n").is_err());
        assert!(decode(b">>>\nt=x\n<<<\nzz").is_err());
        assert!(decode(b">>>\n(1)u=!!\n<<<\n").is_err());
    }

    #[test]
    fn display_shows_binary_as_length_and_hex() {
        assert_eq!(
            sample().to_string(),
            "t = status\nsrcuuid = (binary, 4 bytes) 867f000a\nseq = 1a\n"
        );
    }
}
