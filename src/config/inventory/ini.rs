//! Ansible's INI inventory format (the classic `hosts` file): `[group]` sections of host lines,
//! `[group:vars]` sections of `key=value` lines, `[group:children]` sections of group names,
//! host lines before any section in `ungrouped`, `#` and `;` comment lines. This module owns the
//! grammar and the value rules of Ansible's `ini` inventory plugin — a host line is split as
//! shlex does (`shlex`), every value goes through Python's `literal_eval` (`literal`), a
//! `host:port` pattern sets `ansible_port`, ranges expand as in YAML — and hands `Layout` a
//! [`Document`] of groups and hosts whose every variable carries its file:line:column. Merging
//! them with `group_vars/`, `host_vars/` and the precedence rules is `Layout`'s job, one code path
//! for both formats.

mod literal;
mod shlex;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::diag::{Diagnostic, Diagnostics, Origin};
use super::layout::{MAX_HOSTS, Var, Vars, check_host_name, expand_host_pattern, valid_group_name};
use super::yaml::{Node, Pos, Value};

use literal::Literal;

/// An INI inventory as `Layout` takes it: groups and hosts in the order the file first names
/// them, every group (implicit `ungrouped` included) with what its sections declared.
#[derive(Debug, Default)]
pub struct Document {
    pub groups: Vec<GroupDecl>,
    pub hosts: Vec<HostDecl>,
}

#[derive(Debug)]
pub struct GroupDecl {
    pub name: String,
    /// The group's first section header (or first host line, for `ungrouped`).
    pub origin: Origin,
    pub vars: Vars,
    pub children: Vec<String>,
    pub hosts: Vec<String>,
}

#[derive(Debug)]
pub struct HostDecl {
    pub name: String,
    /// The first line naming the host.
    pub origin: Origin,
    pub vars: Vars,
}

/// What the lines under the current section header are.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Hosts,
    Vars,
    Children,
    /// After a broken header: the lines are skipped rather than misread.
    Skipped,
}

/// Lines as Python's `str.splitlines` cuts them (which is how Ansible numbers them): at `\n`,
/// `\r\n`, `\r`, `\v`, `\f`, `\x1c`–`\x1e`, `\x85`, `\u2028` and `\u2029`.
pub fn text_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let breaks = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if !breaks {
            continue;
        }
        lines.push(&text[start..i]);
        start = i + c.len_utf8();
        if c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n') {
            chars.next();
            start += 1;
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// The lines of a file that is not UTF-8 throughout. Ansible accepts that when only comment
/// lines (starting with `#` or `;` in their first byte) hold the invalid bytes, and blanks
/// those; any other invalid byte is an error at its line and column.
pub fn byte_lines(bytes: &[u8]) -> Result<Vec<String>, Pos> {
    let mut lines = Vec::new();
    let mut rest = bytes;
    let mut line_no: u32 = 0;
    while !rest.is_empty() {
        line_no = line_no.saturating_add(1);
        let end = rest
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(rest.len());
        let line = &rest[..end];
        let mut next = end;
        if rest.get(end) == Some(&b'\r') && rest.get(end + 1) == Some(&b'\n') {
            next += 2;
        } else if end < rest.len() {
            next += 1;
        }
        rest = &rest[next..];
        match std::str::from_utf8(line) {
            Ok(text) => lines.push(text.to_string()),
            Err(_) if matches!(line.first(), Some(b'#' | b';')) => lines.push(String::new()),
            Err(e) => {
                let valid = String::from_utf8_lossy(&line[..e.valid_up_to()]);
                let column = u32::try_from(valid.chars().count() + 1).unwrap_or(u32::MAX);
                return Err(Pos {
                    line: line_no,
                    column,
                });
            }
        }
    }
    Ok(lines)
}

/// Whether an inventory that parsed as neither format was meant as INI, so the INI reader's
/// errors are the ones shown: its first significant line is a section header, or is neither a
/// YAML key, list item, document marker nor flow mapping.
pub fn meant_as_ini(lines: &[&str]) -> bool {
    let Some(first) = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
    else {
        return false;
    };
    if first.starts_with('[') {
        return true;
    }
    let yaml_like = first.ends_with(':')
        || first.contains(": ")
        || first.starts_with("- ")
        || first.starts_with("---")
        || first.starts_with('{');
    !yaml_like
}

/// Reads an INI inventory. Every problem goes to `diags` (errors stop the load; a variable set
/// twice for one host or group is a warning, the later value winning as in Ansible); what could
/// be read is returned regardless.
pub fn parse<S: AsRef<str>>(file: &Path, lines: &[S], diags: &mut Diagnostics) -> Document {
    let mut reader = Reader {
        file,
        diags,
        doc: Document::default(),
        group_index: HashMap::new(),
        host_index: HashMap::new(),
        declared: ["all", "ungrouped"].iter().map(|s| s.to_string()).collect(),
        references: Vec::new(),
        members: HashSet::new(),
        hosts_total: 0,
        over_budget: false,
    };
    let mut group = "ungrouped".to_string();
    let mut section = Section::Hosts;
    for (index, raw) in lines.iter().enumerate() {
        let line_no = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let raw = raw.as_ref();
        let line = raw.trim_matches(py_space);
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let lead = raw.chars().take_while(|&c| py_space(c)).count();
        let column = u32::try_from(lead + 1).unwrap_or(u32::MAX);
        let pos = Pos {
            line: line_no,
            column,
        };
        if line.starts_with('[') {
            match reader.header(line, pos) {
                Header::Section(name, kind) => {
                    group = name;
                    section = kind;
                    continue;
                }
                Header::Broken => {
                    section = Section::Skipped;
                    continue;
                }
                // `[1:3]-node` or `[10.0.0.1]:22`: a host line that starts with a bracket.
                Header::HostLine => {}
            }
        }
        match section {
            Section::Hosts => reader.host_line(&group, line, pos),
            Section::Vars => reader.vars_line(&group, line, pos),
            Section::Children => reader.children_line(&group, line, pos),
            Section::Skipped => {}
        }
    }
    reader.check_references();
    reader.doc
}

enum Header {
    Section(String, Section),
    Broken,
    HostLine,
}

enum Reference {
    Vars,
    Child { parent: String },
}

struct Reader<'a> {
    file: &'a Path,
    diags: &'a mut Diagnostics,
    doc: Document,
    group_index: HashMap<String, usize>,
    host_index: HashMap<String, usize>,
    /// Groups with a `[g]` or `[g:children]` header; Ansible requires one for every group a
    /// `[g:vars]` header or a `:children` section names.
    declared: HashSet<String>,
    references: Vec<(String, Origin, Reference)>,
    /// (group, host) pairs already listed, by index.
    members: HashSet<(usize, usize)>,
    hosts_total: usize,
    over_budget: bool,
}

/// Python's `str.strip()` whitespace, which Ansible trims lines with.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

fn at(pos: Pos, offset: usize) -> Pos {
    Pos {
        line: pos.line,
        column: pos
            .column
            .saturating_add(u32::try_from(offset).unwrap_or(u32::MAX)),
    }
}

/// Python's `\w`: letters, digits and `_`.
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Reader<'_> {
    fn origin(&self, pos: Pos) -> Origin {
        Origin::new(self.file, pos)
    }

    fn error(
        &mut self,
        pos: Pos,
        key: Option<&str>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::error(self.origin(pos), key, message);
        self.diags.push(d);
        let last = self.diags.0.len() - 1;
        &mut self.diags.0[last]
    }

    fn hint(&mut self, pos: Pos, key: Option<&str>, message: impl Into<String>, hint: &str) {
        let d = self.error(pos, key, message);
        d.hint = Some(hint.to_string());
    }

    /// A line starting with `[`: a section header (Ansible's `^\[([^:\]\s]+)(?::(\w+))?\]\s*(#.*)?$`),
    /// a broken one, or a host line that merely starts with a bracket.
    fn header(&mut self, line: &str, pos: Pos) -> Header {
        let chars: Vec<char> = line.chars().collect();
        let name_len = chars[1..]
            .iter()
            .take_while(|&&c| c != ':' && c != ']' && !py_space(c))
            .count();
        let mut i = 1 + name_len;
        let mut kind: Option<String> = None;
        if name_len > 0 && chars.get(i) == Some(&':') {
            let len = chars[i + 1..].iter().take_while(|&&c| word_char(c)).count();
            if len > 0 {
                kind = Some(chars[i + 1..i + 1 + len].iter().collect());
                i += 1 + len;
            }
        }
        let closed = name_len > 0 && chars.get(i) == Some(&']');
        let rest: String = if closed {
            chars[i + 1..].iter().collect()
        } else {
            String::new()
        };
        let rest = rest.trim_start_matches(py_space);
        let valid = closed && (rest.is_empty() || rest.starts_with('#'));
        if !valid {
            if !line.contains(']') {
                self.hint(
                    pos,
                    None,
                    format!("unterminated section header `{line}`"),
                    "close it with `]`: `[group]`, `[group:vars]` or `[group:children]`",
                );
                return Header::Broken;
            }
            if line.ends_with(']') {
                self.hint(
                    pos,
                    None,
                    format!("`{line}` is not a valid section header"),
                    "write `[group]`, `[group:vars]` or `[group:children]`, with no spaces inside the brackets",
                );
                return Header::Broken;
            }
            return Header::HostLine;
        }
        let name: String = chars[1..1 + name_len].iter().collect();
        let name_pos = at(pos, 1);
        let section = match kind.as_deref() {
            None | Some("hosts") => Section::Hosts,
            Some("vars") => Section::Vars,
            Some("children") => Section::Children,
            Some(other) => {
                self.hint(
                    at(pos, 2 + name_len),
                    Some(&name),
                    format!("section `[{name}:{other}]` has an unknown type `{other}`"),
                    "a section is `[group]`, `[group:vars]` or `[group:children]`",
                );
                return Header::Broken;
            }
        };
        if !valid_group_name(&name) {
            self.hint(
                name_pos,
                Some(&name),
                "not a valid group name",
                "use letters, digits, `_` and `-` only",
            );
            return Header::Broken;
        }
        let first_declaration = section != Section::Vars && !self.declared.contains(&name);
        let origin = self.origin(name_pos);
        let group = self.group(&name, name_pos);
        // A group is placed at its own header, not where a `:children` entry or a `:vars`
        // header named it first.
        if first_declaration {
            group.origin = origin;
        }
        if section == Section::Vars {
            let origin = self.origin(name_pos);
            self.references
                .push((name.clone(), origin, Reference::Vars));
        } else {
            self.declared.insert(name.clone());
        }
        Header::Section(name, section)
    }

    fn group(&mut self, name: &str, pos: Pos) -> &mut GroupDecl {
        let index = match self.group_index.get(name) {
            Some(&i) => i,
            None => {
                self.doc.groups.push(GroupDecl {
                    name: name.to_string(),
                    origin: Origin::new(self.file, pos),
                    vars: Vars::new(),
                    children: Vec::new(),
                    hosts: Vec::new(),
                });
                self.group_index
                    .insert(name.to_string(), self.doc.groups.len() - 1);
                self.doc.groups.len() - 1
            }
        };
        &mut self.doc.groups[index]
    }

    /// A host line: a host pattern (with an optional `:port`), then `key=value` words.
    fn host_line(&mut self, group: &str, line: &str, pos: Pos) {
        let words = match shlex::split(line, pos.column) {
            Ok(words) => words,
            Err(e) => {
                self.hint(
                    Pos {
                        line: pos.line,
                        column: e.column,
                    },
                    None,
                    format!("cannot split the host line: {}", e.message),
                    "a value with spaces or `#` is quoted whole: key=\"a b\"",
                );
                return;
            }
        };
        let Some((first, rest)) = words.split_first() else {
            return;
        };
        let pattern_pos = Pos {
            line: pos.line,
            column: first.column,
        };
        let Some((pattern, port)) = self.host_pattern(&first.text, pattern_pos) else {
            return;
        };
        let mut vars = Vars::new();
        if let Some((port, column)) = port {
            vars.insert(
                "ansible_port".into(),
                self.var(
                    port,
                    Pos {
                        line: pos.line,
                        column,
                    },
                ),
            );
        }
        for word in rest {
            let word_pos = Pos {
                line: pos.line,
                column: word.column,
            };
            let Some(eq) = word.text.find('=') else {
                self.hint(
                    word_pos,
                    None,
                    format!("expected key=value after the host, found `{}`", word.text),
                    "host variables are `key=value`; a value with spaces is quoted whole: key=\"a b\"",
                );
                continue;
            };
            let key = &word.text[..eq];
            if key.is_empty() {
                self.error(word_pos, None, "a variable needs a name before `=`");
                continue;
            }
            let skip = key.chars().count() + 1;
            let columns = &word.columns[skip.min(word.columns.len())..];
            let value_pos = Pos {
                line: pos.line,
                column: columns.first().copied().unwrap_or(word_pos.column),
            };
            let key_pos = Pos {
                line: pos.line,
                column: word.columns.first().copied().unwrap_or(word_pos.column),
            };
            let text = &word.text[eq + 1..];
            if let Some(node) = self.value(key, text, value_pos, Some(columns)) {
                vars.insert(
                    key.to_string(),
                    Var {
                        node,
                        origin: self.origin(key_pos),
                    },
                );
            }
        }
        let names = self.expand(&pattern, pattern_pos, line);
        for name in names {
            self.add_host(group, &name, pattern_pos, &vars);
        }
    }

    fn var(&self, value: Value, pos: Pos) -> Var {
        Var {
            node: Node { value, pos },
            origin: self.origin(pos),
        }
    }

    /// Splits `host:port` as Ansible's `parse_address` does: the port is taken only when what is
    /// left is a host name or IPv4 address (ranges allowed); otherwise the whole word is the
    /// pattern. Returns the pattern and the port with its column.
    fn host_pattern(&mut self, word: &str, pos: Pos) -> Option<(String, Option<(Value, u32)>)> {
        if word == "---" {
            self.hint(
                pos,
                None,
                "`---` is not a host",
                "this looks like a YAML document; check its syntax",
            );
            return None;
        }
        let mut address = word.to_string();
        let mut port = None;
        if let Some(inner) = bracketed_host_port(&address) {
            port = Some(inner.1);
            address = inner.0;
        }
        if let Some(inner) = host_port(&address) {
            port = Some(inner.1);
            address = inner.0;
        }
        let (pattern, port) = match port {
            Some(digits) if looks_like_host(&address) => {
                let offset = word.chars().count() - digits.chars().count();
                let value = digits
                    .parse::<i64>()
                    .map_or_else(|_| Value::Str(digits.clone()), Value::Int);
                (address, Some((value, at(pos, offset).column)))
            }
            _ => (word.to_string(), None),
        };
        if port.is_none() && word.ends_with(':') {
            self.hint(
                pos,
                None,
                format!("`{word}`: a host pattern may not end with `:`"),
                "`:` is reserved for a port, as in `host:2222`",
            );
            return None;
        }
        Some((pattern, port))
    }

    fn expand(&mut self, pattern: &str, pos: Pos, line: &str) -> Vec<String> {
        if self.over_budget {
            // Reported once; expanding the rest would only cost time.
            return Vec::new();
        }
        let names = match expand_host_pattern(pattern) {
            Ok(names) => names,
            Err(message) => {
                let hint = if line.starts_with('[') {
                    "a section header may be followed only by a `#` comment"
                } else {
                    "ranges look like `node[1:3]`, `web[01:10]`, `db-[a:f]` or `n[1:9:2]`"
                };
                self.hint(pos, Some(pattern), message, hint);
                return Vec::new();
            }
        };
        self.hosts_total = self.hosts_total.saturating_add(names.len());
        if self.hosts_total > MAX_HOSTS {
            self.over_budget = true;
            self.hint(
                pos,
                Some(pattern),
                format!("the inventory declares more than {MAX_HOSTS} hosts"),
                "split it into smaller inventories, or narrow the ranges",
            );
            return Vec::new();
        }
        names
    }

    fn add_host(&mut self, group: &str, name: &str, pos: Pos, vars: &Vars) {
        if let Err(message) = check_host_name(name) {
            self.error(pos, Some(name), message);
            return;
        }
        let index = match self.host_index.get(name) {
            Some(&i) => i,
            None => {
                self.doc.hosts.push(HostDecl {
                    name: name.to_string(),
                    origin: self.origin(pos),
                    vars: Vars::new(),
                });
                self.host_index
                    .insert(name.to_string(), self.doc.hosts.len() - 1);
                self.doc.hosts.len() - 1
            }
        };
        for (key, var) in vars {
            let previous = self.doc.hosts[index].vars.insert(key.clone(), var.clone());
            if let Some(previous) = previous {
                self.redefined(&var.origin, key, name, &previous.origin);
            }
        }
        self.group(group, pos);
        let group_index = self.group_index[group];
        // A set answers "already listed?", so a group of many ranges stays linear.
        if self.members.insert((group_index, index)) {
            self.doc.groups[group_index].hosts.push(name.to_string());
        }
    }

    fn redefined(&mut self, origin: &Origin, key: &str, owner: &str, first: &Origin) {
        let first_line = first.pos.map(|p| p.line).unwrap_or_default();
        self.diags.push(
            Diagnostic::warning(
                origin.clone(),
                Some(key),
                format!("set again for `{owner}` (first at line {first_line}); the later value wins, as in Ansible"),
            )
            .hint("keep one of the two"),
        );
    }

    /// A `[group:vars]` line: `key=value`, everything after the first `=` being the value.
    fn vars_line(&mut self, group: &str, line: &str, pos: Pos) {
        let Some(eq) = line.find('=') else {
            self.hint(
                pos,
                Some(group),
                format!("expected key=value, found `{line}`"),
                "a `:vars` section holds one `key=value` per line",
            );
            return;
        };
        let key = line[..eq].trim_matches(py_space);
        if key.is_empty() {
            self.error(pos, Some(group), "a variable needs a name before `=`");
            return;
        }
        let after = &line[eq + 1..];
        let lead = after.chars().take_while(|&c| py_space(c)).count();
        let value_pos = at(pos, line[..eq].chars().count() + 1 + lead);
        let text = after.trim_matches(py_space);
        let Some(node) = self.value(key, text, value_pos, None) else {
            return;
        };
        let origin = self.origin(pos);
        let var = Var { node, origin };
        let previous = self
            .group(group, pos)
            .vars
            .insert(key.to_string(), var.clone());
        if let Some(previous) = previous {
            self.redefined(&var.origin, key, group, &previous.origin);
        }
    }

    /// A value as Ansible's `_parse_value` reads it: a Python literal, or else the text itself.
    fn value(&mut self, key: &str, text: &str, pos: Pos, columns: Option<&[u32]>) -> Option<Node> {
        match literal::eval(text, pos, columns) {
            Literal::Value(node) => Some(node),
            Literal::Text => Some(Node {
                value: Value::Str(text.to_string()),
                pos,
            }),
            Literal::Unsupported { column, reason } => {
                self.hint(
                    Pos {
                        line: pos.line,
                        column,
                    },
                    Some(key),
                    format!("the value is {reason}"),
                    "use a string, number, boolean, list or dict",
                );
                None
            }
        }
    }

    /// A `[group:children]` line: one group name, optionally followed by a `#` comment.
    fn children_line(&mut self, parent: &str, line: &str, pos: Pos) {
        let name_len = line
            .chars()
            .take_while(|&c| c != ':' && c != ']' && !py_space(c))
            .count();
        let name: String = line.chars().take(name_len).collect();
        let rest: String = line.chars().skip(name_len).collect();
        let rest = rest.trim_start_matches(py_space);
        if name.is_empty() || !(rest.is_empty() || rest.starts_with('#')) {
            self.hint(
                pos,
                Some(parent),
                format!("expected a group name, found `{line}`"),
                "a `:children` section lists one group name per line",
            );
            return;
        }
        if !valid_group_name(&name) {
            self.hint(
                pos,
                Some(&name),
                "not a valid group name",
                "use letters, digits, `_` and `-` only",
            );
            return;
        }
        if name == parent {
            self.error(pos, Some(&name), "a group cannot be its own child");
            return;
        }
        let origin = self.origin(pos);
        self.references.push((
            name.clone(),
            origin,
            Reference::Child {
                parent: parent.to_string(),
            },
        ));
        let g = self.group(parent, pos);
        if !g.children.contains(&name) {
            g.children.push(name.clone());
        }
        self.group(&name, pos);
    }

    /// Ansible refuses a `[g:vars]` section or a `:children` entry for a group that no `[g]` or
    /// `[g:children]` header declares, wherever in the file that header is.
    fn check_references(&mut self) {
        let references = std::mem::take(&mut self.references);
        for (name, origin, reference) in references {
            if self.declared.contains(&name) {
                continue;
            }
            let message = match reference {
                Reference::Vars => {
                    format!("`[{name}:vars]` is for a group the inventory never declares")
                }
                Reference::Child { parent } => {
                    format!(
                        "`[{parent}:children]` names `{name}`, a group the inventory never declares"
                    )
                }
            };
            self.diags.push(
                Diagnostic::error(origin, Some(&name), message).hint(format!(
                    "declare it with a `[{name}]` section (an empty one will do), as Ansible requires"
                )),
            );
        }
    }
}

/// `[host]:port` (how an IPv6 address takes a port).
fn bracketed_host_port(word: &str) -> Option<(String, String)> {
    let inner = word.strip_prefix('[')?;
    let (host, port) = inner.rsplit_once("]:")?;
    (!host.is_empty() && is_digits(port)).then(|| (host.to_string(), port.to_string()))
}

/// `host:port`, where the host holds no `:` outside its `[…]` ranges.
fn host_port(word: &str) -> Option<(String, String)> {
    let (host, port) = word.rsplit_once(':')?;
    if !is_digits(port) {
        return None;
    }
    let mut in_range = false;
    for c in host.chars() {
        match c {
            '[' if !in_range => in_range = true,
            ']' if in_range => in_range = false,
            ':' | '[' | ']' if !in_range => return None,
            '[' => return None,
            _ => {}
        }
    }
    (!in_range).then(|| (host.to_string(), port.to_string()))
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Ansible's host-name test for `parse_address`: dot-separated labels of word characters and
/// `-` (ranges allowed), none starting with `-` nor ending with `-` or `_`. An IPv4 address
/// passes too.
fn looks_like_host(address: &str) -> bool {
    let mut plain = String::new();
    let mut in_range = false;
    for c in address.chars() {
        match c {
            '[' => in_range = true,
            ']' => {
                in_range = false;
                plain.push('0');
            }
            _ if in_range => {}
            _ => plain.push(c),
        }
    }
    !plain.is_empty()
        && plain.split('.').all(|label| {
            let first = label.chars().next();
            let last = label.chars().last();
            first.is_some_and(word_char)
                && !last.is_some_and(|c| c == '-' || c == '_')
                && label.chars().all(|c| word_char(c) || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (Document, Diagnostics) {
        let mut diags = Diagnostics::default();
        let doc = parse(Path::new("hosts"), &text_lines(text), &mut diags);
        (doc, diags)
    }

    fn group<'a>(doc: &'a Document, name: &str) -> &'a GroupDecl {
        doc.groups
            .iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| panic!("no group {name}"))
    }

    fn host<'a>(doc: &'a Document, name: &str) -> &'a HostDecl {
        doc.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    fn errors(text: &str) -> String {
        let (_, diags) = read(text);
        assert!(diags.has_errors(), "expected an error for {text:?}");
        diags.to_string()
    }

    #[test]
    fn sections_hosts_vars_children() {
        let (doc, diags) = read(
            "; a comment\n# another\ntop1 a=1\n[web]\nweb[01:03] ansible_user=root\ndb-[a:c]\n\n[web:vars]\nha_vips=['10.0.0.10/24'] # the VIP\nha_auth = sha1\n[grp:children]\nweb  # child\n",
        );
        assert!(diags.is_empty(), "{diags}");
        let ungrouped = group(&doc, "ungrouped");
        assert_eq!(ungrouped.hosts, ["top1"]);
        let web = group(&doc, "web");
        assert_eq!(
            web.hosts,
            ["web01", "web02", "web03", "db-a", "db-b", "db-c"]
        );
        assert_eq!(web.origin.pos, Some(Pos { line: 4, column: 2 }));
        let Value::Seq(vips) = &web.vars["ha_vips"].node.value else {
            panic!("ha_vips is not a list")
        };
        assert_eq!(vips[0].value, Value::Str("10.0.0.10/24".into()));
        assert_eq!(
            vips[0].pos,
            Pos {
                line: 9,
                column: 10
            }
        );
        assert_eq!(web.vars["ha_auth"].node.value, Value::Str("sha1".into()));
        assert_eq!(
            web.vars["ha_auth"].node.pos,
            Pos {
                line: 10,
                column: 11
            }
        );
        assert_eq!(group(&doc, "grp").children, ["web"]);
        assert_eq!(
            host(&doc, "web02").vars["ansible_user"].node.value,
            Value::Str("root".into())
        );
        assert_eq!(host(&doc, "top1").vars["a"].node.value, Value::Int(1));
    }

    /// The value rules of Ansible's INI plugin, checked against ansible-core 2.19: host-line
    /// words are unquoted by shlex before literal_eval, a `:vars` value is the rest of the line
    /// (a trailing comment included, unless the value is a literal).
    #[test]
    fn values_as_ansible_reads_them() {
        let (doc, diags) = read(
            "h1:2222 b=True c=true d=\"['x', 'y']\" e=['x'] f=010 g=0x1f h='q#x' i=x#y j=2\n[g]\nh1\n[g:vars]\nv1=23\nv2=sha1 # trailing\nv3=['10.0.0.1/24'] # c\nv4 = \"quoted\" \nv5=\nv6=a=b\nv7=FALSE\n",
        );
        assert!(diags.is_empty(), "{diags}");
        let h = &host(&doc, "h1").vars;
        let v = |k: &str| h[k].node.value.clone();
        assert_eq!(v("ansible_port"), Value::Int(2222));
        assert_eq!(h["ansible_port"].node.pos, Pos { line: 1, column: 4 });
        assert_eq!(v("b"), Value::Bool(true));
        assert_eq!(v("c"), Value::Str("true".into()));
        assert!(matches!(v("d"), Value::Seq(items) if items.len() == 2));
        assert_eq!(v("e"), Value::Str("[x]".into()));
        assert_eq!(v("f"), Value::Str("010".into()));
        assert_eq!(v("g"), Value::Int(31));
        assert_eq!(v("h"), Value::Str("q#x".into()));
        assert_eq!(v("i"), Value::Str("x".into()));
        assert!(!h.contains_key("j"), "everything after `#` is a comment");
        let g = &group(&doc, "g").vars;
        let v = |k: &str| g[k].node.value.clone();
        assert_eq!(v("v1"), Value::Int(23));
        assert_eq!(v("v2"), Value::Str("sha1 # trailing".into()));
        assert!(matches!(v("v3"), Value::Seq(items) if items.len() == 1));
        assert_eq!(v("v4"), Value::Str("quoted".into()));
        assert_eq!(v("v5"), Value::Str(String::new()));
        assert_eq!(v("v6"), Value::Str("a=b".into()));
        assert_eq!(v("v7"), Value::Str("FALSE".into()));
    }

    #[test]
    fn ungrouped_all_and_pending_children() {
        let (doc, diags) = read(
            "[c:children]\nlater\n[later:children]\ng\n[g]\nh3\n[all:vars]\nx=1\n[ungrouped:vars]\ny=2\n[all]\nh4\n",
        );
        assert!(diags.is_empty(), "{diags}");
        assert_eq!(group(&doc, "c").children, ["later"]);
        assert_eq!(group(&doc, "later").children, ["g"]);
        // Placed at its own header, not at the `:children` line that named it first.
        assert_eq!(
            group(&doc, "later").origin.pos,
            Some(Pos { line: 3, column: 2 })
        );
        assert_eq!(group(&doc, "all").hosts, ["h4"]);
        assert!(group(&doc, "all").vars.contains_key("x"));
    }

    /// Ansible merges a section that appears twice; a variable set twice is a warning, the
    /// later value winning.
    #[test]
    fn duplicate_sections_merge() {
        let (doc, diags) =
            read("[web]\nh1 a=1\n[web:vars]\nv=1\n[web]\nh2\nh1 a=2\n[web:vars]\nv=2\n");
        assert!(!diags.has_errors(), "{diags}");
        assert_eq!(group(&doc, "web").hosts, ["h1", "h2"]);
        assert_eq!(group(&doc, "web").vars["v"].node.value, Value::Int(2));
        assert_eq!(host(&doc, "h1").vars["a"].node.value, Value::Int(2));
        let text = diags.to_string();
        assert!(
            text.contains("hosts:7:4: warning: a: set again for `h1` (first at line 2)"),
            "{text}"
        );
        assert!(
            text.contains("hosts:9:1: warning: v: set again for `web` (first at line 4)"),
            "{text}"
        );
    }

    #[test]
    fn structural_errors_are_located() {
        for (text, expected) in [
            (
                "[web\nh1\n",
                "hosts:1:1: error: unterminated section header `[web`",
            ),
            (
                "[ web ]\n",
                "hosts:1:1: error: `[ web ]` is not a valid section header",
            ),
            (
                "[web:hots]\n",
                "hosts:1:6: error: web: section `[web:hots]` has an unknown type `hots`",
            ),
            ("[we.b]\n", "hosts:1:2: error: we.b: not a valid group name"),
            ("[web] ; note\n", "hosts:1:1: error: [web]:"),
            (
                "[web]\nh1 novalue\n",
                "hosts:2:4: error: expected key=value after the host, found `novalue`",
            ),
            (
                "[web]\nh1 a='x\n",
                "hosts:2:7: error: cannot split the host line: no closing quotation",
            ),
            (
                "[web]\nh1:\n",
                "hosts:2:1: error: `h1:`: a host pattern may not end with `:`",
            ),
            ("---\n", "hosts:1:1: error: `---` is not a host"),
            (
                "[web:vars]\nnovalue\n",
                "hosts:2:1: error: web: expected key=value",
            ),
            (
                "[web:vars]\nv=1\n",
                "hosts:1:2: error: web: `[web:vars]` is for a group the inventory never declares",
            ),
            (
                "[p:children]\nnope\n",
                "hosts:2:1: error: nope: `[p:children]` names `nope`",
            ),
            (
                "[p:children]\np\n",
                "hosts:2:1: error: p: a group cannot be its own child",
            ),
            (
                "[p:children]\na:b\n",
                "hosts:2:1: error: p: expected a group name",
            ),
            (
                "[web]\nh1 x={1,2}\n",
                "hosts:2:6: error: x: the value is a Python set",
            ),
            (
                "[web]\nn[01:099]\n",
                "hosts:2:1: error: n[01:099]: `n[01:099]`: a zero-padded range",
            ),
            (
                "[web]\nbad!name\n",
                "hosts:2:1: error: bad!name: not a valid host name",
            ),
            (
                "[web]\n  h1 =1\n",
                "hosts:2:6: error: a variable needs a name before `=`",
            ),
        ] {
            let text_errors = errors(text);
            assert!(text_errors.contains(expected), "{text:?}:\n{text_errors}");
        }
        // After a broken header its lines are skipped, not misread as hosts of another group.
        let (doc, _) = read("[web\nh1\n");
        assert!(doc.hosts.is_empty());
    }

    #[test]
    fn a_million_hosts_is_refused_quickly() {
        let started = std::time::Instant::now();
        let text = errors("[web]\nn[0:999999]\n");
        assert!(text.contains("expands to more than"), "{text}");
        let many: String = (0..20).map(|i| format!("g{i}-[0:9999]\n")).collect();
        let text = errors(&format!("[web]\n{many}"));
        assert!(
            text.contains(&format!("more than {MAX_HOSTS} hosts")),
            "{text}"
        );
        assert_eq!(
            text.matches("more than").count(),
            1,
            "reported once: {text}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn byte_lines_blank_bad_comments_and_locate_bad_bytes() {
        let lines = byte_lines(b"# caf\xe9\n[web]\r\nh1\n").unwrap();
        assert_eq!(lines, ["", "[web]", "h1"]);
        assert_eq!(
            byte_lines(b"[web]\nh\xc3\xa9\xff\n").unwrap_err(),
            Pos { line: 2, column: 3 }
        );
        assert_eq!(
            byte_lines(b"\x00\x9f\x92\x96\xff").unwrap_err(),
            Pos { line: 1, column: 2 }
        );
    }

    #[test]
    fn python_line_breaks() {
        assert_eq!(text_lines("a\r\nb\rc\x0bd\ne"), ["a", "b", "c", "d", "e"]);
        assert_eq!(text_lines("a\n\n"), ["a", ""]);
    }

    #[test]
    fn which_format_was_meant() {
        assert!(meant_as_ini(&["# c", "[web"]));
        assert!(meant_as_ini(&["h1 ansible_host=1.2.3.4"]));
        assert!(!meant_as_ini(&["all:", "  hosts:"]));
        assert!(!meant_as_ini(&["- a"]));
        assert!(!meant_as_ini(&["# only comments"]));
    }

    #[test]
    fn host_port_follows_parse_address() {
        assert_eq!(
            host_port("web[01:03]:22"),
            Some(("web[01:03]".into(), "22".into()))
        );
        assert_eq!(host_port("a:b:22"), None);
        assert_eq!(
            bracketed_host_port("[10.0.0.1]:22"),
            Some(("10.0.0.1".into(), "22".into()))
        );
        assert!(looks_like_host("web[01:03].lan"));
        assert!(looks_like_host("10.0.0.1"));
        assert!(!looks_like_host("h_"));
        assert!(!looks_like_host("-h"));
        let (doc, diags) = read("[10.0.0.1]:22\n[1:2]-node\n");
        assert!(diags.is_empty(), "{diags}");
        assert_eq!(
            host(&doc, "10.0.0.1").vars["ansible_port"].node.value,
            Value::Int(22)
        );
        assert_eq!(
            group(&doc, "ungrouped").hosts,
            ["10.0.0.1", "1-node", "2-node"]
        );
    }

    #[test]
    fn random_mutations_never_panic() {
        let seed = "h0 a=1\n[web]\nn[1:3]:22 ansible_host=10.0.0.1 v=\"['a', {'b': 1}]\"\n[web:vars]\nha_vips=['10.0.0.9/24']\n[all:children]\nweb\n";
        for text in crate::config::inventory::mutations(seed, b"[]{}:=#;'\"\\,. \n\tax0-_", 5, 3000)
        {
            let _ = read(&text);
        }
    }
}
