//! Python's `shlex.split(line, comments=True)` in POSIX mode, which Ansible's INI plugin runs on
//! every host line: words split at whitespace, `'…'` taken literally, `"…"` with `\"` and `\\`
//! escapes, a backslash escaping any character outside quotes, and `#` starting a comment
//! wherever a word could start or continue. Each character of a word remembers the column it
//! came from, so a value's position survives the unquoting.

/// One word of a host line.
#[derive(Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    /// The column of each character of `text`.
    pub columns: Vec<u32>,
    /// Where the word starts in the line (its first quote or character).
    pub column: u32,
}

/// A line shlex refuses, with the column it gave up at.
#[derive(Debug, PartialEq, Eq)]
pub struct SplitError {
    pub column: u32,
    pub message: &'static str,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Between,
    Word,
    Quoted(char),
    /// After a backslash; the state to return to.
    Escaped(Inner),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Inner {
    Word,
    DoubleQuoted,
}

/// Splits `line`, whose first character is at column `first_column`.
pub fn split(line: &str, first_column: u32) -> Result<Vec<Word>, SplitError> {
    let mut words = Vec::new();
    let mut state = State::Between;
    let mut current: Option<Word> = None;
    let mut last_column = first_column;
    for (i, c) in line.chars().enumerate() {
        let column = first_column.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
        last_column = column;
        let word = current.get_or_insert_with(|| Word {
            text: String::new(),
            columns: Vec::new(),
            column,
        });
        let push = |w: &mut Word, ch: char| {
            w.text.push(ch);
            w.columns.push(column);
        };
        match state {
            State::Between | State::Word => match c {
                ' ' | '\t' | '\r' | '\n' => {
                    if state == State::Word {
                        words.extend(current.take());
                    } else {
                        current = None;
                    }
                    state = State::Between;
                }
                '#' => {
                    if state == State::Word {
                        words.extend(current.take());
                    }
                    return Ok(words);
                }
                '\\' => state = State::Escaped(Inner::Word),
                '\'' | '"' => state = State::Quoted(c),
                _ => {
                    push(word, c);
                    state = State::Word;
                }
            },
            State::Quoted(quote) => {
                if c == quote {
                    // The word goes on after the closing quote (`a'b'c` is one word).
                    state = State::Word;
                } else if c == '\\' && quote == '"' {
                    state = State::Escaped(Inner::DoubleQuoted);
                } else {
                    push(word, c);
                }
            }
            State::Escaped(inner) => {
                // Inside double quotes only `"` and `\` are escaped; the backslash stays otherwise.
                if inner == Inner::DoubleQuoted && c != '"' && c != '\\' {
                    push(word, '\\');
                }
                push(word, c);
                state = match inner {
                    Inner::Word => State::Word,
                    Inner::DoubleQuoted => State::Quoted('"'),
                };
            }
        }
    }
    match state {
        State::Quoted(_) => Err(SplitError {
            column: last_column,
            message: "no closing quotation",
        }),
        State::Escaped(_) => Err(SplitError {
            column: last_column,
            message: "no character after the escaping backslash",
        }),
        State::Word => {
            words.extend(current);
            Ok(words)
        }
        State::Between => Ok(words),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &str) -> Vec<String> {
        split(line, 1)
            .unwrap()
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    /// Each case was checked against CPython's `shlex.split(line, comments=True)`.
    #[test]
    fn splits_as_python_does() {
        let cases: [(&str, &[&str]); 12] = [
            ("h1 a=1  b=2", &["h1", "a=1", "b=2"]),
            ("h1 j=\"a b\" k='c d'", &["h1", "j=a b", "k=c d"]),
            ("h1 s=\"'03#pa'\"", &["h1", "s='03#pa'"]),
            ("h1 i=x#y j=2", &["h1", "i=x"]),
            ("h1 # comment", &["h1"]),
            ("h1 t=\\#x", &["h1", "t=#x"]),
            ("h1 u='it''s'", &["h1", "u=its"]),
            ("h1 v=\"a\\\"b\\\\c\\d\"", &["h1", "v=a\"b\\c\\d"]),
            ("h1 w='a\\b'", &["h1", "w=a\\b"]),
            ("h1 e=['x']", &["h1", "e=[x]"]),
            ("h1 empty='' x=", &["h1", "empty=", "x="]),
            ("h1 d=\"['x', 'y']\"", &["h1", "d=['x', 'y']"]),
        ];
        for (line, expected) in cases {
            assert_eq!(texts(line), expected, "{line:?}");
        }
        assert_eq!(texts("''"), [""]);
    }

    #[test]
    fn columns_follow_the_unquoting() {
        let words = split("h1 k=\"['a']\"", 5).unwrap();
        assert_eq!(words[1].column, 8);
        assert_eq!(words[1].text, "k=['a']");
        // `[` is the 4th character of the line's second word, after k, = and the quote.
        assert_eq!(words[1].columns[2], 11);
    }

    #[test]
    fn unterminated_quotes_and_escapes_are_errors() {
        assert_eq!(
            split("h1 a='x", 1).unwrap_err().message,
            "no closing quotation"
        );
        assert_eq!(
            split("h1 a=x\\", 1).unwrap_err().message,
            "no character after the escaping backslash"
        );
    }
}
