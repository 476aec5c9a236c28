//! Human durations on the command line: `0`, `250ms`, `5s`, `2m`, `1h`; a
//! bare number is seconds.

use std::time::Duration;

/// Parses a duration for clap.
///
/// # Errors
///
/// A message naming the accepted forms.
pub fn parse(s: &str) -> Result<Duration, String> {
    fencelock::parse::duration(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert!(parse("5 parsecs").is_err());
        assert!(parse("-1").is_err());
        assert!(parse("").is_err());
    }
}
