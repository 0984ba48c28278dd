//! How the nodes authenticate heartbeats: the authkeys method (and the link it is safe on), and
//! where the shared secret comes from — an environment variable, a file named in the inventory,
//! or the default file beside the inventory.

use std::path::PathBuf;

use crate::config::ha::AuthMethod;
use crate::config::inventory::cluster::SecretSource;
use crate::config::inventory::cluster::keys::AUTH_CHOICES;
use crate::config::inventory::diag::Diagnostic;

use super::{CVars, ClusterBuilder};

impl ClusterBuilder<'_> {
    /// crc on a link others can reach is an error; md5 only warns, since an old peer may need it.
    pub(super) fn auth(&mut self, c: &CVars, heartbeat_private: bool) -> AuthMethod {
        let auth = match self.string(c, "ha_auth").as_deref() {
            None | Some("sha1") => AuthMethod::Sha1,
            Some("md5") => AuthMethod::Md5,
            Some("crc") => AuthMethod::Crc,
            Some(other) => {
                let var = c.get("ha_auth").cloned();
                self.bad_choice(var.as_ref(), "ha_auth", other, AUTH_CHOICES);
                AuthMethod::Sha1
            }
        };
        if let Some(var) = c.get("ha_auth").cloned() {
            if auth == AuthMethod::Crc && !heartbeat_private {
                let d = Diagnostic::error(var.origin.clone(), Some("ha_auth"), "crc does not authenticate: anyone on the heartbeat link can take the cluster's resources")
                    .hint("use `sha1`, or set `ha_heartbeat_private: true` if the link is a crossover cable");
                self.error(d);
            } else if auth == AuthMethod::Md5 {
                self.diags.push(
                    Diagnostic::warning(
                        var.origin.clone(),
                        Some("ha_auth"),
                        "md5 is weaker than sha1",
                    )
                    .hint("use `sha1` unless a peer only supports md5"),
                );
            }
        }
        auth
    }

    pub(super) fn secret_source(&mut self, c: &CVars, auth: AuthMethod) -> SecretSource {
        if auth == AuthMethod::Crc {
            return SecretSource::None;
        }
        if let Some(name) = self.string(c, "ha_auth_secret_env") {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            {
                let var = c.get("ha_auth_secret_env").cloned();
                self.invalid(
                    var.as_ref(),
                    "ha_auth_secret_env",
                    "not an environment variable name",
                    "letters, digits and `_`",
                );
            }
            return SecretSource::Env(name);
        }
        match self.string(c, "ha_auth_secret_file") {
            Some(path) => {
                let path = PathBuf::from(path);
                SecretSource::File(if path.is_absolute() {
                    path
                } else {
                    self.inventory_dir.join(path)
                })
            }
            None => SecretSource::File(
                self.inventory_dir
                    .join(".hadeploy-secrets")
                    .join(format!("{}.key", self.group)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::inventory::cluster::SecretSource;
    use crate::config::inventory::cluster::testing::{BASE, load, rejects};

    #[test]
    fn crc_needs_a_private_link() {
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_auth: crc"),
            9,
            9,
            "crc does not authenticate",
        );
        let (_dir, ok) = load(&BASE.replace(
            "ha_resources: [nginx]",
            "ha_auth: crc\n        ha_heartbeat_private: yes",
        ));
        assert_eq!(ok.unwrap().clusters[0].secret, SecretSource::None);
    }
}
