//! Reading page facts from JSON-LD (`<script type="application/ld+json">`).
//!
//! Sites embed schema.org objects for search engines; they often state the
//! headline, dates and author more reliably than the visible page. Blocks
//! come as single objects, arrays or `@graph` lists, and are frequently
//! malformed, so every step tolerates absence and bad JSON.

use serde_json::Value;

/// The schema.org facts we use, each the first one found, preferring
/// article-like objects over others (a `WebSite` object's name is the site,
/// not the page).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct JsonLd {
    pub(crate) headline: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) published: Option<String>,
    pub(crate) modified: Option<String>,
    pub(crate) author: Option<String>,
    pub(crate) publisher: Option<String>,
    pub(crate) language: Option<String>,
}

const ARTICLE_TYPES: &[&str] = &[
    "Article",
    "NewsArticle",
    "BlogPosting",
    "TechArticle",
    "ScholarlyArticle",
    "Report",
    "ReportageNewsArticle",
    "AnalysisNewsArticle",
    "OpinionNewsArticle",
    "LiveBlogPosting",
    "SocialMediaPosting",
    "HowTo",
    "Recipe",
    "WebPage",
    "FAQPage",
    "QAPage",
];

/// Merges the facts of every block, article-like objects first.
pub(crate) fn read<'a>(blocks: impl Iterator<Item = &'a str>) -> JsonLd {
    let values: Vec<Value> =
        blocks.filter_map(|block| serde_json::from_str(block.trim()).ok()).collect();
    let mut objects = Vec::new();
    for value in &values {
        collect_objects(value, &mut objects, 0);
    }
    objects.sort_by_key(|object| !is_article_like(object));

    let mut facts = JsonLd::default();
    for object in objects {
        merge(&mut facts, object);
    }
    facts
}

/// Flattens arrays and `@graph` lists; the depth cap keeps hostile nesting
/// from recursing without bound.
fn collect_objects<'v>(value: &'v Value, out: &mut Vec<&'v Value>, depth: usize) {
    if depth > 8 {
        return;
    }
    match value {
        Value::Array(items) => {
            for item in items {
                collect_objects(item, out, depth + 1);
            }
        }
        Value::Object(map) => {
            out.push(value);
            if let Some(graph) = map.get("@graph") {
                collect_objects(graph, out, depth + 1);
            }
        }
        _ => {}
    }
}

fn is_article_like(object: &Value) -> bool {
    match object.get("@type") {
        Some(Value::String(kind)) => ARTICLE_TYPES.contains(&kind.as_str()),
        Some(Value::Array(kinds)) => {
            kinds.iter().filter_map(Value::as_str).any(|kind| ARTICLE_TYPES.contains(&kind))
        }
        _ => false,
    }
}

fn merge(facts: &mut JsonLd, object: &Value) {
    if !is_article_like(object) {
        // Other objects (Organization, WebSite, BreadcrumbList) say nothing
        // about this page except, possibly, who publishes it.
        fill(&mut facts.publisher, publisher_of(object));
        return;
    }
    fill(&mut facts.headline, text(object.get("headline")).or_else(|| text(object.get("name"))));
    fill(&mut facts.description, text(object.get("description")));
    fill(&mut facts.published, text(object.get("datePublished")));
    fill(&mut facts.modified, text(object.get("dateModified")));
    fill(&mut facts.author, object.get("author").and_then(person_name));
    fill(&mut facts.publisher, object.get("publisher").and_then(person_name));
    fill(&mut facts.language, text(object.get("inLanguage")));
}

fn publisher_of(object: &Value) -> Option<String> {
    let kind = object.get("@type").and_then(Value::as_str)?;
    if kind == "WebSite" || kind == "Organization" || kind == "NewsMediaOrganization" {
        text(object.get("name"))
    } else {
        None
    }
}

fn fill(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// A person or organization as a name: a string, an object with `name`, or
/// a list of those joined with commas.
fn person_name(value: &Value) -> Option<String> {
    match value {
        Value::String(_) => text(Some(value)),
        Value::Object(map) => text(map.get("name")),
        Value::Array(items) => {
            let names: Vec<String> = items.iter().filter_map(person_name).collect();
            (!names.is_empty()).then(|| names.join(", "))
        }
        _ => None,
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    let raw = match value? {
        Value::String(text) => text.as_str(),
        Value::Array(items) => items.first().and_then(Value::as_str)?,
        _ => return None,
    };
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

#[cfg(test)]
mod tests {
    use super::read;

    #[test]
    fn prefers_article_objects_inside_a_graph() {
        let block = r#"{"@context":"https://schema.org","@graph":[
            {"@type":"WebSite","name":"Example Site"},
            {"@type":"NewsArticle","headline":"Big  news","datePublished":"2024-01-02",
             "author":[{"@type":"Person","name":"Ann"},{"name":"Bob"}],"inLanguage":"de"}]}"#;
        let facts = read([block].into_iter());
        assert_eq!(facts.headline.as_deref(), Some("Big news"));
        assert_eq!(facts.published.as_deref(), Some("2024-01-02"));
        assert_eq!(facts.author.as_deref(), Some("Ann, Bob"));
        assert_eq!(facts.publisher.as_deref(), Some("Example Site"));
        assert_eq!(facts.language.as_deref(), Some("de"));
    }

    #[test]
    fn tolerates_bad_json_and_odd_shapes() {
        let facts = read(["{not json", "[1, \"x\", null]", "{\"@type\": 5}"].into_iter());
        assert_eq!(facts, super::JsonLd::default());
    }
}
