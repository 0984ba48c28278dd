//! Heartbeat's time syntax (`cl_get_msec` in cluster-glue): a number with an optional fraction
//! is seconds, an `ms` suffix is milliseconds, `us`/`usec` microseconds. An `s` suffix is *not*
//! accepted by the real daemon (`deadtime 5s` is a config error), so we reject it too rather
//! than render a file the real Heartbeat would refuse.

use std::fmt;

/// A Heartbeat timer, kept in whole milliseconds (the daemon's own resolution).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HbDuration {
    millis: u64,
}

/// Why a time value was refused; the message is meant to be shown to the operator as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(String);

/// Upper bound for any timer: a day. Larger values are typos, and bounding them keeps the
/// arithmetic in validation (2 × deadtime, …) free of overflow.
const MAX_MILLIS: u64 = 86_400_000;

impl HbDuration {
    pub const fn from_millis(millis: u64) -> Self {
        Self { millis }
    }

    pub const fn from_secs(secs: u64) -> Self {
        Self {
            millis: secs * 1000,
        }
    }

    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis)
    }

    /// Parses a value the way the real daemon does.
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let text = text.trim();
        let (number, scale_micros) = if let Some(n) = text.strip_suffix("ms") {
            (n, 1_000u64)
        } else if let Some(n) = text.strip_suffix("usec") {
            (n, 1)
        } else if let Some(n) = text.strip_suffix("us") {
            (n, 1)
        } else if text.ends_with('s') {
            return Err(DurationError(format!(
                "`{text}`: Heartbeat does not accept an `s` suffix; write plain seconds (`{}`) or milliseconds with `ms`",
                text.trim_end_matches('s')
            )));
        } else {
            (text, 1_000_000)
        };
        let invalid = || {
            DurationError(format!(
                "`{text}` is not a time: use seconds (`2`, `0.5`) or milliseconds (`500ms`)"
            ))
        };
        let (whole, fraction) = match number.split_once('.') {
            Some((w, f)) => (w, f),
            None => (number, ""),
        };
        if whole.is_empty() && fraction.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || whole.len() > 12
        {
            return Err(invalid());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        // Only the first six fractional digits can matter at microsecond resolution.
        let mut fraction_micros = 0u64;
        let mut place = scale_micros;
        for digit in fraction.bytes().take(7) {
            place /= 10;
            fraction_micros += u64::from(digit - b'0') * place;
        }
        let micros = whole
            .checked_mul(scale_micros)
            .and_then(|w| w.checked_add(fraction_micros))
            .ok_or_else(invalid)?;
        let millis = micros / 1000;
        if millis > MAX_MILLIS {
            return Err(DurationError(format!(
                "`{text}` is longer than a day; Heartbeat timers are seconds to minutes"
            )));
        }
        Ok(Self { millis })
    }
}

/// Renders in the form an operator would write: whole seconds as a bare number, anything
/// else in `ms`, so that rendering then parsing gives the same value back.
impl fmt::Display for HbDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.millis.is_multiple_of(1000) {
            write!(f, "{}", self.millis / 1000)
        } else {
            write!(f, "{}ms", self.millis)
        }
    }
}

impl std::str::FromStr for HbDuration {
    type Err = DurationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_fractions_and_milliseconds() {
        assert_eq!(HbDuration::parse("2").unwrap().as_millis(), 2000);
        assert_eq!(HbDuration::parse("0.5").unwrap().as_millis(), 500);
        assert_eq!(HbDuration::parse(".25").unwrap().as_millis(), 250);
        assert_eq!(HbDuration::parse("500ms").unwrap().as_millis(), 500);
        assert_eq!(HbDuration::parse("1500us").unwrap().as_millis(), 1);
        assert_eq!(HbDuration::parse("2000usec").unwrap().as_millis(), 2);
    }

    #[test]
    fn rejects_what_the_daemon_rejects() {
        for bad in [
            "5s",
            "",
            "ms",
            "-1",
            "1e3",
            "500 ms",
            "abc",
            "1.2.3",
            "99999999999999",
        ] {
            assert!(
                HbDuration::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for text in ["2", "500ms", "1500ms", "30", "120"] {
            let d = HbDuration::parse(text).unwrap();
            assert_eq!(d.to_string(), text);
            assert_eq!(HbDuration::parse(&d.to_string()).unwrap(), d);
        }
    }
}
