//! Turns a validated cluster into the files each node runs on — /etc/ha.d/ha.cf, haresources and
//! authkeys — through minijinja templates compiled into the binary (overridable from a
//! directory), with strict undefined so a typo in a template is an error, not an empty line.
//! After rendering it proves the guarantees Heartbeat relies on: haresources and authkeys
//! byte-identical on every node, ha.cf differing only in its ucast lines, udpport before every
//! media line, node lines equal to the cluster's node names. The other files a node gets —
//! the sysctl drop-in, the agent's unit or init script, its manual page — come from `system`,
//! so every file `apply` installs is produced here; the services' own configuration from the
//! inventory's `ha_files` templates comes from `service_files`.

pub mod service_files;
pub mod system;

use std::fs;
use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior, context};

use crate::config::ha::AuthMethod;
use crate::config::inventory::Cluster;
use crate::config::inventory::cluster::Media;
use crate::config::inventory::secrets::Secret;

/// The templates, by the file name they render.
pub const TEMPLATES: [(&str, &str); 4] = [
    ("ha.cf.j2", include_str!("../../templates/ha.cf.j2")),
    (
        "haresources.j2",
        include_str!("../../templates/haresources.j2"),
    ),
    ("authkeys.j2", include_str!("../../templates/authkeys.j2")),
    (
        "hadeploy-agent.cf.j2",
        include_str!("../../templates/hadeploy-agent.cf.j2"),
    ),
];

/// One rendered file: its path below the node's root, its content and its mode.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: &'static str,
    pub content: String,
    pub mode: u32,
    /// Contains a secret: never print `content` (diffs redact it).
    pub secret: bool,
    /// The agent runs on it: a change reloads or restarts the agent
    /// (`controller::plan::agent_action` decides which).
    pub notifies_agent: bool,
}

impl std::fmt::Debug for RenderedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let content: &dyn std::fmt::Debug = if self.secret {
            &"<redacted>"
        } else {
            &self.content
        };
        f.debug_struct("RenderedFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("content", content)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedNode {
    pub node_name: String,
    pub host: String,
    pub files: Vec<RenderedFile>,
}

impl RenderedNode {
    pub fn file(&self, path: &str) -> Option<&RenderedFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template {name}: {source}")]
    Template {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("cannot read templates from {dir}: {source}")]
    TemplateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster `{cluster}`: the rendered files break a Heartbeat guarantee: {reason}")]
    Guarantee { cluster: String, reason: String },
    #[error("cluster `{cluster}` uses {method} but no secret was provided")]
    MissingSecret {
        cluster: String,
        method: &'static str,
    },
    #[error("{host}: template {message}")]
    ServiceTemplate { host: String, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The template set: built-ins, with any file of the same name in `override_dir` taking over.
pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    pub fn new(override_dir: Option<&Path>) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Config files end with a newline; Jinja drops the last one by default.
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .map_err(|source| RenderError::Template {
                name: "syntax".into(),
                source,
            })?;
        env.set_syntax(syntax);
        for (name, builtin) in TEMPLATES {
            let source = match override_dir {
                Some(dir) if dir.join(name).is_file() => fs::read_to_string(dir.join(name))
                    .map_err(|source| RenderError::TemplateDir {
                        dir: dir.to_path_buf(),
                        source,
                    })?,
                Some(dir) if !dir.is_dir() => {
                    return Err(RenderError::TemplateDir {
                        dir: dir.to_path_buf(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "not a directory",
                        ),
                    });
                }
                _ => builtin.to_string(),
            };
            env.add_template_owned(name, source)
                .map_err(|source| RenderError::Template {
                    name: name.to_string(),
                    source,
                })?;
        }
        Ok(Self { env })
    }

    /// Renders every node of a cluster and checks the cross-node guarantees.
    pub fn render_cluster(
        &self,
        cluster: &Cluster,
        secret: Option<&Secret>,
    ) -> Result<Vec<RenderedNode>, RenderError> {
        let secret_text = match (cluster.auth, secret) {
            (AuthMethod::Crc, _) => "",
            (_, Some(s)) => s.expose(),
            (method, None) => {
                return Err(RenderError::MissingSecret {
                    cluster: cluster.name.clone(),
                    method: method.name(),
                });
            }
        };
        let resources: Vec<String> = cluster
            .vips
            .iter()
            .map(|v| v.resource_spec())
            .chain(cluster.resources.iter().map(|r| r.spec()))
            .collect();
        let cluster_ctx = context! {
            name => &cluster.name,
            nodes => cluster.nodes.iter().map(|n| n.node_name.clone()).collect::<Vec<_>>(),
            preferred_node => &cluster.preferred_node,
            resources => resources,
            keepalive => cluster.keepalive.to_string(),
            warntime => cluster.warntime.to_string(),
            deadtime => cluster.deadtime.to_string(),
            initdead => cluster.initdead.to_string(),
            udpport => cluster.udpport,
            media => cluster.media.as_str(),
            heartbeat_interface => &cluster.heartbeat_interface,
            mcast_group => cluster.mcast_group.to_string(),
            mcast_ttl => cluster.mcast_ttl,
            auto_failback => cluster.auto_failback.as_str(),
            auth => cluster.auth.name(),
            resource_check => cluster.resource_check.map(|d| d.to_string()),
            resource_check_failures => cluster.resource_check_failures,
            metrics_listen => cluster.metrics_listen.map(|a| a.to_string()),
        };
        let mut rendered = Vec::new();
        for node in &cluster.nodes {
            let peers: Vec<String> = cluster
                .nodes
                .iter()
                .filter(|peer| cluster.media == Media::UcastAll || peer.node_name != node.node_name)
                .filter_map(|peer| peer.heartbeat_address.map(|a| a.addr.to_string()))
                .collect();
            let ctx = context! {
                cluster => cluster_ctx.clone(),
                node => context! { name => &node.node_name, host => &node.host, ucast_peers => peers },
                secret => secret_text,
            };
            let render = |name: &str| -> Result<String, RenderError> {
                let template =
                    self.env
                        .get_template(name)
                        .map_err(|source| RenderError::Template {
                            name: name.to_string(),
                            source,
                        })?;
                template
                    .render(&ctx)
                    .map_err(|source| RenderError::Template {
                        name: name.to_string(),
                        source,
                    })
            };
            rendered.push(RenderedNode {
                node_name: node.node_name.clone(),
                host: node.host.clone(),
                files: vec![
                    RenderedFile {
                        path: "etc/ha.d/ha.cf",
                        content: render("ha.cf.j2")?,
                        mode: 0o644,
                        secret: false,
                        notifies_agent: true,
                    },
                    RenderedFile {
                        path: "etc/ha.d/haresources",
                        content: render("haresources.j2")?,
                        mode: 0o644,
                        secret: false,
                        notifies_agent: true,
                    },
                    RenderedFile {
                        path: "etc/ha.d/authkeys",
                        content: render("authkeys.j2")?,
                        mode: 0o600,
                        secret: true,
                        notifies_agent: true,
                    },
                    RenderedFile {
                        path: "etc/ha.d/hadeploy-agent.cf",
                        content: render("hadeploy-agent.cf.j2")?,
                        mode: 0o644,
                        secret: false,
                        notifies_agent: true,
                    },
                ],
            });
        }
        verify_guarantees(cluster, &rendered).map_err(|reason| RenderError::Guarantee {
            cluster: cluster.name.clone(),
            reason,
        })?;
        Ok(rendered)
    }
}

/// The rules Heartbeat needs across nodes, checked on the output (so overridden templates are
/// held to them too).
pub fn verify_guarantees(cluster: &Cluster, nodes: &[RenderedNode]) -> Result<(), String> {
    let Some(first) = nodes.first() else {
        return Ok(());
    };
    for path in [
        "etc/ha.d/haresources",
        "etc/ha.d/authkeys",
        "etc/ha.d/hadeploy-agent.cf",
    ] {
        for other in &nodes[1..] {
            if first.file(path).map(|f| &f.content) != other.file(path).map(|f| &f.content) {
                return Err(format!(
                    "/{path} differs between {} and {}",
                    first.node_name, other.node_name
                ));
            }
        }
    }
    let expected_nodes: Vec<&str> = cluster.nodes.iter().map(|n| n.node_name.as_str()).collect();
    let without_ucast = |text: &str| -> Vec<String> {
        directive_lines(text)
            .filter(|l| !l.starts_with("ucast"))
            .collect()
    };
    for node in nodes {
        let hacf = node
            .file("etc/ha.d/ha.cf")
            .map(|f| f.content.as_str())
            .unwrap_or_default();
        if without_ucast(hacf)
            != without_ucast(
                first
                    .file("etc/ha.d/ha.cf")
                    .map(|f| f.content.as_str())
                    .unwrap_or_default(),
            )
        {
            return Err(format!(
                "ha.cf of {} differs from {}'s in more than its ucast lines",
                node.node_name, first.node_name
            ));
        }
        let mut udpport_seen = false;
        let mut node_lines = Vec::new();
        for line in directive_lines(hacf) {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("udpport") => udpport_seen = true,
                Some("ucast" | "bcast" | "mcast") if !udpport_seen => {
                    return Err(format!(
                        "ha.cf of {}: `{line}` comes before udpport, so it would use the default port",
                        node.node_name
                    ));
                }
                Some("node") => node_lines.extend(words.map(str::to_string)),
                _ => {}
            }
        }
        if node_lines != expected_nodes {
            return Err(format!(
                "ha.cf of {} names nodes {:?}, the inventory has {:?}",
                node.node_name, node_lines, expected_nodes
            ));
        }
    }
    Ok(())
}

/// ha.cf lines that carry a directive: comments stripped, blank lines dropped.
fn directive_lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim().to_string())
        .filter(|l| !l.is_empty())
}

/// Writes `OUT/<node>/etc/ha.d/*` for every node, each file atomically with its mode.
pub fn write_tree(out: &Path, nodes: &[RenderedNode]) -> Result<Vec<PathBuf>, RenderError> {
    let mut written = Vec::new();
    for node in nodes {
        for file in &node.files {
            let path = out.join(&node.node_name).join(file.path);
            crate::files::write_atomic(&path, file.content.as_bytes(), file.mode).map_err(
                |source| RenderError::Write {
                    path: path.clone(),
                    source,
                },
            )?;
            written.push(path);
        }
    }
    Ok(written)
}
