//! `ha_files`: the service configuration files a node gets from the inventory, each a template
//! (`src`, relative to the inventory's directory) installed at `dest` with a mode, an owner and
//! a group, and optionally tied to a role (`service`) whose config test validates it and whose
//! reload applies it. Checked here, at the variable: a normalised absolute `dest` outside what
//! hadeploy itself manages, no two entries with one `dest`, an octal mode, plain account names,
//! a known role and a template that exists. Also the node's variables as plain data, which the
//! templates see (`render::service_files`), exactly as Ansible's `template` module would.

use std::collections::{BTreeMap, HashSet};

use crate::config::inventory::cluster::ServiceFile;
use crate::config::inventory::cluster::keys::{FILE_FIELDS, RESERVED_PATHS};
use crate::config::inventory::diag::{Diagnostic, Origin, did_you_mean};
use crate::config::inventory::layout::{Var, Vars};
use crate::config::inventory::yaml::{Node, Value};

use super::ClusterBuilder;

impl ClusterBuilder<'_> {
    /// The host's `ha_files`. A list set on a group resolves to the same variable on every
    /// host: it is read once and its result shared, so each mistake is reported once.
    pub(super) fn service_files(&mut self, vars: &Vars) -> Vec<ServiceFile> {
        let Some(var) = vars.get("ha_files").cloned() else {
            return Vec::new();
        };
        let at = var.origin.to_string();
        if let Some(files) = self.files_read.get(&at) {
            return files.clone();
        }
        let files = self.read_service_files(&var);
        self.files_read.insert(at, files.clone());
        files
    }

    fn read_service_files(&mut self, var: &Var) -> Vec<ServiceFile> {
        let Value::Seq(items) = &var.node.value else {
            self.type_error(
                var,
                "ha_files",
                "a list of {src, dest} mappings",
                var.node.value.kind(),
            );
            return Vec::new();
        };
        let file = var.origin.file.clone();
        let mut files: Vec<ServiceFile> = Vec::new();
        let mut dests: HashSet<String> = HashSet::new();
        for item in items {
            let origin = Origin::new(&file, item.pos);
            let Value::Map(entries) = &item.value else {
                self.error(
                    Diagnostic::error(
                        origin,
                        Some("ha_files"),
                        format!("expected a mapping, found {}", item.value.kind()),
                    )
                    .hint("e.g. `{src: templates/site.conf.j2, dest: /etc/nginx/sites-enabled/default, service: nginx}`"),
                );
                continue;
            };
            let mut fields: BTreeMap<String, &Node> = BTreeMap::new();
            for (k, v) in entries {
                let key = k.scalar_text().unwrap_or_default();
                if FILE_FIELDS.contains(&key.as_str()) {
                    fields.insert(key, v);
                    continue;
                }
                let mut d = Diagnostic::error(
                    Origin::new(&file, k.pos),
                    Some(&key),
                    "unknown ha_files field; an entry has src, dest, mode, owner, group and service",
                );
                if let Some(s) = did_you_mean(&key, FILE_FIELDS.iter().copied()) {
                    d = d.hint(format!("did you mean `{s}`?"));
                }
                self.error(d);
            }
            let at = |node: &Node| Origin::new(&file, node.pos);
            let text = |this: &mut Self, key: &str| -> Option<(String, Origin)> {
                let node = fields.get(key)?;
                match &node.value {
                    Value::Str(s) => Some((s.clone(), at(node))),
                    other => {
                        this.error(Diagnostic::error(
                            at(node),
                            Some(key),
                            format!("expected a string, found {}", other.kind()),
                        ));
                        None
                    }
                }
            };
            let mut ok = true;
            let src = match text(self, "src") {
                Some((src, src_at)) => {
                    let path = self.inventory_dir.join(&src);
                    if !path.is_file() {
                        ok = false;
                        self.error(
                            Diagnostic::error(
                                src_at,
                                Some("src"),
                                format!("template {} does not exist", path.display()),
                            )
                            .hint("`src` is relative to the inventory's directory"),
                        );
                    }
                    Some(path)
                }
                None => None,
            };
            let dest = match text(self, "dest") {
                Some((dest, dest_at)) => match dest_problem(&dest) {
                    Some((message, hint)) => {
                        ok = false;
                        self.error(Diagnostic::error(dest_at, Some("dest"), message).hint(hint));
                        None
                    }
                    None if !dests.insert(dest.clone()) => {
                        ok = false;
                        self.error(
                            Diagnostic::error(
                                dest_at,
                                Some("dest"),
                                format!("{dest} is the dest of two entries"),
                            )
                            .hint("one file, one template: remove or rename one of them"),
                        );
                        None
                    }
                    None => Some(dest),
                },
                None => None,
            };
            let (Some(src), Some(dest)) = (src, dest) else {
                if !fields.contains_key("src") || !fields.contains_key("dest") {
                    self.error(
                        Diagnostic::error(
                            origin,
                            Some("ha_files"),
                            "an entry needs `src` (the template) and `dest` (where it goes)",
                        )
                        .hint("e.g. `{src: templates/site.conf.j2, dest: /etc/nginx/sites-enabled/default}`"),
                    );
                }
                continue;
            };
            let mode = match fields.get("mode") {
                None => Some(0o644),
                Some(node) => {
                    let parsed = match &node.value {
                        Value::Str(s) => parse_mode(s),
                        _ => None,
                    };
                    if parsed.is_none() {
                        self.error(
                            Diagnostic::error(
                                at(node),
                                Some("mode"),
                                "not an octal mode string",
                            )
                            .hint("quote it, as for Ansible: `mode: \"0644\"` (YAML reads a bare 0644 as a number)"),
                        );
                    }
                    parsed
                }
            };
            let account = |this: &mut Self, key: &str| -> Option<String> {
                let Some((name, name_at)) = text(this, key) else {
                    return (!fields.contains_key(key)).then(|| "root".to_string());
                };
                if valid_account(&name) {
                    return Some(name);
                }
                this.error(
                    Diagnostic::error(name_at, Some(key), format!("`{name}` is not a {key} name"))
                        .hint("a plain account name such as `root` or `www-data`"),
                );
                None
            };
            let owner = account(self, "owner");
            let group = account(self, "group");
            let service = match text(self, "service") {
                Some((name, name_at)) => {
                    let known = match &self.roles {
                        Ok(roles) => roles.get(&name).is_some(),
                        Err(e) => {
                            let e = e.clone();
                            self.error(Diagnostic::error(
                                name_at.clone(),
                                Some("service"),
                                format!("cannot check the role: {e}"),
                            ));
                            false
                        }
                    };
                    if !known && self.roles.is_ok() {
                        let names: Vec<String> = self
                            .roles
                            .as_ref()
                            .map(|r| r.names().map(str::to_string).collect())
                            .unwrap_or_default();
                        let mut d = Diagnostic::error(
                            name_at,
                            Some("service"),
                            format!("`{name}` is not a known role"),
                        );
                        d = match did_you_mean(&name, names.iter().map(String::as_str)) {
                            Some(s) => d.hint(format!("did you mean `{s}`?")),
                            None => d.hint(format!(
                                "one of: {}; or add <inventory dir>/roles/{name}.yml",
                                names.join(", ")
                            )),
                        };
                        self.error(d);
                    }
                    known.then_some(name)
                }
                None => None,
            };
            let (Some(mode), Some(owner), Some(group), true) = (mode, owner, group, ok) else {
                continue;
            };
            if fields.contains_key("service") && service.is_none() {
                continue;
            }
            files.push(ServiceFile {
                src,
                dest,
                mode,
                owner,
                group,
                service,
                origin,
            });
        }
        files
    }
}

/// Why `dest` cannot be a file hadeploy installs, with the fix; `None` when it can.
fn dest_problem(dest: &str) -> Option<(String, String)> {
    if !dest.starts_with('/') {
        return Some((
            format!("`{dest}` is not an absolute path"),
            "write the full path on the node, e.g. /etc/nginx/sites-enabled/default".into(),
        ));
    }
    if dest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some((
            format!("{dest:?} contains a blank or a control character"),
            "use a path without spaces".into(),
        ));
    }
    let parts: Vec<&str> = dest[1..].split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Some((
            format!("`{dest}` is not a normalised path"),
            "no `.` or `..` parts, no `//`, no trailing `/`".into(),
        ));
    }
    RESERVED_PATHS
        .iter()
        .find(|r| dest == **r || dest.starts_with(&format!("{r}/")))
        .map(|r| {
            (
                format!("{dest} is inside {r}, which hadeploy manages itself"),
                "ha_files are for the services' own configuration (nginx, haproxy, apache2)".into(),
            )
        })
}

/// `"0644"`, `"644"` or `"2755"`: what Ansible accepts as an octal mode string.
fn parse_mode(text: &str) -> Option<u32> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    if !(3..=4).contains(&digits.len()) || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(digits, 8).ok()
}

/// A user or group name `chown` takes and `useradd` would create.
fn valid_account(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A variable as plain data for the templates: what Ansible hands Jinja after reading the
/// inventory (mapping keys as strings, in order).
pub(super) fn template_value(node: &Node) -> serde_json::Value {
    match &node.value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Str(s) => s.clone().into(),
        Value::Seq(items) => items.iter().map(template_value).collect(),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| (k.scalar_text().unwrap_or_default(), template_value(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::inventory::cluster::testing::{BASE, load};

    fn with_files(files: &str) -> String {
        BASE.replace(
            "        ha_heartbeat_interface: eth1\n",
            &format!("        ha_heartbeat_interface: eth1\n        ha_files: {files}\n"),
        )
    }

    fn load_with_template(
        text: &str,
    ) -> (tempfile::TempDir, super::super::super::super::Inventory) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/site.j2"), "x\n").unwrap();
        std::fs::write(dir.path().join("inv.yml"), text).unwrap();
        let inv = crate::config::inventory::Inventory::load(&dir.path().join("inv.yml"))
            .unwrap_or_else(|d| panic!("{d}"));
        (dir, inv)
    }

    #[test]
    fn a_valid_entry_with_defaults_and_host_precedence() {
        let text = with_files(
            "[{src: templates/site.j2, dest: /etc/nginx/sites-enabled/default, service: nginx}]",
        )
        .replace(
            "10.0.0.2/24}",
            "10.0.0.2/24, ha_files: [{src: templates/site.j2, dest: /etc/haproxy/haproxy.cfg, mode: \"0640\", owner: root, group: haproxy, service: haproxy}]}",
        );
        let (dir, inv) = load_with_template(&text);
        let c = &inv.clusters[0];
        let f = &c.nodes[0].files[0];
        assert_eq!(f.dest, "/etc/nginx/sites-enabled/default");
        assert_eq!(
            (f.mode, f.owner.as_str(), f.group.as_str()),
            (0o644, "root", "root")
        );
        assert_eq!(f.service.as_deref(), Some("nginx"));
        assert_eq!(f.src, dir.path().join("templates/site.j2"));
        let g = &c.nodes[1].files[0];
        assert_eq!(
            (g.dest.as_str(), g.mode, g.group.as_str()),
            ("/etc/haproxy/haproxy.cfg", 0o640, "haproxy")
        );
        assert_eq!(
            c.nodes[1].files.len(),
            1,
            "the host's list replaces the group's"
        );
        assert_eq!(c.nodes[0].vars["ha_heartbeat_interface"], "eth1");
        assert_eq!(c.nodes[0].vars["ansible_host"], "192.168.1.11");
    }

    /// The diagnostics of `text` loaded beside `templates/site.j2`.
    fn errors(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("templates/site.j2"), "x\n").unwrap();
        std::fs::write(dir.path().join("inv.yml"), text).unwrap();
        crate::config::inventory::Inventory::load(&dir.path().join("inv.yml"))
            .unwrap_err()
            .to_string()
    }

    #[track_caller]
    fn rejects_at(text: &str, at: &str, needle: &str) {
        let errors = errors(text);
        assert!(
            // A diagnostic is its line and its hint's.
            errors
                .split("\n/")
                .any(|d| d.contains(&format!("inv.yml:{at}: error: ")) && d.contains(needle)),
            "no error at {at} containing {needle:?}; got:\n{errors}"
        );
    }

    #[test]
    fn bad_entries_are_named_at_their_field() {
        let entry = |e: &str| with_files(&format!("[{{{e}}}]"));
        let ok = "src: templates/site.j2, dest: /etc/nginx/x";
        rejects_at(
            &entry("src: templates/site.j2, dest: etc/x"),
            "11:51",
            "dest: `etc/x` is not an absolute path",
        );
        rejects_at(
            &entry("src: templates/site.j2, dest: /etc/../x"),
            "11:51",
            "not a normalised path",
        );
        rejects_at(
            &entry("src: templates/site.j2, dest: /etc/ha.d/ha.cf"),
            "11:51",
            "inside /etc/ha.d, which hadeploy manages",
        );
        rejects_at(
            &entry("src: templates/site.j2, dest: /var/lib/hadeploy/x"),
            "11:51",
            "inside /var/lib/hadeploy",
        );
        rejects_at(
            &entry("src: nothere.j2, dest: /etc/x"),
            "11:26",
            "src: template",
        );
        rejects_at(
            &entry(&format!("{ok}, mode: 0644")),
            "11:71",
            "mode: not an octal mode string",
        );
        rejects_at(
            &entry(&format!("{ok}, mode: \"0944\"")),
            "11:71",
            "not an octal mode string",
        );
        rejects_at(
            &entry(&format!("{ok}, owner: \"a b\"")),
            "11:72",
            "`a b` is not a owner name",
        );
        rejects_at(
            &entry(&format!("{ok}, service: nginxx")),
            "11:74",
            "did you mean `nginx`?",
        );
        rejects_at(
            &entry(&format!("{ok}, srvice: nginx")),
            "11:65",
            "did you mean `service`?",
        );
        rejects_at(&entry("dest: /etc/x"), "11:20", "needs `src`");
        rejects_at(
            &with_files(&format!("[{{{ok}}}, {{{ok}}}]")),
            "11:97",
            "/etc/nginx/x is the dest of two entries",
        );
        rejects_at(&with_files("/etc/x"), "11:9", "ha_files: expected a list");
    }

    #[test]
    fn an_inventory_role_is_a_known_service() {
        let text =
            with_files("[{src: templates/site.j2, dest: /etc/squid/squid.conf, service: squid}]");
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("templates")).unwrap();
        std::fs::create_dir(dir.path().join("roles")).unwrap();
        std::fs::write(dir.path().join("templates/site.j2"), "x\n").unwrap();
        std::fs::write(
            dir.path().join("roles/squid.yml"),
            "service: {debian: squid}\nconfig_test: squid -k parse\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("inv.yml"), &text).unwrap();
        let inv = crate::config::inventory::Inventory::load(&dir.path().join("inv.yml")).unwrap();
        assert_eq!(
            inv.clusters[0].nodes[0].files[0].service.as_deref(),
            Some("squid")
        );
        let (_dir, result) = load(&text);
        assert!(
            result
                .unwrap_err()
                .to_string()
                .contains("`squid` is not a known role")
        );
    }

    #[test]
    fn ini_entries_read_like_yaml_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("site.j2"), "x\n").unwrap();
        std::fs::write(
            dir.path().join("hosts"),
            "[web]\nnode1 ansible_host=192.168.1.11 ha_heartbeat_address=10.0.0.1/24\nnode2 ansible_host=192.168.1.12 ha_heartbeat_address=10.0.0.2/24\n\n[web:vars]\nha_vips=['192.168.1.100/24']\nha_heartbeat_interface=eth1\nha_files=[{'src': 'site.j2', 'dest': '/etc/nginx/sites-enabled/default', 'mode': '0640', 'service': 'nginx'}]\n",
        )
        .unwrap();
        let inv = crate::config::inventory::Inventory::load(&dir.path().join("hosts"))
            .unwrap_or_else(|d| panic!("{d}"));
        let f = &inv.clusters[0].nodes[1].files[0];
        assert_eq!(
            (f.dest.as_str(), f.mode),
            ("/etc/nginx/sites-enabled/default", 0o640)
        );
        std::fs::write(
            dir.path().join("hosts"),
            "[web]\nnode1 ansible_host=192.168.1.11 ha_heartbeat_address=10.0.0.1/24\nnode2 ansible_host=192.168.1.12 ha_heartbeat_address=10.0.0.2/24\n\n[web:vars]\nha_vips=['192.168.1.100/24']\nha_heartbeat_interface=eth1\nha_files=[{'src': 'site.j2', 'dest': 'relative'}]\n",
        )
        .unwrap();
        let err = crate::config::inventory::Inventory::load(&dir.path().join("hosts"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("hosts:8:") && err.contains("dest: `relative` is not an absolute path"),
            "{err}"
        );
    }
}
