//! What an `apply` run reports: per host its outcome, the steps it took (or would take) with
//! their diffs, and how long it took — as the terminal recap Ansible users know, as one JSON
//! document, and as exit-code bits. Beside `drill::report`, which does the same for drills.

use serde::Serialize;

use super::apply::{HostReport, Outcome};
use crate::error::Status;

/// The whole run, in inventory order.
pub struct ApplyReport {
    /// Check mode: the steps are what *would* change.
    pub check: bool,
    pub hosts: Vec<HostReport>,
}

#[derive(Serialize)]
struct JsonChange<'a> {
    step: &'a str,
    diff: &'a Option<String>,
}

#[derive(Serialize)]
struct JsonHost<'a> {
    host: &'a str,
    cluster: &'a str,
    status: &'static str,
    error: Option<&'a str>,
    elapsed_ms: u64,
    changes: Vec<JsonChange<'a>>,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    check: bool,
    hosts: Vec<JsonHost<'a>>,
}

impl Outcome {
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Changed => "changed",
            Outcome::Failed(_) => "failed",
            Outcome::Unreachable(_) => "unreachable",
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Failed(e) | Outcome::Unreachable(e) => Some(e),
            Outcome::Ok | Outcome::Changed => None,
        }
    }
}

impl ApplyReport {
    /// Exit-code bits: 4 for an unreachable host, 2 for a failed one, and in check mode 2 when
    /// anything would change (the cluster is not as the inventory says).
    pub fn status(&self) -> Status {
        let mut status = Status::OK;
        for host in &self.hosts {
            status |= match &host.outcome {
                Outcome::Unreachable(_) => Status::UNREACHABLE,
                Outcome::Failed(_) => Status::NOT_AS_DESIRED,
                Outcome::Changed | Outcome::Ok => {
                    Status::not_as_desired_if(self.check && !host.steps.is_empty())
                }
            };
        }
        status
    }

    pub fn json(&self) -> String {
        let hosts = self
            .hosts
            .iter()
            .map(|r| JsonHost {
                host: &r.host,
                cluster: &r.cluster,
                status: r.outcome.word(),
                error: r.outcome.error(),
                elapsed_ms: r.elapsed.as_millis() as u64,
                changes: r
                    .steps
                    .iter()
                    .map(|s| JsonChange {
                        step: &s.description,
                        diff: &s.diff,
                    })
                    .collect(),
            })
            .collect();
        let report = JsonReport {
            check: self.check,
            hosts,
        };
        serde_json::to_string(&report).expect("the report serializes")
    }

    /// The changes per host, then the recap (ok / changed / failed / unreachable per host).
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for r in &self.hosts {
            if r.steps.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{} ({}):", r.host, r.cluster);
            for s in &r.steps {
                let would = if self.check { "would " } else { "" };
                let _ = writeln!(out, "  {would}{}", s.description);
                for line in s.diff.iter().flat_map(|d| d.lines()) {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        let mode = if self.check {
            " (check mode: nothing was changed)"
        } else {
            ""
        };
        let _ = writeln!(out, "\nRECAP{mode}");
        for r in &self.hosts {
            let changed = if r.outcome == Outcome::Changed {
                r.steps.len()
            } else {
                0
            };
            let failed = matches!(r.outcome, Outcome::Failed(_)) as u8;
            let unreachable = matches!(r.outcome, Outcome::Unreachable(_)) as u8;
            let ok = (failed + unreachable == 0) as u8;
            let _ = writeln!(
                out,
                "{:<24} ok={ok} changed={changed} failed={failed} unreachable={unreachable}",
                r.host
            );
            if let Some(e) = r.outcome.error() {
                let _ = writeln!(out, "    {e}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::controller::apply::StepReport;

    fn host(name: &str, outcome: Outcome, steps: usize) -> HostReport {
        HostReport {
            host: name.into(),
            cluster: "web".into(),
            outcome,
            steps: (0..steps)
                .map(|i| StepReport {
                    description: format!("step {i}"),
                    diff: (i == 0).then(|| "-old\n+new".to_string()),
                })
                .collect(),
            elapsed: Duration::from_millis(12),
        }
    }

    #[test]
    fn status_bits_follow_the_hosts_and_check_mode() {
        let report = |check, hosts| ApplyReport { check, hosts };
        assert_eq!(
            report(false, vec![host("a", Outcome::Changed, 2)]).status(),
            Status::OK
        );
        assert_eq!(
            report(true, vec![host("a", Outcome::Changed, 2)])
                .status()
                .code(),
            2
        );
        assert_eq!(
            report(true, vec![host("a", Outcome::Ok, 0)]).status(),
            Status::OK
        );
        let mixed = report(
            false,
            vec![
                host("a", Outcome::Failed("boom".into()), 0),
                host("b", Outcome::Unreachable("ssh".into()), 0),
            ],
        );
        assert_eq!(mixed.status().code(), 6);
    }

    #[test]
    fn text_and_json_say_the_same() {
        let r = ApplyReport {
            check: true,
            hosts: vec![
                host("a", Outcome::Changed, 1),
                host("b", Outcome::Failed("no sudo".into()), 0),
            ],
        };
        let text = r.text();
        assert!(
            text.contains("a (web):\n  would step 0\n    -old\n    +new\n"),
            "{text}"
        );
        assert!(text.contains("RECAP (check mode: nothing was changed)"));
        assert!(text.contains(
            "b                        ok=0 changed=0 failed=1 unreachable=0\n    no sudo"
        ));
        let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
        assert_eq!(json["check"], true);
        assert_eq!(json["hosts"][0]["changes"][0]["diff"], "-old\n+new");
        assert_eq!(json["hosts"][1]["status"], "failed");
        assert_eq!(json["hosts"][1]["error"], "no sudo");
    }
}
