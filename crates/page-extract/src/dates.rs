//! Normalizing the dates pages state about themselves.
//!
//! Pages write dates in many shapes. We rewrite the ones that name an instant
//! (date, time and offset) as RFC 3339 so downstream comparisons are
//! textual; a bare calendar date is already RFC 3339's `full-date` and is
//! kept; anything else is passed on exactly as stated rather than guessed at,
//! because inventing a time zone would be worse than an odd format.

use time::format_description::well_known::{Iso8601, Rfc2822, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// Returns `raw` as RFC 3339 when it can be read as an instant, the bare
/// date when it is one, and the trimmed original otherwise. `None` when the
/// input is blank.
pub(crate) fn normalize(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }

    if let Some(text) = parse_instant(raw).and_then(|instant| instant.format(&Rfc3339).ok()) {
        return Some(text);
    }

    if let Some(date) = parse_date(raw) {
        return Some(date);
    }

    Some(raw.to_owned())
}

fn parse_instant(raw: &str) -> Option<OffsetDateTime> {
    // Some sites separate date and time with a space, which RFC 3339 allows
    // but the `time` parser does not accept.
    let spaced = replace_date_time_space(raw);
    let candidate = spaced.as_deref().unwrap_or(raw);

    OffsetDateTime::parse(candidate, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(candidate, &Iso8601::DEFAULT))
        .or_else(|_| OffsetDateTime::parse(raw, &Rfc2822))
        .or_else(|_| parse_gmt_http_date(raw))
        .ok()
}

fn replace_date_time_space(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let is_spaced = bytes.len() > 11
        && bytes[10] == b' '
        && bytes[..10].iter().all(|b| b.is_ascii_digit() || *b == b'-')
        && bytes[11].is_ascii_digit();
    is_spaced.then(|| format!("{}T{}", &raw[..10], &raw[11..]))
}

/// HTTP dates and many CMS templates end with "GMT", which RFC 2822 parsing
/// in `time` accepts only in some shapes.
fn parse_gmt_http_date(raw: &str) -> Result<OffsetDateTime, time::error::Parse> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(raw, format).map(PrimitiveDateTime::assume_utc)
}

fn parse_date(raw: &str) -> Option<String> {
    let format = format_description!("[year]-[month]-[day]");
    Date::parse(raw, format).ok().map(|_| raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn keeps_rfc3339_and_normalizes_offsets() {
        assert_eq!(normalize("2024-03-05T10:20:30Z").as_deref(), Some("2024-03-05T10:20:30Z"));
        assert_eq!(
            normalize("2024-03-05T10:20:30+0100").as_deref(),
            Some("2024-03-05T10:20:30+01:00")
        );
        assert_eq!(
            normalize("2024-03-05 10:20:30+02:00").as_deref(),
            Some("2024-03-05T10:20:30+02:00")
        );
    }

    #[test]
    fn reads_rfc2822_and_http_dates() {
        assert_eq!(
            normalize("Tue, 05 Mar 2024 10:20:30 +0000").as_deref(),
            Some("2024-03-05T10:20:30Z")
        );
        assert_eq!(
            normalize("Tue, 05 Mar 2024 10:20:30 GMT").as_deref(),
            Some("2024-03-05T10:20:30Z")
        );
    }

    #[test]
    fn keeps_dates_and_unparseable_text_as_stated() {
        assert_eq!(normalize(" 2024-03-05 ").as_deref(), Some("2024-03-05"));
        assert_eq!(normalize("March 5th, 2024").as_deref(), Some("March 5th, 2024"));
        assert_eq!(normalize("   "), None);
    }

    #[test]
    fn local_times_without_offset_are_kept_as_stated() {
        assert_eq!(normalize("2024-03-05T10:20:30").as_deref(), Some("2024-03-05T10:20:30"));
    }
}
