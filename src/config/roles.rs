//! Roles: what hadeploy knows about a service, as data rather than code — its service (unit or
//! init script) and package names per OS family, the command that tests its configuration and
//! the one that reloads it. The built-in roles (`roles/*.yml` in the source tree) are compiled
//! in; a file `<inventory dir>/roles/NAME.yml` adds a role or replaces the built-in one of that
//! name, so an operator can teach hadeploy another service without recompiling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Which distribution family a name is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Debian,
    Redhat,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    #[serde(default)]
    pub description: String,
    /// The unit or init script name per family.
    pub service: BTreeMap<Family, String>,
    #[serde(default)]
    pub package: BTreeMap<Family, String>,
    /// A command that exits non-zero when the service's configuration is broken.
    #[serde(default)]
    pub config_test: Option<String>,
    /// A command that makes the running service re-read its configuration.
    #[serde(default)]
    pub reload: Option<String>,
}

impl Role {
    /// The service name on `family`, or on any family when that one is not listed (the usual
    /// case: most services have one name everywhere).
    pub fn service_on(&self, family: Option<Family>) -> Option<&str> {
        family
            .and_then(|f| self.service.get(&f))
            .or_else(|| self.service.values().next())
            .map(String::as_str)
    }
}

const BUILT_IN: &[(&str, &str)] = &[
    ("heartbeat", include_str!("../../roles/heartbeat.yml")),
    ("nginx", include_str!("../../roles/nginx.yml")),
    ("haproxy", include_str!("../../roles/haproxy.yml")),
    ("httpd", include_str!("../../roles/httpd.yml")),
];

#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    #[error("{}: {message}", file.display())]
    Invalid { file: PathBuf, message: String },
}

/// Every role by name.
#[derive(Clone, Debug, Default)]
pub struct Roles {
    roles: BTreeMap<String, Role>,
}

fn parse(text: &str, file: &Path) -> Result<Role, RoleError> {
    let role: Role = serde_saphyr::from_str(text).map_err(|e| RoleError::Invalid {
        file: file.to_path_buf(),
        message: e.to_string(),
    })?;
    if role.service.is_empty() {
        return Err(RoleError::Invalid {
            file: file.to_path_buf(),
            message: "`service` must name the service for at least one family (debian, redhat)"
                .into(),
        });
    }
    Ok(role)
}

impl Roles {
    /// The built-in roles, then `<inventory_dir>/roles/*.yml` over them.
    pub fn load(inventory_dir: &Path) -> Result<Roles, RoleError> {
        let mut roles = BTreeMap::new();
        for (name, text) in BUILT_IN {
            let file = PathBuf::from(format!("roles/{name}.yml"));
            roles.insert(name.to_string(), parse(text, &file)?);
        }
        let dir = inventory_dir.join("roles");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
                .collect();
            files.sort();
            for file in files {
                let Some(name) = file.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                let text =
                    crate::config::heartbeat::read(&file).map_err(|e| RoleError::Invalid {
                        file: file.clone(),
                        message: e.message,
                    })?;
                roles.insert(name.to_string(), parse(&text, &file)?);
            }
        }
        Ok(Roles { roles })
    }

    /// Every role's name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    pub fn get(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// The role a service or resource name refers to: a role of that name, or the role whose
    /// service is called that on some family (`apache2` → `httpd`).
    pub fn for_service(&self, name: &str) -> Option<&Role> {
        self.roles.get(name).or_else(|| {
            self.roles
                .values()
                .find(|r| r.service.values().any(|s| s == name))
        })
    }

    /// What `name` is called on `family`: the role's service name, else `name` itself.
    pub fn service_name(&self, name: &str, family: Option<Family>) -> String {
        self.for_service(name)
            .and_then(|r| r.service_on(family))
            .unwrap_or(name)
            .to_string()
    }

    /// Every service name any role knows, on any family, for probing.
    pub fn all_services(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .roles
            .values()
            .flat_map(|r| r.service.values().cloned())
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_roles_map_names_per_family() {
        let roles = Roles::load(Path::new("/nonexistent")).unwrap();
        assert_eq!(roles.service_name("httpd", Some(Family::Debian)), "apache2");
        assert_eq!(roles.service_name("apache2", Some(Family::Redhat)), "httpd");
        assert_eq!(roles.service_name("nginx", None), "nginx");
        assert_eq!(roles.service_name("squid", Some(Family::Debian)), "squid");
        assert_eq!(
            roles.get("haproxy").unwrap().config_test.as_deref(),
            Some("haproxy -c -q -f /etc/haproxy/haproxy.cfg")
        );
        assert!(roles.all_services().contains(&"hadeploy-agent".to_string()));
    }

    #[test]
    fn an_inventory_role_adds_or_replaces_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("roles")).unwrap();
        std::fs::write(
            dir.path().join("roles/squid.yml"),
            "service: {debian: squid, redhat: squid}\nconfig_test: squid -k parse\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("roles/nginx.yml"),
            "service: {debian: nginx-extras}\n",
        )
        .unwrap();
        let roles = Roles::load(dir.path()).unwrap();
        assert_eq!(
            roles.get("squid").unwrap().config_test.as_deref(),
            Some("squid -k parse")
        );
        assert_eq!(
            roles.service_name("nginx", Some(Family::Debian)),
            "nginx-extras"
        );

        std::fs::write(
            dir.path().join("roles/bad.yml"),
            "service: {debian: x}\nreolad: y\n",
        )
        .unwrap();
        let err = Roles::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("bad.yml") && err.contains("reolad"), "{err}");
        std::fs::write(
            dir.path().join("roles/bad.yml"),
            "description: no service\n",
        )
        .unwrap();
        let err = Roles::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("`service`"), "{err}");
    }
}
