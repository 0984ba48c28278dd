//! Manual pages from clap definitions: clap_mangen renders one command's title, synopsis and
//! options; this adds a section per subcommand (depth first) and the EXIT STATUS from the
//! command's after-help, so `hadeploy(1)` documents `hadeploy lab fault` too. Used for both
//! binaries' pages; knows nothing of either.

/// The whole page for `command` in manual `section`.
pub fn render(command: clap::Command, section: &str) -> Vec<u8> {
    let command = command.version(env!("CARGO_PKG_VERSION"));
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(command.clone()).section(section);
    // Writing into a Vec cannot fail.
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    render_subcommands(&command, &mut out);
    let _ = man.render_version_section(&mut out);
    if let Some(after) = command.get_after_help() {
        out.extend_from_slice(format!(".SH \"EXIT STATUS\"\n{after}\n").as_bytes());
    }
    out
}

/// Each subcommand's synopsis and options under its own heading, depth first.
fn render_subcommands(command: &clap::Command, out: &mut Vec<u8>) {
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        let parent = command.get_bin_name().unwrap_or(command.get_name());
        let name = format!("{parent} {}", sub.get_name());
        let sub = sub.clone().bin_name(name.clone());
        let man = clap_mangen::Man::new(sub.clone());
        out.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        if let Some(about) = sub.get_about() {
            out.extend_from_slice(format!("{about}\n").as_bytes());
        }
        let _ = man.render_synopsis_section(out);
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            let _ = man.render_options_section(out);
        }
        render_subcommands(&sub, out);
    }
}
