//! Diagnostics: what is wrong with an inventory, where (file, line, column, key) and how to fix
//! it. Validation collects all of them instead of stopping at the first, so one `check` run
//! shows the operator everything to fix.

use std::fmt;
use std::path::{Path, PathBuf};

use super::yaml::Pos;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// Where a value came from: a file and, when known, a position in it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub file: PathBuf,
    pub pos: Option<Pos>,
}

impl Origin {
    pub fn new(file: &Path, pos: Pos) -> Self {
        Self {
            file: file.to_path_buf(),
            pos: Some(pos),
        }
    }

    pub fn file(file: &Path) -> Self {
        Self {
            file: file.to_path_buf(),
            pos: None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(pos) => write!(f, "{}:{}", self.file.display(), pos),
            None => write!(f, "{}", self.file.display()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub origin: Origin,
    /// The key the problem is about (`ha_vips`, `hosts`, …), when there is one.
    pub key: Option<String>,
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn error(origin: Origin, key: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            origin,
            key: key.map(str::to_string),
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(origin: Origin, key: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(origin, key, message)
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {level}: ", self.origin)?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// All diagnostics of one run, in the order found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Warning)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest candidate to a misspelt word, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let threshold = (word.chars().count() / 3).clamp(1, 4);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= threshold)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters; inputs are short keys, so O(n·m) is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let keys = [
            "ha_keepalive",
            "ha_deadtime",
            "ha_vips",
            "hosts",
            "children",
        ];
        assert_eq!(did_you_mean("ha_keepalvie", keys), Some("ha_keepalive"));
        assert_eq!(did_you_mean("host", keys), Some("hosts"));
        assert_eq!(did_you_mean("ha_vip", keys), Some("ha_vips"));
        assert_eq!(did_you_mean("completely_else", keys), None);
    }

    #[test]
    fn display_names_file_line_key_and_hint() {
        let d = Diagnostic::error(
            Origin::new(Path::new("inv.yml"), Pos { line: 3, column: 5 }),
            Some("ha_udpport"),
            "70000 is not a UDP port",
        )
        .hint("use 1-65535; Heartbeat's default is 694");
        assert_eq!(
            d.to_string(),
            "inv.yml:3:5: error: ha_udpport: 70000 is not a UDP port\n  hint: use 1-65535; Heartbeat's default is 694"
        );
    }
}
