//! Finds the Debian mirror this machine's own apt configuration uses (one-line `.list` files and
//! deb822 `.sources` files), so the lab image is built from the same mirror the operator already
//! trusts — no mirror host is ever written into hadeploy.

use std::path::Path;

/// The first `deb` source serving `suite` from a Debian archive (not security, not a third
/// party), e.g. `http://deb.debian.org/debian`.
pub fn debian_mirror(files: &[(String, String)], suite: &str) -> Option<String> {
    for (name, text) in files {
        let found = if name.ends_with(".sources") {
            from_deb822(text, suite)
        } else {
            from_one_line(text, suite)
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Reads /etc/apt/sources.list and /etc/apt/sources.list.d/* in apt's order.
pub fn system_sources(root: &Path) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let main = root.join("etc/apt/sources.list");
    if let Ok(text) = std::fs::read_to_string(&main) {
        files.push((main.display().to_string(), text));
    }
    if let Ok(entries) = std::fs::read_dir(root.join("etc/apt/sources.list.d")) {
        let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            let is_source = path
                .extension()
                .is_some_and(|e| e == "list" || e == "sources");
            if let (true, Ok(text)) = (is_source, std::fs::read_to_string(&path)) {
                files.push((path.display().to_string(), text));
            }
        }
    }
    files
}

fn is_debian_archive(uri: &str) -> bool {
    let trimmed = uri.trim_end_matches('/');
    (uri.starts_with("http://") || uri.starts_with("https://")) && trimmed.ends_with("/debian")
}

fn from_one_line(text: &str, suite: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next()?.trim();
        let mut words = line.split_whitespace().peekable();
        if words.next()? != "deb" {
            return None;
        }
        // Skip `[arch=amd64 signed-by=...]` options.
        if words.peek()?.starts_with('[') {
            while !words.next()?.ends_with(']') {}
        }
        let uri = words.next()?;
        let line_suite = words.next()?;
        (line_suite == suite && is_debian_archive(uri))
            .then(|| uri.trim_end_matches('/').to_string())
    })
}

fn from_deb822(text: &str, suite: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let mut types = "";
        let mut uris: Vec<&str> = Vec::new();
        let mut suites: Vec<&str> = Vec::new();
        let mut enabled = true;
        for line in stanza.lines() {
            if line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            match key.trim() {
                "Types" => types = value.trim(),
                "URIs" => uris = value.split_whitespace().collect(),
                "Suites" => suites = value.split_whitespace().collect(),
                "Enabled" => enabled = value.trim() != "no",
                _ => {}
            }
        }
        if enabled
            && types.split_whitespace().any(|t| t == "deb")
            && suites.contains(&suite)
            && let Some(uri) = uris.iter().find(|u| is_debian_archive(u))
        {
            return Some(uri.trim_end_matches('/').to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_with_security_and_third_party() {
        let files = vec![
            ("x.sources".to_string(), "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n\nTypes: deb\n# a comment\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\nTypes: deb deb-src\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n".to_string()),
        ];
        assert_eq!(
            debian_mirror(&files, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
    }

    #[test]
    fn one_line_format_with_options() {
        let files = vec![
            ("a.list".to_string(), "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n".to_string()),
            ("b.list".to_string(), "# deb http://old/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n".to_string()),
        ];
        assert_eq!(
            debian_mirror(&files, "bookworm").as_deref(),
            Some("http://m.example/debian")
        );
    }

    #[test]
    fn disabled_or_missing_gives_none() {
        let files = vec![(
            "x.sources".to_string(),
            "Types: deb\nURIs: http://m/debian\nSuites: bookworm\nEnabled: no\n".to_string(),
        )];
        assert_eq!(debian_mirror(&files, "bookworm"), None);
        assert_eq!(debian_mirror(&[], "bookworm"), None);
    }

    #[test]
    fn this_machine_has_one() {
        assert!(debian_mirror(&system_sources(Path::new("/")), "bookworm").is_some());
    }
}
