//! /etc/ha.d/haresources as ResourceManager reads it (docs/protocol.md §5.1): one group per line —
//! the preferred node, then resources started left to right — with `#` comments, `\`
//! continuations and `::` between a resource and its arguments. A bare dotted quad is an
//! `IPaddr` resource; `IPaddr`/`IPaddr2` take `ip[/cidr[/nic[/broadcast]]]`, where a numeric
//! third part is the broadcast address, as the resource agents read it.

use std::net::Ipv4Addr;
use std::path::Path;

use super::{ConfigError, Location};

/// Which address resource agent a VIP line names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressAgent {
    /// A bare address: `IPaddr::<ip>`.
    Bare,
    /// `IPaddr`: an interface alias (`eth0:0`).
    IPaddr,
    /// `IPaddr2`: a plain secondary address (`ip addr add`).
    IPaddr2,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    Address {
        agent: AddressAgent,
        ip: Ipv4Addr,
        prefix: Option<u8>,
        iface: Option<String>,
        broadcast: Option<Ipv4Addr>,
    },
    Script {
        name: String,
        args: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The preferred node, lower-cased.
    pub node: String,
    /// The resources as written (`IPaddr2::10.0.0.100/24`), for names and logs.
    pub texts: Vec<String>,
    pub resources: Vec<Resource>,
    /// The line the group starts on.
    pub line: usize,
}

impl Group {
    /// A group is known by its first resource (ResourceManager's rule).
    pub fn name(&self) -> &str {
        self.texts.first().map(String::as_str).unwrap_or("")
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Haresources {
    pub groups: Vec<Group>,
}

/// Characters that would let a resource name or argument do more than name a script.
const SHELL_META: &[char] = &[
    ';', '&', '|', '$', '`', '<', '>', '(', ')', '{', '}', '\\', '"', '\'', '*', '?', '[', ']',
    '~', '!',
];

fn parse_resource(text: &str) -> Result<Resource, String> {
    if let Some(c) = text
        .chars()
        .find(|c| SHELL_META.contains(c) || c.is_control())
    {
        return Err(format!(
            "resource `{text}` contains `{c}`: resource names and arguments are plain words"
        ));
    }
    let mut parts = text.split("::");
    let name = parts.next().unwrap_or("");
    let args: Vec<String> = parts.map(str::to_string).collect();
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "resource `{text}`: the name must be a script name without `/`"
        ));
    }
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        if !args.is_empty() {
            return Err(format!(
                "resource `{text}`: a bare address takes no arguments; write IPaddr2::{ip}/24/eth0"
            ));
        }
        return Ok(Resource::Address {
            agent: AddressAgent::Bare,
            ip,
            prefix: None,
            iface: None,
            broadcast: None,
        });
    }
    let agent = match name {
        "IPaddr" => AddressAgent::IPaddr,
        "IPaddr2" => AddressAgent::IPaddr2,
        _ => {
            return Ok(Resource::Script {
                name: name.to_string(),
                args,
            });
        }
    };
    let [spec] = args.as_slice() else {
        return Err(format!(
            "resource `{text}`: {name} takes one argument, ip[/cidr[/nic[/broadcast]]]"
        ));
    };
    let mut fields = spec.split('/');
    let ip_text = fields.next().unwrap_or("");
    let ip = ip_text
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("resource `{text}`: `{ip_text}` is not an IPv4 address"))?;
    let prefix = match fields.next() {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u8>()
                .ok()
                .filter(|p| (1..=32).contains(p))
                .ok_or_else(|| format!("resource `{text}`: prefix `{p}` is not 1-32"))?,
        ),
    };
    let mut iface = None;
    let mut broadcast = None;
    if let Some(third) = fields.next().filter(|f| !f.is_empty()) {
        // The agents take a numeric third part as the broadcast address.
        match third.parse::<Ipv4Addr>() {
            Ok(b) => broadcast = Some(b),
            Err(_) => iface = Some(third.to_string()),
        }
    }
    if let Some(fourth) = fields.next().filter(|f| !f.is_empty()) {
        broadcast = Some(fourth.parse::<Ipv4Addr>().map_err(|_| {
            format!("resource `{text}`: broadcast `{fourth}` is not an IPv4 address")
        })?);
    }
    if fields.next().is_some() {
        return Err(format!(
            "resource `{text}`: too many `/` parts; use ip/cidr/nic/broadcast"
        ));
    }
    Ok(Resource::Address {
        agent,
        ip,
        prefix,
        iface,
        broadcast,
    })
}

impl Haresources {
    pub fn parse(text: &str, file: &Path) -> Result<Haresources, ConfigError> {
        let mut groups: Vec<Group> = Vec::new();
        let mut logical = String::new();
        let mut start = 0;
        let lines: Vec<&str> = text.lines().collect();
        for (index, raw) in lines.iter().enumerate() {
            let line = index + 1;
            if logical.is_empty() {
                start = line;
            }
            let content = raw.split('#').next().unwrap_or("");
            let (content, continued) = match content.trim_end().strip_suffix('\\') {
                Some(c) => (c, true),
                None => (content, false),
            };
            logical.push(' ');
            logical.push_str(content);
            if continued && index + 1 < lines.len() {
                continue;
            }
            let words: Vec<&str> = logical.split_whitespace().collect();
            let err = |message: String| ConfigError {
                at: Location {
                    file: file.to_path_buf(),
                    line: start,
                },
                message,
            };
            if let Some((node, resources)) = words.split_first() {
                if resources.is_empty() {
                    return Err(err(format!(
                        "node `{node}` has no resources: write `{node} IPaddr2::10.0.0.100/24 nginx`"
                    )));
                }
                let parsed = resources
                    .iter()
                    .map(|r| parse_resource(r))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(err)?;
                let group = Group {
                    node: node.to_ascii_lowercase(),
                    texts: resources.iter().map(|r| r.to_string()).collect(),
                    resources: parsed,
                    line: start,
                };
                if let Some(twin) = groups.iter().find(|g| g.name() == group.name()) {
                    return Err(err(format!(
                        "a group starting with `{}` is already defined at line {}: groups are known by their first resource, which must be unique",
                        group.name(),
                        twin.line
                    )));
                }
                groups.push(group);
            }
            logical.clear();
        }
        Ok(Haresources { groups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Haresources, ConfigError> {
        Haresources::parse(text, Path::new("haresources"))
    }

    #[test]
    fn groups_with_continuations_comments_and_address_forms() {
        let h = parse(
            "# cluster\nNode1 10.0.0.100 \\\n   IPaddr::10.0.0.101/24/eth0 # vip\nnode2 IPaddr2::10.0.0.102/24/10.0.0.255 Delay::3::0 nginx\n",
        )
        .unwrap();
        assert_eq!(h.groups.len(), 2);
        let g = &h.groups[0];
        assert_eq!(
            (g.node.as_str(), g.line, g.name()),
            ("node1", 2, "10.0.0.100")
        );
        assert_eq!(
            g.resources[1],
            Resource::Address {
                agent: AddressAgent::IPaddr,
                ip: "10.0.0.101".parse().unwrap(),
                prefix: Some(24),
                iface: Some("eth0".into()),
                broadcast: None
            }
        );
        let g = &h.groups[1];
        assert_eq!(
            g.resources[0],
            Resource::Address {
                agent: AddressAgent::IPaddr2,
                ip: "10.0.0.102".parse().unwrap(),
                prefix: Some(24),
                iface: None,
                broadcast: Some("10.0.0.255".parse().unwrap())
            },
            "a numeric third part is the broadcast"
        );
        assert_eq!(
            g.resources[1],
            Resource::Script {
                name: "Delay".into(),
                args: vec!["3".into(), "0".into()]
            }
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_line() {
        for (text, needle) in [
            ("n1 nginx;reboot", "contains `;`"),
            ("n1", "no resources"),
            ("n1 IPaddr2::10.0.0.300/24", "not an IPv4"),
            ("n1 IPaddr2::10.0.0.1/33", "prefix"),
            ("n1 ../../bin/sh", "without `/`"),
            ("n1 nginx\nn2 nginx", "already defined at line 1"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.message.contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        for text in [
            "\\",
            "\\\n\\\n",
            "a ::",
            "a IPaddr::",
            "a IPaddr2::1.2.3.4/24/e/f/g",
            "\0",
        ] {
            let _ = parse(text);
        }
    }
}
