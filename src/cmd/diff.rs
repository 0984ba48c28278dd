//! `hadeploy diff`: every difference between the clusters and what they should be, changing
//! nothing — the read-only survey (`controller::apply::survey`, the probe and plan `apply`
//! itself uses), judged by `controller::drift`, printed as a per-node list and a verdict per
//! cluster, or as one JSON document; the exit bits say in sync (0), drift or pending (2), a
//! host not inspected (4), a critical runtime invariant broken (8).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::inventory::Inventory;
use crate::controller::apply::{self, ApplyOptions};
use crate::controller::drift::{self, DriftReport, Finding, Kind};
use crate::error::{Error, Status, describe};

#[derive(Debug, clap::Args)]
pub struct Args {
    pub inventory: PathBuf,
    /// Only these hosts: names, groups (clusters) or globs, comma-separated or repeated.
    #[arg(long, value_delimiter = ',')]
    pub limit: Vec<String>,
    /// Only this cluster (the inventory group that sets ha_vips).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Silence a known finding: RULE@HOST, RULE@CLUSTER for a cluster-wide one, or RULE.
    #[arg(long, value_name = "RULE@HOST")]
    pub ignore: Vec<String>,
    /// One machine-readable JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Hosts inspected at once (default: all, up to 50).
    #[arg(long)]
    pub forks: Option<usize>,
    /// Trust a host key seen for the first time (StrictHostKeyChecking=accept-new).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// An ssh_config file to use instead of ~/.ssh/config.
    #[arg(long)]
    pub ssh_config: Option<PathBuf>,
    /// Template directory overriding the built-in templates (as given to apply).
    #[arg(long)]
    pub templates: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<Status, Error> {
    let inv = load_selected(&args.inventory, args.cluster.as_deref())?;
    let mut options = survey_options(
        &args.inventory,
        &inv,
        args.ssh_config.clone(),
        args.accept_new_host_keys,
        args.json,
    )?;
    options.limit = args.limit.clone();
    options.forks = args.forks.unwrap_or(options.forks);
    options.templates = args.templates.clone();
    let runtime = super::runtime()?;
    let hosts = runtime
        .block_on(apply::survey(&inv, &options))
        .map_err(|e| Error::input(describe(&e)))?;
    let mut report = drift::judge(&inv, &hosts);
    let mut ignored = report.ignore(&args.ignore);
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 / 86_400);
    for cluster in &inv.clusters {
        for entry in cluster.drift_ignore.iter().filter(|e| e.until_days < today) {
            let (y, m, d) = entry.until;
            eprintln!(
                "{}: ha_drift_ignore {}{} expired on {y:04}-{m:02}-{d:02} ({}): reported again",
                entry.origin,
                entry.rule,
                entry
                    .host
                    .as_deref()
                    .map(|h| format!("@{h}"))
                    .unwrap_or_default(),
                entry.reason
            );
        }
        ignored += report.ignore_accepted(cluster, today);
    }
    let text = if args.json {
        json(&inv, &report, ignored) + "\n"
    } else {
        let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
        text(&inv, &report, ignored, colour)
    };
    super::print(text.as_bytes())?;
    Ok(report.status())
}

/// The inventory, narrowed to `--cluster` when given.
pub(super) fn load_selected(path: &Path, cluster: Option<&str>) -> Result<Inventory, Error> {
    let mut inv = super::load_inventory(path)?;
    if let Some(name) = cluster {
        inv.clusters.retain(|c| c.name == name);
        if inv.clusters.is_empty() {
            return Err(Error::input(format!(
                "{}: no cluster `{name}` (a cluster is a group that sets ha_vips)",
                path.display()
            )));
        }
    }
    Ok(inv)
}

/// The options of a read-only survey: apply's, every host.
pub(super) fn survey_options(
    inventory: &Path,
    inv: &Inventory,
    ssh_config: Option<PathBuf>,
    accept_new_host_keys: bool,
    json: bool,
) -> Result<ApplyOptions, Error> {
    let apply_args = super::apply::Args {
        inventory: inventory.to_path_buf(),
        check: true,
        diff: true,
        limit: Vec::new(),
        forks: None,
        accept_new_host_keys,
        ssh_config,
        any_errors_fatal: false,
        json,
        templates: None,
    };
    // apply's SSH masters, kept as apply keeps them: `diff` after `apply` (and every redraw
    // of `status --watch`) skips the handshake. What runs over them is still only the probe.
    super::apply::options(&apply_args, inv)
}

/// A cluster's one-line verdict.
fn verdict(report: &DriftReport, cluster: &str) -> (String, bool) {
    let findings: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.cluster == cluster)
        .collect();
    let unreachable = report
        .unreachable
        .iter()
        .filter(|u| u.cluster == cluster)
        .count();
    if findings.is_empty() && unreachable == 0 {
        return ("in sync".into(), true);
    }
    let count = |kind: Kind| findings.iter().filter(|f| f.kind == kind).count();
    let critical = findings.iter().filter(|f| f.critical).count();
    let mut parts = vec![format!(
        "{} finding{}",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" }
    )];
    for (kind, word) in [
        (Kind::Desired, "against the inventory"),
        (Kind::NodeVsNode, "between nodes"),
        (Kind::Runtime, "at run time"),
    ] {
        let n = count(kind);
        if n > 0 {
            parts.push(format!("{n} {word}"));
        }
    }
    if critical > 0 {
        parts.push(format!("{critical} CRITICAL"));
    }
    if unreachable > 0 {
        parts.push(format!("{unreachable} host(s) not inspected"));
    }
    (parts.join(", "), false)
}

/// Local time, as an operator on call reads a clock: `2026-12-02 14:02`.
pub(super) fn local_time(unix: i64) -> String {
    let t = unix as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which lives for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return format!("@{unix}");
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    )
}

/// The sentence that dates a finding, when the node's times tell it.
fn dated(f: &Finding) -> Option<String> {
    match (f.changed_at_unix, f.applied_at_unix) {
        (Some(changed), Some(applied)) if changed > applied => Some(format!(
            "changed on the node at {}, after apply at {}",
            local_time(changed),
            local_time(applied)
        )),
        (_, Some(applied)) => Some(format!("last apply at {}", local_time(applied))),
        _ => None,
    }
}

fn label(f: &Finding) -> String {
    let mut label = match f.kind {
        Kind::Desired => f.cause.map_or("drift", |c| c.word()).to_uppercase(),
        Kind::NodeVsNode => "NODES DISAGREE".into(),
        Kind::Runtime => "RUNTIME".into(),
    };
    if f.critical {
        label = format!("CRITICAL {label}");
    }
    label
}

fn text(inv: &Inventory, report: &DriftReport, ignored: usize, colour: bool) -> String {
    let paint = |code: &str, s: &str| {
        if colour {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    for cluster in &inv.clusters {
        let findings: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| f.cluster == cluster.name)
            .collect();
        let mut places: Vec<Option<&str>> = Vec::new();
        for f in &findings {
            if !places.contains(&f.node.as_deref()) {
                places.push(f.node.as_deref());
            }
        }
        for place in places {
            let _ = writeln!(
                out,
                "{} ({}):",
                place.unwrap_or("cluster-wide"),
                cluster.name
            );
            for f in findings.iter().filter(|f| f.node.as_deref() == place) {
                let tag = label(f);
                let tag = paint(if f.critical { "1;31" } else { "33" }, &tag);
                let _ = writeln!(out, "  {tag} [{}] {}: {}", f.rule, f.subject, f.actual);
                let _ = writeln!(out, "      expected: {}", f.expected);
                if let Some(when) = dated(f) {
                    let _ = writeln!(out, "      when:     {when}");
                }
                let _ = writeln!(out, "      fix:      {}", f.fix);
                for line in f.detail.iter().flat_map(|d| d.lines()) {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
        for u in report
            .unreachable
            .iter()
            .filter(|u| u.cluster == cluster.name)
        {
            let _ = writeln!(out, "{} ({}):", u.host, cluster.name);
            let _ = writeln!(
                out,
                "  {} {}",
                paint("1;31", "NOT INSPECTED"),
                u.error.trim()
            );
        }
    }
    for cluster in &inv.clusters {
        let (words, ok) = verdict(report, &cluster.name);
        let words = paint(if ok { "32" } else { "1" }, &words);
        let _ = writeln!(out, "{}: {words}", cluster.name);
    }
    if ignored > 0 {
        let _ = writeln!(
            out,
            "({ignored} finding(s) ignored by --ignore or ha_drift_ignore)"
        );
    }
    out
}

#[derive(Serialize)]
struct JsonCluster<'a> {
    name: &'a str,
    in_sync: bool,
    verdict: String,
}

#[derive(Serialize)]
struct JsonReport<'a> {
    clusters: Vec<JsonCluster<'a>>,
    findings: &'a [Finding],
    unreachable: &'a [drift::HostError],
    ignored: usize,
    exit_code: u8,
}

fn json(inv: &Inventory, report: &DriftReport, ignored: usize) -> String {
    let clusters = inv
        .clusters
        .iter()
        .map(|c| {
            let (verdict, in_sync) = verdict(report, &c.name);
            JsonCluster {
                name: &c.name,
                in_sync,
                verdict,
            }
        })
        .collect();
    serde_json::to_string(&JsonReport {
        clusters,
        findings: &report.findings,
        unreachable: &report.unreachable,
        ignored,
        exit_code: report.status().code(),
    })
    .expect("the report serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_reads_like_a_clock() {
        let t = local_time(1_764_680_000);
        assert_eq!(t.len(), "2026-12-02 14:02".len(), "{t}");
        assert!(t.starts_with("2025-12-0"), "{t}");
    }
}
