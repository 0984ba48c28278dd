//! Ansible's YAML inventory layout: `all`/`children`/`hosts`/`vars`, host ranges, and the
//! `group_vars/` and `host_vars/` directories beside the file — read into groups and hosts whose
//! every variable remembers where it was set, then resolved per host with Ansible's precedence.
//! Nothing here knows what the `ha_*` variables mean; that is `cluster`'s job.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Diagnostics, Origin, did_you_mean};
use super::yaml::{self, Node, Pos, Value};

/// Hard cap on the hosts one range pattern may expand to, so `node[0:99999999]` is an error,
/// not an out-of-memory.
const MAX_RANGE_HOSTS: usize = 10_000;
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
        match yaml::parse_file(file) {
            Ok(root) => layout.read_root(file, &root, diags),
            Err(e) => diags.push(yaml_error(file, e)),
        }
        layout.ensure_group("ungrouped", None);
        let grouped: Vec<String> = layout
            .hosts
            .iter()
            .filter(|h| h.groups.iter().all(|g| g == "all"))
            .map(|h| h.name.clone())
            .collect();
        for name in grouped {
            layout.add_host_to_group("ungrouped", &name);
        }
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
        let g = self.ensure_group(group, None);
        if !g.hosts.iter().any(|h| h == host) {
            g.hosts.push(host.to_string());
        }
        if let Some(&i) = self.host_index.get(host) {
            self.hosts[i].groups.insert(group.to_string());
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
                let index = match self.host_index.get(&name) {
                    Some(&i) => i,
                    None => {
                        self.hosts.push(Host {
                            name: name.clone(),
                            inline_vars: Vars::new(),
                            file_vars: Vars::new(),
                            groups: BTreeSet::new(),
                            origin: Origin::new(file, key.pos),
                        });
                        self.host_index.insert(name.clone(), self.hosts.len() - 1);
                        self.hosts.len() - 1
                    }
                };
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

fn group_name(file: &Path, key: &Node, diags: &mut Diagnostics) -> Option<String> {
    let name = key.scalar_text()?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if valid {
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

fn check_host_name(name: &str) -> Result<(), String> {
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

/// Expands Ansible host ranges: `node[1:3]`, `web[01:10]` (zero-padded), `lb[a:c]`, an optional
/// `:step`, several ranges in one pattern.
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
    let middles: Vec<String> = if let (Ok(s), Ok(e)) = (start.parse::<u64>(), end.parse::<u64>()) {
        if s > e {
            return Err(format!("`{pattern}`: the range runs backwards"));
        }
        if (e - s) / step as u64 >= MAX_RANGE_HOSTS as u64 {
            return Err(format!(
                "`{pattern}`: expands to more than {MAX_RANGE_HOSTS} hosts"
            ));
        }
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        (s..=e)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else {
        let (mut s, mut e) = (start.chars(), end.chars());
        match (s.next(), s.next(), e.next(), e.next()) {
            (Some(a), None, Some(b), None)
                if a.is_ascii_lowercase() == b.is_ascii_lowercase()
                    && a.is_ascii_alphabetic()
                    && b.is_ascii_alphabetic() =>
            {
                if a > b {
                    return Err(format!("`{pattern}`: the range runs backwards"));
                }
                (a..=b).step_by(step).map(String::from).collect()
            }
            _ => {
                return Err(format!(
                    "`{pattern}`: a range runs between two numbers or two single letters"
                ));
            }
        }
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
        for bad in [
            "n[3:1]",
            "n[1:",
            "n[a:3]",
            "n[0:99999999]",
            "n[1:2:0]",
            "n[1]",
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
