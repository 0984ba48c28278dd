//! `hadeploy rotate-key`: a new authkeys secret for one cluster, with no moment in which its
//! nodes stop trusting each other (`controller::rotate`), then `apply` to write the final,
//! rendered authkeys and the manifest, so `diff` is clean after it. Exit bits as everywhere:
//! 1 nothing done (input), 2 not healthy or a step failed (the cluster still trusts itself:
//! every node holds both keys or the stage before), 4 a node unreachable.

use std::path::PathBuf;

use crate::controller::apply;
use crate::controller::report::ApplyReport;
use crate::controller::rotate::{self, RotateError, StepDone};
use crate::error::{Error, Status, describe};

#[derive(Debug, clap::Args)]
pub struct Args {
    pub inventory: PathBuf,
    /// The cluster to rotate (required when the inventory has several).
    #[arg(long)]
    pub cluster: Option<String>,
    /// Trust a host key seen for the first time (StrictHostKeyChecking=accept-new).
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// An ssh_config file to use instead of ~/.ssh/config.
    #[arg(long)]
    pub ssh_config: Option<PathBuf>,
    /// One JSON document on stdout: every step (stage, node, milliseconds until every agent
    /// confirmed) and apply's report of the last stage.
    #[arg(long)]
    pub json: bool,
}

#[derive(serde::Serialize)]
struct JsonStep<'a> {
    stage: usize,
    node: &'a str,
    took_ms: u128,
}

pub fn run(args: &Args) -> Result<Status, Error> {
    let inv = super::diff::load_selected(&args.inventory, args.cluster.as_deref())?;
    let [cluster] = inv.clusters.as_slice() else {
        let names: Vec<&str> = inv.clusters.iter().map(|c| c.name.as_str()).collect();
        return Err(Error::input(format!(
            "{}: {} clusters ({}); name one with --cluster",
            args.inventory.display(),
            names.len(),
            names.join(", ")
        )));
    };
    let mut options = super::diff::survey_options(
        &args.inventory,
        &inv,
        args.ssh_config.clone(),
        args.accept_new_host_keys,
        false,
    )?;
    let runtime = super::runtime()?;
    let json = args.json;
    let show = |step: &StepDone| {
        if json {
            return;
        }
        eprintln!(
            "{}: stage {} of {} in {} ms (every agent confirmed)",
            step.node,
            step.stage,
            rotate::LAST_STAGE,
            step.took.as_millis()
        )
    };
    let steps = runtime
        .block_on(rotate::rotate(cluster, &options.ssh, &show))
        .map_err(|e| match e {
            RotateError::Input(m) => Error::input(m),
            RotateError::Unreachable(m) => Error::unreachable(m),
            RotateError::NotHealthy(m) | RotateError::Failed(m) => Error::not_as_desired(m),
        })?;
    // Stage 5 is the rendered authkeys with the new secret: apply writes it like any change.
    options.check = false;
    options.diff = false;
    options.limit = vec![cluster.name.clone()];
    let hosts = runtime
        .block_on(apply::apply(&inv, &options, &|_| {}))
        .map_err(|e| Error::input(describe(&e)))?;
    let report = ApplyReport {
        check: false,
        hosts,
    };
    let total: u128 = steps.iter().map(|s| s.took.as_millis()).sum();
    if args.json {
        let steps: Vec<JsonStep> = steps
            .iter()
            .map(|s| JsonStep {
                stage: s.stage,
                node: &s.node,
                took_ms: s.took.as_millis(),
            })
            .collect();
        let apply: serde_json::Value =
            serde_json::from_str(&report.json()).map_err(|e| Error::input(e.to_string()))?;
        let doc = serde_json::json!({
            "cluster": cluster.name,
            "steps": steps,
            "total_ms": total,
            "apply": apply,
        });
        super::print(format!("{doc}\n").as_bytes())?;
        return Ok(report.status());
    }
    super::print(report.text().as_bytes())?;
    eprintln!(
        "cluster {}: key rotated in {} steps ({total} ms); the old secret is gone from the nodes and the secrets file",
        cluster.name,
        steps.len()
    );
    Ok(report.status())
}
