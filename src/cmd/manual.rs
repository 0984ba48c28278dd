//! `hadeploy man`: the manual pages, generated from the same clap definitions the parsers use,
//! so they cannot drift from what the commands accept — `hadeploy(1)` with a section per
//! subcommand, and `hadeploy-agent(8)`, which the agent's unit names as its documentation and
//! `apply` installs on every node.

use std::path::PathBuf;

use clap::CommandFactory;

use crate::error::{Error, Status};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write hadeploy.1 and hadeploy-agent.8 into DIR/man1 and DIR/man8 (e.g.
    /// /usr/local/share/man) instead of printing hadeploy(1).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print hadeploy-agent(8) instead of hadeploy(1).
    #[arg(long, conflicts_with = "out")]
    pub agent: bool,
}

/// hadeploy(1): the top command, then every subcommand (and the lab's) as its own section.
pub fn controller_page() -> Vec<u8> {
    crate::manpage::render(super::Cli::command(), "1")
}

/// hadeploy-agent(8), section 8 as system daemons are.
pub fn agent_page() -> Vec<u8> {
    crate::agent::cli::manual()
}

pub fn run(args: &Args) -> Result<Status, Error> {
    let Some(dir) = &args.out else {
        let text = if args.agent {
            agent_page()
        } else {
            controller_page()
        };
        return super::print(&text);
    };
    for (sub, file, text) in [
        ("man1", "hadeploy.1", controller_page()),
        ("man8", "hadeploy-agent.8", agent_page()),
    ] {
        let path = dir.join(sub).join(file);
        crate::files::write_atomic(&path, &text, 0o644)
            .map_err(|e| Error::input(format!("{}: {e}", path.display())))?;
        println!("{}", path.display());
    }
    Ok(Status::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_command() {
        let page = String::from_utf8(controller_page()).unwrap();
        assert!(page.starts_with(".ie"), "{}", &page[..80]);
        assert!(page.contains(".TH hadeploy 1"));
        for sub in [
            "HADEPLOY APPLY",
            "HADEPLOY DRILL",
            "HADEPLOY LAB FAULT",
            "HADEPLOY MAN",
        ] {
            assert!(page.contains(sub), "{sub} missing");
        }
        assert!(page.contains("\\-\\-accept\\-new\\-host\\-keys"));
        let agent = String::from_utf8(agent_page()).unwrap();
        let title = agent.lines().find(|l| l.starts_with(".TH")).unwrap();
        assert!(
            title.starts_with(".TH hadeploy\\-agent 8 ")
                || title.starts_with(".TH hadeploy-agent 8 "),
            "{title}"
        );
        assert!(agent.contains("HADEPLOY-AGENT CHECK-CONFIG"));
    }
}
