//! The typed readers every section of the builder shares: a variable as a string, a boolean
//! (with YAML 1.1's `yes`/`no`), a list of service names, and the helpers that word type errors,
//! invalid values and unknown choices the same way whichever key they are about.

use crate::config::inventory::diag::{Diagnostic, Origin, did_you_mean};
use crate::config::inventory::layout::Var;
use crate::config::inventory::yaml::Value;

use super::{CVars, ClusterBuilder};

impl ClusterBuilder<'_> {
    pub(super) fn string(&mut self, c: &CVars, key: &str) -> Option<String> {
        let var = c.get(key)?.clone();
        match &var.node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) => var.node.scalar_text(),
            other => {
                self.type_error(&var, key, "a string", other.kind());
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, c: &CVars, key: &str) -> Option<bool> {
        let var = c.get(key)?.clone();
        match &var.node.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if matches!(s.to_lowercase().as_str(), "yes" | "true" | "on") => {
                Some(true)
            }
            Value::Str(s) if matches!(s.to_lowercase().as_str(), "no" | "false" | "off") => {
                Some(false)
            }
            other => {
                self.type_error(&var, key, "true or false", other.kind());
                None
            }
        }
    }

    pub(super) fn word_list(&mut self, var: &Var, key: &str) -> Vec<String> {
        let Value::Seq(items) = &var.node.value else {
            self.type_error(var, key, "a list of service names", var.node.value.kind());
            return Vec::new();
        };
        let mut words = Vec::new();
        for item in items {
            match item.scalar_text() {
                Some(w)
                    if !w.is_empty()
                        && w.chars().all(|ch| {
                            ch.is_ascii_alphanumeric() || matches!(ch, '_' | '-' | '.' | '@')
                        }) =>
                {
                    words.push(w)
                }
                _ => self.error(
                    Diagnostic::error(
                        Origin::new(&var.origin.file, item.pos),
                        Some(key),
                        "not a service name",
                    )
                    .hint("plain names such as `nginx`"),
                ),
            }
        }
        words
    }

    pub(super) fn type_error(&mut self, var: &Var, key: &str, expected: &str, found: &str) {
        let d = Diagnostic::error(
            var.origin.clone(),
            Some(key),
            format!("expected {expected}, found {found}"),
        );
        self.error(d);
    }

    pub(super) fn invalid(&mut self, var: Option<&Var>, key: &str, message: &str, hint: &str) {
        let origin = var
            .map(|v| v.origin.clone())
            .unwrap_or_else(|| self.group_origin());
        self.error(Diagnostic::error(origin, Some(key), message).hint(hint));
    }

    pub(super) fn bad_choice(
        &mut self,
        var: Option<&Var>,
        key: &str,
        value: &str,
        choices: &[&str],
    ) {
        let mut hint = format!("one of: {}", choices.join(", "));
        if let Some(s) = did_you_mean(value, choices.iter().copied()) {
            hint = format!("did you mean `{s}`? ({hint})");
        }
        self.invalid(var, key, &format!("`{value}` is not a valid choice"), &hint);
    }
}

#[cfg(test)]
mod tests {
    use crate::config::inventory::cluster::testing::{BASE, rejects};

    #[test]
    fn wrong_types() {
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_resources: nginx"),
            9,
            9,
            "ha_resources: expected a list",
        );
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_udpport: [694]"),
            9,
            9,
            "ha_udpport: expected a port number, found a list",
        );
        rejects(
            &BASE.replace("ha_resources: [nginx]", "ha_keepalive: {a: 1}"),
            9,
            9,
            "ha_keepalive: expected a time",
        );
    }
}
