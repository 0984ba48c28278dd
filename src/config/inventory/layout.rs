//! Ansible's inventory layout: the inventory file — YAML (`all`/`children`/`hosts`/`vars`) or
//! INI (read by `ini`), told apart by content as Ansible does — host ranges, and the
//! `group_vars/` and `host_vars/` directories beside the file, read into groups and hosts whose
//! every variable remembers where it was set, then resolved per host with Ansible's precedence.
//! Nothing here knows what the `ha_*` variables mean; that is `cluster`'s job.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Diagnostics, Origin, did_you_mean};
use super::ini;
use super::yaml::{self, Node, Pos, Value};

/// Hard cap on the hosts one range pattern may expand to, so `node[0:99999999]` is an error,
/// not an out-of-memory.
const MAX_RANGE_HOSTS: usize = 10_000;
/// Hosts one inventory may declare in all, counting every name a range expands to: far beyond
/// any real cluster inventory, and it bounds memory and time for any input (many lines of
/// maximal ranges included).
pub const MAX_HOSTS: usize = 100_000;
/// Group nesting deeper than this is certainly a cycle or a mistake.
const MAX_GROUP_DEPTH: usize = 32;

/// A variable's value and where it was set (the position of its key).
#[derive(Clone, Debug, PartialEq)]
pub struct Var {
    pub node: Node,
    pub origin: Origin,
}

pub type Vars = BTreeMap<String, Var>;

#[derive(Clone, Debug, Default)]
pub struct Group {
    pub name: String,
    /// `vars:` in the inventory file.
    pub inline_vars: Vars,
    /// `group_vars/<name>[.yml]` files.
    pub file_vars: Vars,
    pub children: BTreeSet<String>,
    pub parents: BTreeSet<String>,
    /// Hosts listed directly under this group, in file order.
    pub hosts: Vec<String>,
    /// Where the group was first defined (for messages about the group as a whole).
    pub origin: Option<Origin>,
}

#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    pub inline_vars: Vars,
    pub file_vars: Vars,
    /// Groups that list this host directly.
    pub groups: BTreeSet<String>,
    pub origin: Origin,
}

/// A loaded inventory: groups by name, hosts in the order first seen.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    pub file: PathBuf,
    pub groups: BTreeMap<String, Group>,
    pub hosts: Vec<Host>,
    host_index: HashMap<String, usize>,
    /// Host names declared so far, ranges counted expanded, against `MAX_HOSTS`.
    hosts_declared: usize,
}

const GROUP_KEYS: [&str; 3] = ["hosts", "vars", "children"];

impl Layout {
    /// Reads the inventory file and the `group_vars/`/`host_vars/` beside it. Structural
    /// problems are collected in `diags`; what could be read is returned regardless.
    pub fn load(file: &Path, diags: &mut Diagnostics) -> Layout {
        let mut layout = Layout {
            file: file.to_path_buf(),
            ..Layout::default()
        };
        layout.ensure_group("all", None);
        match read_source(file) {
            Ok(Source::Yaml(root)) => layout.read_root(file, &root, diags),
            Ok(Source::Ini(doc, ini_diags)) => {
                diags.0.extend(ini_diags.0);
                layout.read_ini(doc);
            }
            Err(d) => diags.push(d),
        }
        layout.reconcile_ungrouped();
        layout.link_top_level_groups();
        let dir = file.parent().unwrap_or(Path::new("."));
        layout.read_vars_dirs(dir, diags);
        layout.check_cycles(diags);
        layout
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.host_index.get(name).map(|&i| &self.hosts[i])
    }

    fn ensure_group(&mut self, name: &str, origin: Option<Origin>) -> &mut Group {
        let group = self
            .groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                ..Group::default()
            });
        if group.origin.is_none() {
            group.origin = origin;
        }
        group
    }

    fn add_host_to_group(&mut self, group: &str, host: &str) {
        // The host's own set of groups answers "already a member?" without scanning the
        // group's list, which a large range would make quadratic.
        let known = self.host_index.get(host).copied();
        let member = match known {
            Some(i) => !self.hosts[i].groups.insert(group.to_string()),
            None => false,
        };
        let g = self.ensure_group(group, None);
        if !member && (known.is_some() || !g.hosts.iter().any(|h| h == host)) {
            g.hosts.push(host.to_string());
        }
    }

    /// Registers a host (once) and returns its index.
    fn declare_host(&mut self, name: &str, origin: Origin) -> usize {
        if let Some(&i) = self.host_index.get(name) {
            return i;
        }
        self.hosts.push(Host {
            name: name.to_string(),
            inline_vars: Vars::new(),
            file_vars: Vars::new(),
            groups: BTreeSet::new(),
            origin,
        });
        self.host_index
            .insert(name.to_string(), self.hosts.len() - 1);
        self.hosts.len() - 1
    }

    /// Takes what an INI inventory declared: groups with their vars and children, hosts with
    /// theirs, in the file's order.
    fn read_ini(&mut self, doc: ini::Document) {
        for host in doc.hosts {
            let index = self.declare_host(&host.name, host.origin);
            self.hosts[index].inline_vars = host.vars;
        }
        for decl in doc.groups {
            let group = self.ensure_group(&decl.name, Some(decl.origin));
            group.inline_vars = decl.vars;
            for child in &decl.children {
                self.ensure_group(&decl.name, None)
                    .children
                    .insert(child.clone());
                self.ensure_group(child, None)
                    .parents
                    .insert(decl.name.clone());
            }
            for host in &decl.hosts {
                self.add_host_to_group(&decl.name, host);
                self.add_host_to_group("all", host);
            }
        }
    }

    /// Ansible's `ungrouped`: every host in no group but `all`, and no host that is in another
    /// group (an INI file's first lines may have put it there before a section listed it).
    fn reconcile_ungrouped(&mut self) {
        self.ensure_group("ungrouped", None);
        let lone = |h: &Host| h.groups.iter().all(|g| g == "all" || g == "ungrouped");
        let (alone, grouped): (Vec<&Host>, Vec<&Host>) = self.hosts.iter().partition(|h| lone(h));
        let alone: Vec<String> = alone.into_iter().map(|h| h.name.clone()).collect();
        let grouped: BTreeSet<String> = grouped
            .into_iter()
            .filter(|h| h.groups.contains("ungrouped"))
            .map(|h| h.name.clone())
            .collect();
        for name in alone {
            self.add_host_to_group("ungrouped", &name);
        }
        if !grouped.is_empty() {
            if let Some(g) = self.groups.get_mut("ungrouped") {
                g.hosts.retain(|h| !grouped.contains(h));
            }
            for h in &mut self.hosts {
                if grouped.contains(&h.name) {
                    h.groups.remove("ungrouped");
                }
            }
        }
    }

    fn read_root(&mut self, file: &Path, root: &Node, diags: &mut Diagnostics) {
        match &root.value {
            Value::Null => diags.push(
                Diagnostic::error(Origin::new(file, root.pos), None, "the inventory is empty")
                    .hint("start with `all:` and list hosts under `children: <cluster>: hosts:`"),
            ),
            Value::Map(entries) => {
                for (key, value) in entries {
                    let Some(name) = group_name(file, key, diags) else {
                        continue;
                    };
                    self.read_group(file, &name, value, 0, diags);
                }
            }
            other => diags.push(
                Diagnostic::error(
                    Origin::new(file, root.pos),
                    None,
                    format!(
                        "the inventory must be a mapping of groups, found {}",
                        other.kind()
                    ),
                )
                .hint("start with `all:`"),
            ),
        }
    }

    fn read_group(
        &mut self,
        file: &Path,
        name: &str,
        node: &Node,
        depth: usize,
        diags: &mut Diagnostics,
    ) {
        self.ensure_group(name, Some(Origin::new(file, node.pos)));
        if depth > MAX_GROUP_DEPTH {
            diags.push(Diagnostic::error(
                Origin::new(file, node.pos),
                Some(name),
                format!("groups nested more than {MAX_GROUP_DEPTH} deep"),
            ));
            return;
        }
        let entries = match &node.value {
            Value::Null => return,
            Value::Map(entries) => entries,
            other => {
                diags.push(
                    Diagnostic::error(
                        Origin::new(file, node.pos),
                        Some(name),
                        format!(
                            "a group must be a mapping with hosts/vars/children, found {}",
                            other.kind()
                        ),
                    )
                    .hint(format!(
                        "write `{name}:` followed by an indented `hosts:` mapping"
                    )),
                );
                return;
            }
        };
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for (key, value) in entries {
            let Some(key_text) = key.scalar_text() else {
                diags.push(Diagnostic::error(
                    Origin::new(file, key.pos),
                    Some(name),
                    "group keys must be plain words",
                ));
                continue;
            };
            if let Some(first) = seen.insert(key_text.clone(), key.pos) {
                diags.push(duplicate_key(file, key.pos, &key_text, first));
                continue;
            }
            match key_text.as_str() {
                "hosts" => self.read_hosts(file, name, value, diags),
                "vars" => {
                    let vars = read_vars_map(file, value, name, diags);
                    let group = self.ensure_group(name, None);
                    for (k, v) in vars {
                        group.inline_vars.insert(k, v);
                    }
                }
                "children" => self.read_children(file, name, value, depth, diags),
                other => {
                    let mut d = Diagnostic::error(
                        Origin::new(file, key.pos),
                        Some(other),
                        format!(
                            "unknown key in group `{name}`; a group has only hosts, vars and children"
                        ),
                    );
                    if let Some(s) = did_you_mean(other, GROUP_KEYS) {
                        d = d.hint(format!("did you mean `{s}`?"));
                    }
                    diags.push(d);
                }
            }
        }
    }

    fn read_children(
        &mut self,
        file: &Path,
        parent: &str,
        node: &Node,
        depth: usize,
        diags: &mut Diagnostics,
    ) {
        let entries = match &node.value {
            Value::Null => return,
            Value::Map(entries) => entries,
            other => {
                diags.push(
                    Diagnostic::error(
                        Origin::new(file, node.pos),
                        Some("children"),
                        format!("expected a mapping of group names, found {}", other.kind()),
                    )
                    .hint("write each child group as `name:` on its own line (a list is not accepted)"),
                );
                return;
            }
        };
        for (key, value) in entries {
            let Some(child) = group_name(file, key, diags) else {
                continue;
            };
            if child == parent {
                diags.push(Diagnostic::error(
                    Origin::new(file, key.pos),
                    Some(&child),
                    "a group cannot be its own child",
                ));
                continue;
            }
            self.ensure_group(parent, None)
                .children
                .insert(child.clone());
            self.ensure_group(&child, None)
                .parents
                .insert(parent.to_string());
            self.read_group(file, &child, value, depth + 1, diags);
        }
    }

    fn read_hosts(&mut self, file: &Path, group: &str, node: &Node, diags: &mut Diagnostics) {
        let entries = match &node.value {
            Value::Null => return,
            Value::Map(entries) => entries,
            other => {
                diags.push(
                    Diagnostic::error(
                        Origin::new(file, node.pos),
                        Some("hosts"),
                        format!("expected a mapping of host names, found {}", other.kind()),
                    )
                    .hint("write each host as `name:` (optionally with its variables) — a YAML list is not accepted"),
                );
                return;
            }
        };
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for (key, value) in entries {
            let Some(pattern) = key.scalar_text() else {
                diags.push(Diagnostic::error(
                    Origin::new(file, key.pos),
                    Some("hosts"),
                    "a host name must be a plain word",
                ));
                continue;
            };
            if let Some(first) = seen.insert(pattern.clone(), key.pos) {
                diags.push(duplicate_key(file, key.pos, &pattern, first));
                continue;
            }
            if self.hosts_declared > MAX_HOSTS {
                // Already reported once; expanding the rest would only cost time.
                return;
            }
            let names = match expand_host_pattern(&pattern) {
                Ok(names) => names,
                Err(message) => {
                    diags.push(
                        Diagnostic::error(Origin::new(file, key.pos), Some(&pattern), message)
                            .hint("ranges look like `node[1:3]`, `web[01:10]` or `lb[a:c]`"),
                    );
                    continue;
                }
            };
            self.hosts_declared = self.hosts_declared.saturating_add(names.len());
            if self.hosts_declared > MAX_HOSTS {
                diags.push(
                    Diagnostic::error(
                        Origin::new(file, key.pos),
                        Some(&pattern),
                        format!("the inventory declares more than {MAX_HOSTS} hosts"),
                    )
                    .hint("split it into smaller inventories, or narrow the ranges"),
                );
                return;
            }
            let vars = read_vars_map(file, value, &pattern, diags);
            for name in names {
                if let Err(message) = check_host_name(&name) {
                    diags.push(Diagnostic::error(
                        Origin::new(file, key.pos),
                        Some(&name),
                        message,
                    ));
                    continue;
                }
                let index = self.declare_host(&name, Origin::new(file, key.pos));
                for (k, v) in &vars {
                    self.hosts[index].inline_vars.insert(k.clone(), v.clone());
                }
                self.add_host_to_group(group, &name);
                self.add_host_to_group("all", &name);
            }
        }
    }

    /// Groups not nested anywhere are children of `all`, as in Ansible.
    fn link_top_level_groups(&mut self) {
        let orphans: Vec<String> = self
            .groups
            .values()
            .filter(|g| g.name != "all" && g.parents.is_empty())
            .map(|g| g.name.clone())
            .collect();
        for name in orphans {
            self.ensure_group("all", None).children.insert(name.clone());
            self.ensure_group(&name, None).parents.insert("all".into());
        }
    }

    fn read_vars_dirs(&mut self, dir: &Path, diags: &mut Diagnostics) {
        let group_names: Vec<String> = self.groups.keys().cloned().collect();
        for name in group_names {
            let vars = read_vars_files(&dir.join("group_vars"), &name, diags);
            self.ensure_group(&name, None).file_vars = vars;
        }
        for i in 0..self.hosts.len() {
            let name = self.hosts[i].name.clone();
            self.hosts[i].file_vars = read_vars_files(&dir.join("host_vars"), &name, diags);
        }
    }

    fn check_cycles(&self, diags: &mut Diagnostics) {
        for group in self.groups.values() {
            if self.depth(&group.name).is_none() {
                diags.push(Diagnostic::error(
                    group
                        .origin
                        .clone()
                        .unwrap_or_else(|| Origin::file(&self.file)),
                    Some(&group.name),
                    "group is (indirectly) its own parent",
                ));
            }
        }
    }

    /// Distance from `all` along the longest parent chain, as Ansible sorts groups; `None` for a
    /// cycle.
    pub fn depth(&self, group: &str) -> Option<usize> {
        fn walk(layout: &Layout, group: &str, seen: &mut Vec<String>) -> Option<usize> {
            if group == "all" {
                return Some(0);
            }
            if seen.iter().any(|g| g == group) || seen.len() > MAX_GROUP_DEPTH {
                return None;
            }
            seen.push(group.to_string());
            let parents = &layout.groups.get(group)?.parents;
            let mut best = 0;
            for p in parents {
                best = best.max(walk(layout, p, seen)? + 1);
            }
            seen.pop();
            Some(best.max(1))
        }
        walk(self, group, &mut Vec::new())
    }

    /// Every group the host belongs to, directly or through parents (including `all`).
    pub fn host_groups(&self, host: &str) -> BTreeSet<String> {
        let mut result = BTreeSet::new();
        let mut stack: Vec<String> = self
            .host(host)
            .map(|h| h.groups.iter().cloned().collect())
            .unwrap_or_default();
        while let Some(g) = stack.pop() {
            if result.insert(g.clone())
                && let Some(group) = self.groups.get(&g)
            {
                stack.extend(group.parents.iter().cloned());
            }
        }
        result.insert("all".to_string());
        result
    }

    /// Hosts of a group and of its descendants, in inventory order.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        let mut members = BTreeSet::new();
        let mut stack = vec![group.to_string()];
        let mut visited = BTreeSet::new();
        while let Some(g) = stack.pop() {
            if !visited.insert(g.clone()) {
                continue;
            }
            if let Some(group) = self.groups.get(&g) {
                members.extend(group.hosts.iter().cloned());
                stack.extend(group.children.iter().cloned());
            }
        }
        self.hosts
            .iter()
            .filter(|h| members.contains(&h.name))
            .map(|h| h.name.clone())
            .collect()
    }

    /// The host's variables after Ansible's precedence, lowest first: inline `all` vars, inline
    /// vars of its other groups (by depth, then name), `group_vars/all`, `group_vars/<group>`
    /// (same order), inline host vars, `host_vars/<host>`.
    pub fn resolved_vars(&self, host: &str) -> Vars {
        let mut groups: Vec<(usize, String)> = self
            .host_groups(host)
            .into_iter()
            .filter(|g| g != "all")
            .map(|g| (self.depth(&g).unwrap_or(1), g))
            .collect();
        groups.sort();
        let all = self.groups.get("all");
        let mut vars = Vars::new();
        let mut apply = |layer: &Vars| {
            for (k, v) in layer {
                vars.insert(k.clone(), v.clone());
            }
        };
        if let Some(all) = all {
            apply(&all.inline_vars);
        }
        for (_, g) in &groups {
            apply(&self.groups[g].inline_vars);
        }
        if let Some(all) = all {
            apply(&all.file_vars);
        }
        for (_, g) in &groups {
            apply(&self.groups[g].file_vars);
        }
        if let Some(h) = self.host(host) {
            apply(&h.inline_vars);
            apply(&h.file_vars);
        }
        vars
    }

    /// The host's resolved variables as JSON, as `ansible-inventory --list` prints them under
    /// `_meta.hostvars` — what the parity tests compare with the real tool.
    pub fn resolved_json(&self, host: &str) -> serde_json::Map<String, serde_json::Value> {
        self.resolved_vars(host)
            .into_iter()
            .map(|(k, v)| (k, v.node.to_json()))
            .collect()
    }
}

/// An inventory file, read as the format its content is in.
enum Source {
    Yaml(Node),
    Ini(ini::Document, Diagnostics),
}

/// Reads the inventory file and tells its format by content, as Ansible does by trying its
/// `yaml` plugin before its `ini` plugin: a YAML mapping (or an empty document, which the YAML
/// reader reports) is YAML; anything else that reads as INI is INI. When neither reads, the
/// errors of the format the file looks like are returned.
fn read_source(file: &Path) -> Result<Source, Diagnostic> {
    let bytes = std::fs::read(file).map_err(|e| {
        Diagnostic::error(
            Origin::file(file),
            None,
            format!("cannot read the inventory: {e}"),
        )
    })?;
    if bytes.len() > yaml::MAX_FILE_BYTES {
        return Err(Diagnostic::error(
            Origin::file(file),
            None,
            format!(
                "file is {} bytes; inventories larger than {} bytes are refused",
                bytes.len(),
                yaml::MAX_FILE_BYTES
            ),
        ));
    }
    let Ok(text) = std::str::from_utf8(&bytes) else {
        // YAML must be UTF-8; Ansible's INI reader forgives bad bytes in comment lines only.
        let lines = ini::byte_lines(&bytes).map_err(|pos| {
            Diagnostic::error(
                Origin::new(file, pos),
                None,
                "not UTF-8 text (an invalid byte here); is this a binary file?",
            )
        })?;
        let mut diags = Diagnostics::default();
        let doc = ini::parse(file, &lines, &mut diags);
        return Ok(Source::Ini(doc, diags));
    };
    let yaml = match yaml::parse(text) {
        Ok(root) if matches!(root.value, Value::Map(_) | Value::Null) => {
            return Ok(Source::Yaml(root));
        }
        other => other,
    };
    let lines = ini::text_lines(text);
    let mut diags = Diagnostics::default();
    let doc = ini::parse(file, &lines, &mut diags);
    if !diags.has_errors() || ini::meant_as_ini(&lines) {
        return Ok(Source::Ini(doc, diags));
    }
    match yaml {
        Ok(root) => Ok(Source::Yaml(root)),
        Err(e) => Err(yaml_error(file, e)),
    }
}

fn yaml_error(file: &Path, e: yaml::YamlError) -> Diagnostic {
    let origin = match e.pos {
        Some(pos) => Origin::new(file, pos),
        None => Origin::file(file),
    };
    Diagnostic::error(origin, None, format!("not valid YAML: {}", e.message))
}

fn duplicate_key(file: &Path, pos: Pos, key: &str, first: Pos) -> Diagnostic {
    Diagnostic::error(
        Origin::new(file, pos),
        Some(key),
        format!("defined twice (first at line {})", first.line),
    )
    .hint("keep one of the two entries")
}

/// hadeploy's group names: letters, digits, `_` and `-` (Ansible warns about anything else).
pub(super) fn valid_group_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn group_name(file: &Path, key: &Node, diags: &mut Diagnostics) -> Option<String> {
    let name = key.scalar_text()?;
    if valid_group_name(&name) {
        Some(name)
    } else {
        diags.push(
            Diagnostic::error(
                Origin::new(file, key.pos),
                Some(&name),
                "not a valid group name",
            )
            .hint("use letters, digits, `_` and `-` only"),
        );
        None
    }
}

fn read_vars_map(file: &Path, node: &Node, owner: &str, diags: &mut Diagnostics) -> Vars {
    let mut vars = Vars::new();
    let entries = match &node.value {
        Value::Null => return vars,
        Value::Map(entries) => entries,
        other => {
            diags.push(Diagnostic::error(
                Origin::new(file, node.pos),
                Some(owner),
                format!(
                    "variables must be a mapping of `name: value`, found {}",
                    other.kind()
                ),
            ));
            return vars;
        }
    };
    for (key, value) in entries {
        let Some(name) = key.scalar_text() else {
            diags.push(Diagnostic::error(
                Origin::new(file, key.pos),
                Some(owner),
                "a variable name must be a plain word",
            ));
            continue;
        };
        if let Some(first) = vars.get(&name) {
            let first = first.origin.pos.unwrap_or_default();
            diags.push(duplicate_key(file, key.pos, &name, first));
            continue;
        }
        vars.insert(
            name,
            Var {
                node: value.clone(),
                origin: Origin::new(file, key.pos),
            },
        );
    }
    vars
}

/// `group_vars/<name>`, `<name>.yml|.yaml|.json`, or every such file (sorted) under a
/// `<name>/` directory; later files override earlier ones.
fn read_vars_files(base: &Path, name: &str, diags: &mut Diagnostics) -> Vars {
    let mut files = Vec::new();
    for candidate in [
        name.to_string(),
        format!("{name}.yml"),
        format!("{name}.yaml"),
        format!("{name}.json"),
    ] {
        let path = base.join(&candidate);
        if path.is_file() {
            files.push(path);
        }
    }
    let directory = base.join(name);
    if directory.is_dir()
        && let Ok(entries) = std::fs::read_dir(&directory)
    {
        let mut inner: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && matches!(
                        p.extension().and_then(|e| e.to_str()),
                        None | Some("yml" | "yaml" | "json")
                    )
            })
            .collect();
        inner.sort();
        files.extend(inner);
    }
    let mut vars = Vars::new();
    for path in files {
        match yaml::parse_file(&path) {
            Ok(node) => {
                for (k, v) in read_vars_map(&path, &node, name, diags) {
                    vars.insert(k, v);
                }
            }
            Err(e) => diags.push(yaml_error(&path, e)),
        }
    }
    vars
}

pub(super) fn check_host_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err("not a valid host name (letters, digits, `-`, `_` and `.` only)".into())
    }
}

/// Expands Ansible host ranges as its inventory plugins do: `node[1:3]`, `web[01:10]`
/// (zero-padded: start and end of equal width), `lb[a:c]` (letters in `a`–`z` then `A`–`Z`
/// order, so `[y:B]` is y, z, A, B), an empty start meaning 0 (`[:3]`), an optional `:step`,
/// several ranges in one pattern. A range that runs backwards, which Ansible silently expands
/// to no host, is an error here.
pub fn expand_host_pattern(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("`{pattern}`: `[` without a closing `]`"))?;
    let (head, range, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = range.split(':').collect();
    let (start, end, step) = match parts.as_slice() {
        [s, e] => (*s, *e, 1usize),
        [s, e, step] => (
            *s,
            *e,
            step.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| {
                    format!("`{pattern}`: the step `{step}` must be a positive whole number")
                })?,
        ),
        _ => {
            return Err(format!(
                "`{pattern}`: a range is `[start:end]` or `[start:end:step]`"
            ));
        }
    };
    let start = if start.is_empty() { "0" } else { start };
    if end.is_empty() {
        return Err(format!("`{pattern}`: the range needs an end"));
    }
    let padded = start.len() > 1 && start.starts_with('0');
    if padded && start.len() != end.len() {
        return Err(format!(
            "`{pattern}`: a zero-padded range needs a start and end of equal width, like `[01:10]`"
        ));
    }
    let middles: Vec<String> = if let (Some(a), Some(b)) = (letter_index(start), letter_index(end))
    {
        if a > b {
            return Err(format!("`{pattern}`: the range runs backwards"));
        }
        (a..=b)
            .step_by(step)
            .map(|i| char::from(LETTERS[i]).to_string())
            .collect()
    } else if let (Ok(s), Ok(e)) = (start.parse::<u64>(), end.parse::<u64>()) {
        if s > e {
            return Err(format!("`{pattern}`: the range runs backwards"));
        }
        if (e - s) / step as u64 >= MAX_RANGE_HOSTS as u64 {
            return Err(format!(
                "`{pattern}`: expands to more than {MAX_RANGE_HOSTS} hosts"
            ));
        }
        let width = if padded { start.len() } else { 0 };
        (s..=e)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else {
        return Err(format!(
            "`{pattern}`: a range runs between two numbers or two single letters"
        ));
    };
    let tails = expand_host_pattern(tail)?;
    if middles.len().saturating_mul(tails.len()) > MAX_RANGE_HOSTS {
        return Err(format!(
            "`{pattern}`: expands to more than {MAX_RANGE_HOSTS} hosts"
        ));
    }
    let mut names = Vec::with_capacity(middles.len() * tails.len());
    for m in &middles {
        for t in &tails {
            names.push(format!("{head}{m}{t}"));
        }
    }
    Ok(names)
}

/// Python's `string.ascii_letters`, the order Ansible's letter ranges run in.
const LETTERS: &[u8; 52] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn letter_index(s: &str) -> Option<usize> {
    match s.as_bytes() {
        [b] => LETTERS.iter().position(|l| l == b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ranges() {
        assert_eq!(
            expand_host_pattern("node[1:3]").unwrap(),
            ["node1", "node2", "node3"]
        );
        assert_eq!(
            expand_host_pattern("web[08:10]").unwrap(),
            ["web08", "web09", "web10"]
        );
        assert_eq!(
            expand_host_pattern("lb[a:c]").unwrap(),
            ["lba", "lbb", "lbc"]
        );
        assert_eq!(
            expand_host_pattern("n[1:5:2].lan").unwrap(),
            ["n1.lan", "n3.lan", "n5.lan"]
        );
        assert_eq!(
            expand_host_pattern("r[1:2]x[a:b]").unwrap(),
            ["r1xa", "r1xb", "r2xa", "r2xb"]
        );
        assert_eq!(expand_host_pattern("plain").unwrap(), ["plain"]);
        // Ansible's own rules: an empty start is 0, letters run a-z then A-Z, steps apply to
        // letters too, an unpadded start sets no width.
        assert_eq!(expand_host_pattern("x[:2]").unwrap(), ["x0", "x1", "x2"]);
        assert_eq!(
            expand_host_pattern("m[y:B]").unwrap(),
            ["my", "mz", "mA", "mB"]
        );
        assert_eq!(
            expand_host_pattern("db-[a:e:2]").unwrap(),
            ["db-a", "db-c", "db-e"]
        );
        assert_eq!(expand_host_pattern("n[9:0010]").unwrap(), ["n9", "n10"]);
        for bad in [
            "n[3:1]",
            "n[1:",
            "n[a:3]",
            "n[0:99999999]",
            "n[0:999999]",
            "n[1:2:0]",
            "n[1]",
            "n[01:100]",
            "n[1:]",
            "n[ab:cd]",
        ] {
            assert!(expand_host_pattern(bad).is_err(), "{bad}");
        }
    }

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn ansible_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let inv = write(
            dir.path(),
            "inv.yml",
            "all:\n  vars: {v_all: inline_all, v_grp: inline_all, v_file: inline_all, v_host: inline_all}\n  children:\n    web:\n      vars: {v_grp: inline_web, v_child: inline_web}\n      children:\n        front:\n          vars: {v_child: inline_front}\n          hosts:\n            n1: {v_host: inline_host}\n",
        );
        write(
            dir.path(),
            "group_vars/all.yml",
            "v_file: file_all\nv_grp: file_all\n",
        );
        write(dir.path(), "group_vars/web/a.yml", "v_file: file_web\n");
        write(dir.path(), "host_vars/n1.yml", "v_host: file_host\n");
        let mut diags = Diagnostics::default();
        let layout = Layout::load(&inv, &mut diags);
        assert!(diags.is_empty(), "{diags}");
        let vars = layout.resolved_vars("n1");
        let get = |k: &str| vars[k].node.scalar_text().unwrap();
        assert_eq!(get("v_all"), "inline_all");
        // group_vars/all beats inline group vars (Ansible's all_plugins_inventory > groups_inventory).
        assert_eq!(get("v_grp"), "file_all");
        assert_eq!(get("v_child"), "inline_front");
        assert_eq!(get("v_file"), "file_web");
        assert_eq!(get("v_host"), "file_host");
        assert_eq!(
            vars["v_host"].origin.file,
            dir.path().join("host_vars/n1.yml")
        );
        assert_eq!(layout.group_hosts("web"), ["n1"]);
        assert!(layout.host_groups("n1").contains("web"));
    }

    #[test]
    fn structural_mistakes_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let inv = write(
            dir.path(),
            "inv.yml",
            "all:\n  children:\n    web:\n      host:\n        n1:\n",
        );
        let mut diags = Diagnostics::default();
        Layout::load(&inv, &mut diags);
        let text = diags.to_string();
        assert!(
            text.contains("inv.yml:4:7: error: host: unknown key in group `web`"),
            "{text}"
        );
        assert!(text.contains("did you mean `hosts`?"), "{text}");
    }

    /// An INI inventory goes through the same layout as YAML: `group_vars/` and `host_vars/`
    /// beside it, Ansible's precedence, `ungrouped` only for hosts in no other group.
    #[test]
    fn ini_inventory_shares_the_layout() {
        let dir = tempfile::tempdir().unwrap();
        let inv = write(
            dir.path(),
            "inventory.yml",
            "n0\nn1 v_host=inline_host\n[all:vars]\nv_all=inline_all\nv_grp=inline_all\n[front]\nn1\n[front:vars]\nv_child=inline_front\n[web:children]\nfront\n[web:vars]\nv_grp=inline_web\nv_child=inline_web\n",
        );
        write(dir.path(), "group_vars/all.yml", "v_grp: file_all\n");
        write(dir.path(), "host_vars/n1.yml", "v_host: file_host\n");
        let mut diags = Diagnostics::default();
        let layout = Layout::load(&inv, &mut diags);
        assert!(diags.is_empty(), "{diags}");
        let vars = layout.resolved_json("n1");
        assert_eq!(vars["v_all"], "inline_all");
        assert_eq!(vars["v_grp"], "file_all");
        assert_eq!(vars["v_child"], "inline_front");
        assert_eq!(vars["v_host"], "file_host");
        assert_eq!(layout.group_hosts("web"), ["n1"]);
        assert_eq!(layout.groups["ungrouped"].hosts, ["n0"]);
        assert!(!layout.host_groups("n1").contains("ungrouped"));
        assert_eq!(
            layout.resolved_vars("n1")["v_child"].origin,
            Origin::new(&inv, Pos { line: 9, column: 1 })
        );
    }

    /// The format is told by content, whatever the file is called.
    #[test]
    fn format_is_told_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let yaml_named_ini = write(dir.path(), "a.ini", "all:\n  hosts:\n    n1:\n");
        let mut diags = Diagnostics::default();
        assert_eq!(
            Layout::load(&yaml_named_ini, &mut diags).hosts[0].name,
            "n1"
        );
        assert!(diags.is_empty(), "{diags}");
        for (name, text, expected) in [
            // Broken YAML stays a YAML error, broken INI an INI one.
            ("b.yml", "all:\n  hosts: [a\n", "not valid YAML"),
            (
                "c",
                "[web\nn1\n",
                "c:1:1: error: unterminated section header",
            ),
            (
                "d",
                "- a\n- b\n",
                "the inventory must be a mapping of groups, found a list",
            ),
        ] {
            let path = write(dir.path(), name, text);
            let mut diags = Diagnostics::default();
            Layout::load(&path, &mut diags);
            assert!(diags.to_string().contains(expected), "{name}: {diags}");
        }
        let junk = dir.path().join("junk");
        std::fs::write(&junk, b"[web]\nn1\nn\xff\x00\x9f\n").unwrap();
        let mut diags = Diagnostics::default();
        Layout::load(&junk, &mut diags);
        assert!(
            diags
                .to_string()
                .contains("junk:3:2: error: not UTF-8 text"),
            "{diags}"
        );
    }

    #[test]
    fn hosts_over_the_total_cap_are_refused_once() {
        let dir = tempfile::tempdir().unwrap();
        let hosts: String = (0..11)
            .map(|i| format!("        g{i}-[0:9999]:\n"))
            .collect();
        let inv = write(
            dir.path(),
            "inv.yml",
            &format!(
                "all:\n  children:\n    web:\n      hosts:\n{hosts}    db:\n      hosts:\n        n[1:2]:\n"
            ),
        );
        let mut diags = Diagnostics::default();
        Layout::load(&inv, &mut diags);
        let text = diags.to_string();
        assert_eq!(text.matches("more than 100000 hosts").count(), 1, "{text}");
    }

    #[test]
    fn hosts_as_a_list_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let inv = write(
            dir.path(),
            "inv.yml",
            "all:\n  hosts:\n    - n1\n    - n2\n",
        );
        let mut diags = Diagnostics::default();
        Layout::load(&inv, &mut diags);
        assert!(
            diags.to_string().contains(
                "inv.yml:3:5: error: hosts: expected a mapping of host names, found a list"
            ),
            "{diags}"
        );
    }
}
