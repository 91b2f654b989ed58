//! Turning a page's bytes into UTF-8 text, or refusing to.
//!
//! The encoding is chosen the way browsers do, in this order: a byte order
//! mark, the `charset` of the `Content-Type` header, the `encoding` of an
//! XML declaration (`<?xml version="1.0" encoding="..."?>`, which XHTML
//! pages use instead of `<meta>`), a `<meta charset>` or `http-equiv`
//! declaration in the first 1024 bytes, and finally a guess by
//! `chardetng`. A page labelled UTF-8 that is not valid UTF-8 is guessed
//! again, since mislabelled legacy pages are common and a guess that decodes
//! cleanly beats a page full of U+FFFD. Before any of that, the bytes are
//! sniffed for binary content (WHATWG "binary data bytes", e.g. NUL), which
//! servers often label `text/html` by mistake.

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE, WINDOWS_1252};

/// Bytes inspected by the `<meta>` prescan and the binary sniff.
const PRESCAN_BYTES: usize = 1024;
/// Bytes fed to `chardetng`; more adds time but rarely changes the guess.
const DETECT_BYTES: usize = 64 * 1024;
/// Share of U+FFFD in the decoded text above which the page is rejected.
const MAX_REPLACEMENT_RATIO: f64 = 0.05;

/// Why a body could not be turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CharsetError {
    /// The bytes look like binary data, not text.
    #[error("binary content")]
    Binary,
    /// Too many bytes are invalid in every candidate encoding.
    #[error("undecodable text: over 5% of characters invalid in {encoding}")]
    Undecodable {
        /// The encoding that was tried last.
        encoding: &'static str,
    },
}

/// Decodes a page body to UTF-8, returning the text and the encoding used.
///
/// # Errors
///
/// [`CharsetError::Binary`] for binary data and
/// [`CharsetError::Undecodable`] when the text is mostly invalid.
pub fn decode(
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<(String, &'static Encoding), CharsetError> {
    if let Some((encoding, bom_len)) = Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_len..]);
        return check_replacements(text.into_owned(), encoding);
    }
    if looks_binary(bytes) {
        return Err(CharsetError::Binary);
    }

    let declared = content_type
        .and_then(header_charset)
        .or_else(|| xml_declaration(bytes))
        .or_else(|| prescan(bytes));
    let encoding = declared.unwrap_or_else(|| guess(bytes));
    let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
    if had_errors && encoding == UTF_8 && mostly_invalid(&text) {
        let second = guess(bytes);
        if second != UTF_8 {
            let (retry, retry_errors) = second.decode_without_bom_handling(bytes);
            if !retry_errors {
                return Ok((retry.into_owned(), second));
            }
        }
    }

    check_replacements(text.into_owned(), encoding)
}

/// Whether a UTF-8 decoding has more replaced sequences than valid
/// non-ASCII characters: the sign of a legacy page labelled UTF-8, as
/// opposed to a UTF-8 page with a few stray bytes, which must stay UTF-8
/// so its real non-ASCII text survives.
fn mostly_invalid(text: &str) -> bool {
    let (valid, replaced) =
        text.chars().filter(|c| !c.is_ascii()).fold((0usize, 0usize), |(valid, replaced), c| {
            if c == char::REPLACEMENT_CHARACTER {
                (valid, replaced + 1)
            } else {
                (valid + 1, replaced)
            }
        });
    replaced > valid
}

/// Whether the first bytes contain a byte that never occurs in text
/// (WHATWG MIME sniffing, "binary data byte").
#[must_use]
pub fn looks_binary(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .take(PRESCAN_BYTES)
        .any(|byte| matches!(byte, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F))
}

/// The encoding named by the `charset` parameter of a `Content-Type`.
#[must_use]
pub fn header_charset(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| label_to_encoding(value.trim().trim_matches(['"', '\''])))
            .flatten()
    })
}

/// The encoding named by an XML declaration at the very start of the body
/// (`<?xml version="1.0" encoding="ISO-8859-1"?>`).
#[must_use]
pub fn xml_declaration(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(PRESCAN_BYTES)];
    let declaration = head.strip_prefix(b"<?xml")?;
    if !declaration.first().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    let end = find(declaration, b"?>")?;
    let declaration = &declaration[..end];
    let at = find(declaration, b"encoding")?;
    let value = trim_start(&declaration[at + 8..]);
    let value = trim_start(value.strip_prefix(b"=")?);
    let quote = *value.first().filter(|quote| matches!(quote, b'"' | b'\''))?;
    let value = &value[1..];
    let close = value.iter().position(|&b| b == quote)?;
    label_to_encoding(std::str::from_utf8(&value[..close]).ok()?)
}

/// The encoding declared by a `<meta charset>` or
/// `<meta http-equiv=content-type content="...; charset=...">` in the first
/// 1024 bytes. A simplification of the WHATWG prescan: it looks for the
/// word `charset` inside each `<meta` tag, which covers both forms.
#[must_use]
pub fn prescan(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = bytes[..bytes.len().min(PRESCAN_BYTES)].to_ascii_lowercase();
    let mut rest = head.as_slice();
    while let Some(start) = find(rest, b"<meta") {
        let tag = &rest[start + 5..];
        let end = tag.iter().position(|&b| b == b'>').unwrap_or(tag.len());
        if let Some(encoding) = charset_in_tag(&tag[..end]) {
            return Some(encoding);
        }
        rest = &tag[end..];
    }
    None
}

fn charset_in_tag(tag: &[u8]) -> Option<&'static Encoding> {
    let at = find(tag, b"charset")?;
    let after = trim_start(&tag[at + 7..]);
    let value = trim_start(after.strip_prefix(b"=")?);
    let value = value.strip_prefix(b"\"").or_else(|| value.strip_prefix(b"'")).unwrap_or(value);
    let end = value
        .iter()
        .position(|&b| matches!(b, b'"' | b'\'' | b';' | b'/' | b'>') || b.is_ascii_whitespace())
        .unwrap_or(value.len());
    label_to_encoding(std::str::from_utf8(&value[..end]).ok()?)
}

/// Maps a label to an encoding, with the HTML rule that a page cannot
/// declare itself UTF-16 in ASCII, so such a label means UTF-8.
fn label_to_encoding(label: &str) -> Option<&'static Encoding> {
    let encoding = Encoding::for_label(label.as_bytes())?;
    Some(if encoding == UTF_16BE || encoding == UTF_16LE {
        UTF_8
    } else if encoding.name() == "x-user-defined" {
        WINDOWS_1252
    } else {
        encoding
    })
}

fn guess(bytes: &[u8]) -> &'static Encoding {
    let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    detector.feed(&bytes[..bytes.len().min(DETECT_BYTES)], true);
    detector.guess(None, chardetng::Utf8Detection::Allow)
}

fn check_replacements(
    text: String,
    encoding: &'static Encoding,
) -> Result<(String, &'static Encoding), CharsetError> {
    let total = text.chars().count();
    let bad = text.chars().filter(|&c| c == char::REPLACEMENT_CHARACTER).count();
    // Precision loss in the casts is irrelevant for a ratio threshold.
    #[allow(clippy::cast_precision_loss)]
    let ratio = if total == 0 { 0.0 } else { bad as f64 / total as f64 };
    if ratio > MAX_REPLACEMENT_RATIO {
        return Err(CharsetError::Undecodable { encoding: encoding.name() });
    }
    Ok((text, encoding))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use encoding_rs::{SHIFT_JIS, WINDOWS_1252};

    use super::*;

    #[test]
    fn header_charset_wins_over_meta() {
        let body = "<meta charset=utf-8><p>caf\u{e9}</p>";
        let (bytes, _, _) = WINDOWS_1252.encode(body);
        let (text, encoding) = decode(&bytes, Some("text/html; charset=\"ISO-8859-1\"")).unwrap();
        assert_eq!(encoding, WINDOWS_1252);
        assert!(text.contains("café"));
    }

    #[test]
    fn meta_charset_and_http_equiv_are_found() {
        assert_eq!(prescan(b"<html><head><META CHARSET='Shift_JIS'>"), Some(SHIFT_JIS));
        assert_eq!(
            prescan(
                br#"<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">"#
            ),
            Some(WINDOWS_1252)
        );
        assert_eq!(prescan(b"<meta charset=utf-16>"), Some(UTF_8));
        assert_eq!(prescan(b"<meta name=x content=y><p>charset=latin1"), None);
    }

    #[test]
    fn xml_declaration_names_the_encoding_of_xhtml() {
        let body = "<?xml version=\"1.0\" encoding='ISO-8859-1'?>\n<html xmlns=\"http://www.w3.org/1999/xhtml\"><p>caf\u{e9} cr\u{e8}me</p></html>";
        let (bytes, _, _) = WINDOWS_1252.encode(body);
        let (text, encoding) = decode(&bytes, Some("application/xhtml+xml")).unwrap();
        assert_eq!(encoding, WINDOWS_1252);
        assert!(text.contains("café crème"));
        let ascii = b"<?xml version='1.0' encoding='ISO-8859-1'?><p>plain</p>";
        let (_, encoding) = decode(ascii, Some("application/xhtml+xml; charset=utf-8")).unwrap();
        assert_eq!(encoding, UTF_8, "the header still wins");
        assert_eq!(xml_declaration(b"<?xml version=\"1.0\"?><html>"), None);
        assert_eq!(xml_declaration(b"<?xmlfoo encoding=\"latin1\"?>"), None);
        assert_eq!(xml_declaration(b"<?xml encoding=\"unterminated"), None);
        assert_eq!(
            xml_declaration(b"<?xml version='1.0' encoding=\"Shift_JIS\" ?>"),
            Some(SHIFT_JIS)
        );
    }

    #[test]
    fn bom_decides_first() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "<p>hi</p>".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        let (text, encoding) = decode(&bytes, Some("text/html; charset=utf-8")).unwrap();
        assert_eq!((text.as_str(), encoding), ("<p>hi</p>", UTF_16LE));
    }

    #[test]
    fn unlabelled_legacy_text_is_guessed() {
        let body = "<p>Grüße aus Köln, schöne Straße, süße Äpfel und Übermut.</p>".repeat(5);
        let (bytes, _, _) = WINDOWS_1252.encode(&body);
        let (text, encoding) = decode(&bytes, Some("text/html")).unwrap();
        assert_eq!(encoding, WINDOWS_1252);
        assert_eq!(text, body);
    }

    #[test]
    fn mislabelled_utf8_falls_back_to_a_guess() {
        let body = "<p>日本語のページです。文字コードはシフトJISです。</p>".repeat(5);
        let (bytes, _, _) = SHIFT_JIS.encode(&body);
        let (text, encoding) = decode(&bytes, Some("text/html; charset=utf-8")).unwrap();
        assert_eq!(encoding, SHIFT_JIS);
        assert_eq!(text, body);
    }

    #[test]
    fn binary_is_rejected() {
        assert_eq!(
            decode(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some("text/html")),
            Err(CharsetError::Binary)
        );
    }

    #[test]
    fn a_few_invalid_bytes_are_replaced() {
        let mut bytes = b"<p>".to_vec();
        bytes.extend_from_slice(&b"valid text ".repeat(20));
        bytes.extend_from_slice("Grüße, naïve café ".as_bytes());
        bytes.extend_from_slice(b"\xC3\x28 end</p>");
        let (text, encoding) = decode(&bytes, Some("text/html; charset=utf-8")).unwrap();
        assert_eq!(encoding, UTF_8);
        assert!(text.contains("Grüße, naïve café \u{FFFD}("));
        assert!(text.starts_with("<p>valid text"));
        assert!(text.ends_with(" end</p>"));
    }
}
