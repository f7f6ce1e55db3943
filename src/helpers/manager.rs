//! `helper.Manager`: requests to the Cloudify manager's REST API.
//!
//! Every call goes to `<manager url>/api/<api version><url>` and nowhere else: the path a
//! widget gives is normalised and checked so that `..`, an absolute URL, `//host` or an
//! encoded slash cannot leave the API. A `cookie` header holding `XSRF-TOKEN` becomes
//! `Authentication-Token`, as in the stage backend; the widget never sees the manager's
//! address or CA.

use std::sync::Arc;
use std::time::Duration;

use actix_tls::connect::Resolver;
use serde_json::{json, Value};

use super::{header_args, query, read_response, send_without_body, string_arg, tls, HelperBudget, TlsError};
use crate::config::Config;
use crate::protocol::{CallError, CallResult};

/// Page size `doGetFull` asks for, as the stage does.
const PAGE_SIZE: u64 = 1000;

pub struct Manager {
    config: Arc<Config>,
    client: awc::Client,
    /// `<manager url>/api/<version>` with no trailing slash.
    api_base: String,
}

impl Manager {
    pub fn new(config: Arc<Config>) -> Result<Manager, TlsError> {
        let tls = tls::manager_client_config(&config)?;
        let api_base = format!("{}/api/{}", config.manager.url.as_str().trim_end_matches('/'), config.manager.api_version);
        Ok(Manager { config, client: tls::http_client(tls, Resolver::default(), tls::Redirects::Follow), api_base })
    }

    /// The absolute URL for a widget's API path, or a refusal if it would leave the API.
    fn api_url(&self, path: &str, params: Option<&Value>) -> Result<String, CallError> {
        let refuse = |why: &str| CallError::Refused { message: format!("manager url `{path}` refused: {why}") };
        if path.chars().any(char::is_control) {
            return Err(refuse("control characters are not allowed"));
        }
        // Only the path decides where the request goes: a query may hold a URL or an
        // encoded slash (`?_search=a%2Fb`), as it may in the stage.
        let path_only = path.split(['?', '#']).next().unwrap_or("");
        if path_only.contains("://") || path_only.starts_with("//") || path_only.contains('\\') {
            return Err(refuse("give a path under the manager's API, not a URL"));
        }
        let lower = path_only.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") {
            return Err(refuse("encoded slashes are not allowed"));
        }
        let decoded = percent_encoding::percent_decode_str(path_only).decode_utf8_lossy();
        if decoded.split('/').any(|segment| segment == ".." || segment == ".") {
            return Err(refuse("`.` and `..` segments are not allowed"));
        }
        let slash = if path.starts_with('/') { "" } else { "/" };
        let full = format!("{}{slash}{}", self.api_base, query::with_query(path, params));
        let parsed = url::Url::parse(&full).map_err(|e| refuse(&e.to_string()))?;
        let base = &self.config.manager.url;
        let prefix = format!("/api/{}/", self.config.manager.api_version);
        if parsed.host() != base.host() || parsed.port_or_known_default() != base.port_or_known_default() || !parsed.path().starts_with(&prefix) {
            return Err(refuse("it does not stay under the manager's API"));
        }
        Ok(parsed.to_string())
    }

    pub async fn call(&self, args: Value, budget: &HelperBudget) -> Result<CallResult, CallError> {
        self.request(&args, args.get("params"), budget).await.map(CallResult::value)
    }

    /// `doGetFull`: pages through a list endpoint until `metadata.pagination.total` items
    /// are collected and answers `{items: [...]}`.
    pub async fn get_full(&self, args: Value, budget: &HelperBudget) -> Result<CallResult, CallError> {
        let mut params = args.get("params").and_then(Value::as_object).cloned().unwrap_or_default();
        let mut items: Vec<Value> = Vec::new();
        loop {
            params.insert("_size".into(), json!(PAGE_SIZE));
            params.insert("_offset".into(), json!(items.len()));
            let mut call = args.clone();
            call["method"] = json!("GET");
            let page = self.request(&call, Some(&Value::Object(params.clone())), budget).await?;
            let page_items = page.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            let total = page.pointer("/metadata/pagination/total").and_then(Value::as_u64).unwrap_or(0);
            let got = page_items.len();
            items.extend(page_items);
            // An empty page ends the loop even if the manager's total says otherwise.
            if got == 0 || items.len() as u64 >= total {
                return Ok(CallResult::value(json!({ "items": items })));
            }
        }
    }

    async fn request(&self, args: &Value, params: Option<&Value>, budget: &HelperBudget) -> Result<Value, CallError> {
        let method = string_arg(args, "method").unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE" | "PATCH") {
            return Err(CallError::Refused { message: format!("method `{method}` not allowed. Valid methods: GET,POST,PUT,DELETE,PATCH") });
        }
        let path = string_arg(args, "url").unwrap_or_default();
        let url = self.api_url(&path, params)?;
        let timeout = args
            .get("timeout")
            .and_then(Value::as_u64)
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .unwrap_or_else(|| self.config.manager.timeouts.for_method(&method));

        let mut request = self
            .client
            .request(awc::http::Method::from_bytes(method.as_bytes()).map_err(|e| CallError::Refused { message: e.to_string() })?, url.as_str())
            .timeout(timeout);
        for (name, value) in header_args(args)? {
            if name == "cookie" {
                if let Some(token) = xsrf_token(&value) {
                    request = request.insert_header(("authentication-token", token));
                }
            }
            request = request.append_header((name, value));
        }
        let body = args.get("body").filter(|b| !b.is_null());
        let sent = match body {
            Some(Value::String(text)) => request.send_body(text.clone()).await,
            Some(value) => request.send_json(value).await,
            None => send_without_body(request).await,
        };
        let (response, bytes) = read_response(sent, &format!("manager request {method} {path}"), budget).await?;
        let parsed = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if response.status().is_success() {
            Ok(parsed)
        } else {
            Err(CallError::Manager { body: parsed })
        }
    }
}

/// The `XSRF-TOKEN` value of a `Cookie` header.
pub fn xsrf_token(cookie_header: &str) -> Option<String> {
    cookie_header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name.trim() == "XSRF-TOKEN").then(|| {
            let value = value.trim().trim_matches('"');
            percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manager() -> Manager {
        let mut config = Config::default();
        config.manager.url = url::Url::parse("https://manager.example:8443").unwrap();
        Manager::new(Arc::new(config)).unwrap()
    }

    #[test]
    fn api_paths_stay_under_the_api() {
        let m = manager();
        assert_eq!(m.api_url("/blueprints", None).unwrap(), "https://manager.example:8443/api/v3.1/blueprints");
        assert_eq!(m.api_url("blueprints?_size=5", None).unwrap(), "https://manager.example:8443/api/v3.1/blueprints?_size=5");
        assert_eq!(
            m.api_url("/plugins?url=https://x.example/p.wgn&_search=a%2Fb", None).unwrap(),
            "https://manager.example:8443/api/v3.1/plugins?url=https://x.example/p.wgn&_search=a%2Fb"
        );
        for bad in ["../../x", "/a/../../x", "http://other-host/", "//other-host/x", "/%2e%2e/%2e%2e/x", "/a%2f..%2fb", "/x\r\nHost: evil", "\\\\other"] {
            assert!(m.api_url(bad, None).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn finds_the_xsrf_token_in_a_cookie_header() {
        assert_eq!(xsrf_token("a=1; XSRF-TOKEN=abc%3D; b=2").as_deref(), Some("abc="));
        assert_eq!(xsrf_token("a=1"), None);
    }
}
