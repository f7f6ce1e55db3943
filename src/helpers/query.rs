//! `params` → query string, as the stage's `getUrlWithQueryString` (the `query-string`
//! package) builds it: keys sorted, arrays as repeated keys, `null` as a bare key, values
//! encoded like a strict `encodeURIComponent`.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// What strict `encodeURIComponent` leaves alone: `A-Z a-z 0-9 - _ . ~`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `url` with `params` (a JSON object, or nothing) appended as its query string.
pub fn with_query(url: &str, params: Option<&Value>) -> String {
    let Some(params) = params.and_then(Value::as_object) else { return url.to_owned() };
    let mut keys: Vec<&String> = params.keys().collect();
    keys.sort();
    let mut parts = Vec::new();
    for key in keys {
        match &params[key] {
            Value::Null => parts.push(encode(key)),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Null => parts.push(encode(key)),
                        item => parts.push(format!("{}={}", encode(key), encode(&scalar(item)))),
                    }
                }
            }
            value => parts.push(format!("{}={}", encode(key), encode(&scalar(value)))),
        }
    }
    if parts.is_empty() {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_sorted_repeated_and_encoded_queries() {
        let params = json!({"b": [1, "x y"], "a": "é&", "_size": 1000, "n": null});
        assert_eq!(with_query("/nodes", Some(&params)), "/nodes?_size=1000&a=%C3%A9%26&b=1&b=x%20y&n");
    }

    #[test]
    fn appends_to_an_existing_query_and_skips_empty_params() {
        assert_eq!(with_query("/x?a=1", Some(&json!({"b": true}))), "/x?a=1&b=true");
        assert_eq!(with_query("/x", Some(&json!({}))), "/x");
        assert_eq!(with_query("/x", None), "/x");
    }
}
