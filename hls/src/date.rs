//! Wall-clock times as HLS writes them (EXT-X-PROGRAM-DATE-TIME), also how the site shows them.

use time::macros::format_description;
use time::OffsetDateTime;

/// ISO 8601 UTC with milliseconds, as EXT-X-PROGRAM-DATE-TIME wants.
pub fn format_date_time(unix_ms: i64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_and_out_of_range() {
        assert_eq!(
            format_date_time(1_764_140_000_123),
            "2025-11-26T06:53:20.123Z"
        );
        assert_eq!(format_date_time(i64::MAX), "1970-01-01T00:00:00.000Z");
    }
}
