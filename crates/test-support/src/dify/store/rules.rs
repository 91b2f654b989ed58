//! Process rules: validation as Dify's service does it, and segmentation.
//!
//! Segmentation approximates Dify's splitters closely enough for retrieval
//! tests: `automatic` merges paragraphs into chunks of at most 500
//! characters; `custom` splits on the given separator first and only cuts
//! pieces that are still too long. Sizes are counted in characters, not
//! model tokens (no tokenizer here).

use serde_json::{Map, Value, json};

use crate::dify::reply::{Reply, Validation};

const PRE_PROCESSING_IDS: [&str; 3] =
    ["remove_stopwords", "remove_extra_spaces", "remove_urls_emails"];
const MODES: [&str; 3] = ["automatic", "custom", "hierarchical"];

/// A validated rule: mode, rules object, and the asynchronous failure it
/// will cause (Dify checks custom chunk sizes only while indexing).
pub(crate) struct CheckedRule {
    pub(crate) mode: String,
    pub(crate) rules: Value,
    pub(crate) fail_reason: Option<String>,
}

/// The rules Dify stores for `automatic` mode.
pub(crate) fn automatic_rules() -> Value {
    json!({
        "pre_processing_rules": [
            {"id": "remove_extra_spaces", "enabled": true},
            {"id": "remove_urls_emails", "enabled": false}
        ],
        "segmentation": {"delimiter": "\n", "max_tokens": 500, "chunk_overlap": 50}
    })
}

/// Validates `process_rule` from a create/update body (`model` names the
/// payload in pydantic-style messages).
pub(crate) fn check(value: &Value, model: &str) -> Result<CheckedRule, Reply> {
    let Value::Object(obj) = value else {
        return Err(Validation::new(model)
            .add("process_rule", "Input should be a valid dictionary", "dict_type", value)
            .into_reply());
    };
    let mode = match obj.get("mode") {
        Some(Value::String(m)) if MODES.contains(&m.as_str()) => m.clone(),
        Some(other) => {
            let msg = "Input should be 'automatic', 'custom' or 'hierarchical'";
            return Err(Validation::new(model)
                .add("process_rule.mode", msg, "literal_error", other)
                .into_reply());
        }
        None => {
            return Err(Validation::new(model)
                .add("process_rule.mode", "Field required", "missing", value)
                .into_reply());
        }
    };
    if mode == "automatic" {
        return Ok(CheckedRule { mode, rules: automatic_rules(), fail_reason: None });
    }
    let rules = match obj.get("rules") {
        Some(Value::Object(r)) => r,
        _ => return Err(Reply::invalid_param("Process rule rules is required")),
    };
    check_pre_processing(rules)?;
    let fail_reason = check_segmentation(rules, &mode)?;
    Ok(CheckedRule { mode, rules: Value::Object(rules.clone()), fail_reason })
}

fn check_pre_processing(rules: &Map<String, Value>) -> Result<(), Reply> {
    let Some(Value::Array(items)) = rules.get("pre_processing_rules") else {
        return Err(Reply::invalid_param("Process rule pre_processing_rules is required"));
    };
    for item in items {
        let id_ok = item
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| PRE_PROCESSING_IDS.contains(&id));
        if !id_ok {
            return Err(Reply::invalid_param("Process rule pre_processing_rules id is invalid"));
        }
        if !item.get("enabled").is_some_and(Value::is_boolean) {
            return Err(Reply::invalid_param(
                "Process rule pre_processing_rules enabled is invalid",
            ));
        }
    }
    Ok(())
}

fn check_segmentation(rules: &Map<String, Value>, mode: &str) -> Result<Option<String>, Reply> {
    let Some(Value::Object(seg)) = rules.get("segmentation") else {
        return Err(Reply::invalid_param("Process rule segmentation is required"));
    };
    match seg.get("separator") {
        None | Some(Value::Null) => {
            return Err(Reply::invalid_param("Process rule segmentation separator is required"));
        }
        Some(Value::String(s)) if !s.is_empty() => {}
        Some(_) => {
            return Err(Reply::invalid_param("Process rule segmentation separator is invalid"));
        }
    }
    let parent_mode = rules.get("parent_mode").and_then(Value::as_str);
    if mode == "hierarchical" && !matches!(parent_mode, Some("full-doc" | "paragraph")) {
        return Err(Reply::invalid_param("Process rule parent_mode is invalid"));
    }
    if mode == "hierarchical" && parent_mode == Some("full-doc") {
        return Ok(None);
    }
    let max_tokens = match seg.get("max_tokens") {
        None | Some(Value::Null) => {
            return Err(Reply::invalid_param("Process rule segmentation max_tokens is required"));
        }
        Some(v) => v.as_i64().ok_or_else(|| {
            Reply::invalid_param("Process rule segmentation max_tokens is invalid")
        })?,
    };
    let in_range = (50..=4000).contains(&max_tokens);
    Ok((!in_range).then(|| "Custom segment length should be between 50 and 4000.".to_owned()))
}

/// Splits `text` into chunk contents under `mode`/`rules`.
pub(crate) fn split(text: &str, mode: &str, rules: &Value) -> Vec<String> {
    let seg = &rules["segmentation"];
    let max = seg["max_tokens"].as_u64().unwrap_or(500).clamp(50, 4000) as usize;
    if mode == "automatic" {
        return merge(paragraphs(text, "\n"), max);
    }
    let separator = seg["separator"].as_str().unwrap_or("\n\n").replace("\\n", "\n");
    paragraphs(text, &separator).into_iter().flat_map(|piece| cut(&piece, max)).collect()
}

fn paragraphs(text: &str, separator: &str) -> Vec<String> {
    text.split(separator).map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

/// Greedily joins pieces with blank lines while the chunk stays within
/// `max` characters; a piece longer than `max` is cut on its own.
fn merge(pieces: Vec<String>, max: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    for piece in pieces.iter().flat_map(|p| cut(p, max)) {
        let joined = current.chars().count() + 2 + piece.chars().count();
        if !current.is_empty() && joined > max {
            chunks.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push_str("\n\n");
        }
        current.push_str(&piece);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Cuts a piece longer than `max` characters, at the last whitespace of
/// each window when there is one.
fn cut(piece: &str, max: usize) -> Vec<String> {
    let chars: Vec<char> = piece.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + max).min(chars.len());
        if end < chars.len()
            && let Some(ws) = chars[start..end].iter().rposition(|c| c.is_whitespace())
            && ws > 0
        {
            end = start + ws;
        }
        let chunk: String = chars[start..end].iter().collect();
        let chunk = chunk.trim();
        if !chunk.is_empty() {
            out.push(chunk.to_owned());
        }
        start = end;
    }
    out
}

/// Up to ten distinct words of a chunk, as the keyword table would index.
pub(crate) fn keywords(content: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for word in words(content) {
        if word.chars().count() >= 3
            && !STOPWORDS.contains(&word.to_lowercase().as_str())
            && !seen.contains(&word)
        {
            seen.push(word);
        }
        if seen.len() == 10 {
            break;
        }
    }
    seen
}

/// Alphanumeric words of a text.
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned)
}

const STOPWORDS: [&str; 16] = [
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "her", "was", "one",
    "our", "out", "with",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_merges_paragraphs_up_to_the_limit() {
        let para = "Large text paragraph number 1 about keyword indexing and otters.";
        let text = vec![para; 20].join("\n\n");
        let chunks = split(&text, "automatic", &automatic_rules());
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.chars().count() <= 500));
        assert_eq!(chunks.iter().map(|c| c.matches(para).count()).sum::<usize>(), 20);
    }

    #[test]
    fn custom_separator_splits_without_merging() {
        let rules = json!({
            "pre_processing_rules": [],
            "segmentation": {"separator": "###", "max_tokens": 200}
        });
        let text = "Gamma section one about teal foxes.\n###\nGamma section two about amber owls.";
        let chunks = split(text, "custom", &rules);
        assert_eq!(
            chunks,
            vec![
                "Gamma section one about teal foxes.".to_owned(),
                "Gamma section two about amber owls.".to_owned()
            ]
        );
    }

    #[test]
    fn text_without_separators_is_cut() {
        let text = "z".repeat(1234);
        let chunks = split(&text, "automatic", &automatic_rules());
        assert_eq!(chunks.iter().map(String::len).sum::<usize>(), 1234);
        assert!(chunks.iter().all(|c| c.len() <= 500));
    }

    #[test]
    fn empty_text_has_no_chunks() {
        assert!(split("  \n ", "automatic", &automatic_rules()).is_empty());
    }

    #[test]
    fn rule_validation_messages() {
        let err = |v: Value| match check(&v, "P") {
            Err(reply) => match reply.body {
                crate::dify::reply::ReplyBody::Json(b) => {
                    b["message"].as_str().unwrap_or("").to_owned()
                }
                _ => String::new(),
            },
            Ok(_) => String::new(),
        };
        assert_eq!(err(json!({"mode": "custom"})), "Process rule rules is required");
        assert!(err(json!({"mode": "magic"})).contains("literal_error"));
        let custom = |segmentation: Value| {
            let rules = json!({"pre_processing_rules": [], "segmentation": segmentation});
            json!({"mode": "custom", "rules": rules})
        };
        let no_sep = custom(json!({"max_tokens": 100}));
        assert_eq!(err(no_sep), "Process rule segmentation separator is required");
        let big = custom(json!({"separator": "\n", "max_tokens": 9000}));
        assert!(check(&big, "P").is_ok_and(|r| r.fail_reason.is_some()));
    }
}
