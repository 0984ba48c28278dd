//! The services' own configuration (`ha_files`): each node's templates rendered the way
//! Ansible's `template` module renders them — Jinja with strict undefined, `trim_blocks`, the
//! trailing newline kept — over the variables an Ansible user's template expects: every
//! inventory variable the host resolves to (`ha_vips` among them), `inventory_hostname`,
//! `groups`, and the facts the probe gathered (`ansible_hostname`, `ansible_os_family`, …, and
//! `ansible_facts`). Facts come from the node, so this runs after the probe and before
//! anything changes. A template error names the template, its line, and the undefined name.

use std::collections::BTreeMap;

use minijinja::{Environment, ErrorKind, Value};

use crate::config::inventory::cluster::{ClusterNode, ServiceFile};

use super::RenderError;

/// What the probe learnt about a node, under the names Ansible's setup module gives them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// `uname -n`.
    pub nodename: String,
    /// `Debian`, `RedHat`, or the distribution's own name.
    pub os_family: String,
    /// `Debian`, `Ubuntu`, …: the os-release ID as Ansible capitalises it.
    pub distribution: String,
    /// `systemd` or `sysvinit`.
    pub service_mgr: String,
    pub all_ipv4_addresses: Vec<String>,
}

impl Facts {
    /// `ansible_facts` and the `ansible_*` variables Ansible injects beside it.
    fn variables(&self) -> BTreeMap<String, serde_json::Value> {
        let hostname = self.nodename.split('.').next().unwrap_or_default();
        let facts: BTreeMap<&str, serde_json::Value> = [
            ("hostname", hostname.into()),
            ("nodename", self.nodename.clone().into()),
            ("os_family", self.os_family.clone().into()),
            ("distribution", self.distribution.clone().into()),
            ("service_mgr", self.service_mgr.clone().into()),
            ("all_ipv4_addresses", self.all_ipv4_addresses.clone().into()),
        ]
        .into();
        let mut vars: BTreeMap<String, serde_json::Value> = facts
            .iter()
            .map(|(k, v)| (format!("ansible_{k}"), v.clone()))
            .collect();
        vars.insert(
            "ansible_facts".into(),
            serde_json::to_value(&facts).unwrap_or_default(),
        );
        vars
    }
}

/// One `ha_files` entry rendered for one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedServiceFile {
    pub entry: ServiceFile,
    pub content: String,
}

/// Renders `node`'s `ha_files` with its variables, `groups` and `facts`.
pub fn render(
    node: &ClusterNode,
    groups: &BTreeMap<String, Vec<String>>,
    facts: &Facts,
) -> Result<Vec<RenderedServiceFile>, RenderError> {
    if node.files.is_empty() {
        return Ok(Vec::new());
    }
    let mut vars: BTreeMap<String, serde_json::Value> = node.vars.clone();
    vars.extend(facts.variables());
    vars.insert("inventory_hostname".into(), node.host.clone().into());
    vars.insert(
        "inventory_hostname_short".into(),
        node.host.split('.').next().unwrap_or_default().into(),
    );
    vars.insert(
        "groups".into(),
        serde_json::to_value(groups).unwrap_or_default(),
    );
    let ctx = Value::from(
        vars.iter()
            .map(|(k, v)| (k.clone(), jinja_value(v)))
            .collect::<BTreeMap<String, Value>>(),
    );
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // Ansible's template module: a block tag's newline is dropped, the file's last one kept.
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| RenderError::ServiceTemplate {
            host: node.host.clone(),
            message: e.to_string(),
        })?;
    env.set_syntax(syntax);
    let mut rendered = Vec::new();
    for entry in &node.files {
        let name = entry.src.display().to_string();
        let fail = |message: String| RenderError::ServiceTemplate {
            host: node.host.clone(),
            message,
        };
        let source = std::fs::read_to_string(&entry.src)
            .map_err(|e| fail(format!("cannot read template {name}: {e}")))?;
        let template = env
            .template_from_named_str(&name, &source)
            .map_err(|e| fail(describe(&e, &name, &source, &vars, None)))?;
        let content = template
            .render(&ctx)
            .map_err(|e| fail(describe(&e, &name, &source, &vars, Some(&template))))?;
        rendered.push(RenderedServiceFile {
            entry: entry.clone(),
            content,
        });
    }
    Ok(rendered)
}

/// Plain data as a template value: what Jinja sees of a YAML or INI variable.
fn jinja_value(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(jinja_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), jinja_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// `template:line: what went wrong`; for an undefined value, the name the line uses that no
/// variable provides (minijinja's own message does not name it).
fn describe(
    error: &minijinja::Error,
    name: &str,
    source: &str,
    vars: &BTreeMap<String, serde_json::Value>,
    template: Option<&minijinja::Template<'_, '_>>,
) -> String {
    let line = error.line().unwrap_or(0);
    let at = format!("{name}:{line}");
    if error.kind() == ErrorKind::UndefinedError
        && let Some(template) = template
    {
        let text = source
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default();
        let mut missing: Vec<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !vars.contains_key(v) && mentions(text, v))
            .collect();
        missing.sort();
        if !missing.is_empty() {
            return format!(
                "{at}: undefined variable {}: not an inventory variable of the host, nor a fact",
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        // Defined, but an attribute or item of it is not (`ha_vips[3]`, `x.missing`).
        return format!("{at}: undefined value: `{}`", text.trim());
    }
    match error.detail() {
        Some(detail) => format!("{at}: {}: {detail}", error.kind()),
        None => format!("{at}: {}", error.kind()),
    }
}

/// Whether `line` uses `word` as a whole identifier.
fn mentions(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(i, _)| {
        let ident = |c: char| c.is_alphanumeric() || c == '_';
        let before = line[..i].chars().next_back().is_none_or(|c| !ident(c));
        let after = line[i + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !ident(c));
        before && after
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::inventory::diag::Origin;

    fn node(dir: &std::path::Path, template: &str) -> ClusterNode {
        std::fs::write(dir.join("t.j2"), template).unwrap();
        ClusterNode {
            host: "node1".into(),
            node_name: "node1".into(),
            connection: crate::config::inventory::Connection {
                host: "192.168.1.11".into(),
                port: 22,
                user: None,
                private_key: None,
                become_root: false,
            },
            heartbeat_address: None,
            service_address: None,
            origin: Origin::file(dir),
            files: vec![ServiceFile {
                src: dir.join("t.j2"),
                dest: "/etc/x".into(),
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                service: None,
                origin: Origin::file(dir),
            }],
            vars: [
                (
                    "ha_vips".to_string(),
                    serde_json::json!(["192.168.1.100/24"]),
                ),
                ("backend_port".to_string(), serde_json::json!(8080)),
            ]
            .into(),
        }
    }

    fn facts() -> Facts {
        Facts {
            nodename: "node1.example".into(),
            os_family: "Debian".into(),
            distribution: "Debian".into(),
            service_mgr: "systemd".into(),
            all_ipv4_addresses: vec!["192.168.1.11".into()],
        }
    }

    #[test]
    fn ansible_variables_facts_and_blocks_render_as_ansible_would() {
        let dir = tempfile::tempdir().unwrap();
        let template = "listen {{ (ha_vips[0] | split('/') | list)[0] }}:{{ backend_port }}\n{% for h in groups['web'] %}\nserver {{ h }}\n{% endfor %}\n# {{ inventory_hostname }} {{ ansible_hostname }} {{ ansible_facts.os_family }} {{ ansible_service_mgr }}\n";
        let groups = [(
            "web".to_string(),
            vec!["node1".to_string(), "node2".to_string()],
        )]
        .into();
        let out = render(&node(dir.path(), template), &groups, &facts()).unwrap();
        assert_eq!(
            out[0].content,
            "listen 192.168.1.100:8080\nserver node1\nserver node2\n# node1 node1 Debian systemd\n"
        );
    }

    #[test]
    fn an_undefined_name_is_named_with_its_template_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let err = render(
            &node(dir.path(), "ok\nport {{ backend_prot }}\n"),
            &BTreeMap::new(),
            &facts(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("node1: template ")
                && err.contains("t.j2:2: undefined variable `backend_prot`"),
            "{err}"
        );
        let err = render(
            &node(dir.path(), "{{ ha_vips[3] }}\n"),
            &BTreeMap::new(),
            &facts(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("t.j2:1: undefined value: `{{ ha_vips[3] }}`"),
            "{err}"
        );
        let err = render(&node(dir.path(), "{% if %}\n"), &BTreeMap::new(), &facts())
            .unwrap_err()
            .to_string();
        assert!(err.contains("t.j2:1: syntax error"), "{err}");
    }
}
