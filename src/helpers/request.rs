//! `helper.Request`: HTTP requests from a widget to any allowed URL.
//!
//! Semantics follow the stage's `RequestService`: a JSON `body`, a response parsed as JSON
//! when it says it is JSON (`parseResponse`), a Buffer when `parseResponse` is false, a
//! per-call CA `certificate`, and an error status rejecting with an Error that carries the
//! status and the body. Where the request may go is the operator's decision
//! (`[request]` in the config): by default anywhere but link-local and cloud-metadata
//! addresses, which would hand a widget the host's cloud credentials. Redirects are
//! followed here, not by awc, so that every hop is judged by that policy again: a server
//! the widget may reach must not be able to send it on to one it may not.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_tls::connect::{Resolve, Resolver};
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

use super::{header_args, query, read_response, send_without_body, string_arg, tls, HelperBudget, TlsError};
use crate::config::Config;
use crate::protocol::{CallError, CallResult};

const TIMEOUT: Duration = Duration::from_secs(60);
/// Redirects one call follows, as many as awc (and the `request` library) would.
const MAX_REDIRECTS: usize = 10;
/// Headers that carry the caller's credentials: not sent on to another host.
const CREDENTIALS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

pub struct RequestHelper {
    client: awc::Client,
    policy: Rc<HostPolicy>,
}

impl RequestHelper {
    pub fn new(config: Arc<Config>) -> Result<RequestHelper, TlsError> {
        let policy = Rc::new(HostPolicy::new(&config.request.allowed_hosts, &config.request.denied_hosts));
        Ok(RequestHelper { client: tls::http_client(tls::client_config(tls::Trust::WebRoots)?, policy.resolver(), tls::Redirects::Return), policy })
    }

    pub async fn call(&self, args: Value, budget: &HelperBudget) -> Result<CallResult, CallError> {
        let method = string_arg(&args, "method").unwrap_or_else(|| "GET".into()).to_ascii_uppercase();
        if !matches!(method.as_str(), "GET" | "POST" | "PUT" | "DELETE" | "PATCH") {
            return Err(CallError::Refused { message: format!("method `{method}` not allowed. Valid methods: GET,POST,PUT,DELETE,PATCH") });
        }
        let raw_url = string_arg(&args, "url").unwrap_or_default();
        let mut url = url::Url::parse(&query::with_query(&raw_url, args.get("params")))
            .map_err(|e| CallError::Refused { message: format!("invalid url `{raw_url}`: {e}") })?;
        self.policy.check(&url)?;

        let per_call_client;
        // As the stage's `if (certificate)`: an empty one is none. A given one is trusted
        // alone, as Node's `ca` option replaces the default roots.
        let client = match string_arg(&args, "certificate").filter(|pem| !pem.is_empty()) {
            Some(pem) => {
                let tls = tls::client_config(tls::Trust::Only(pem.as_bytes()))
                    .map_err(|e| CallError::Refused { message: format!("certificate: {e}") })?;
                per_call_client = tls::http_client(tls, self.policy.resolver(), tls::Redirects::Return);
                &per_call_client
            }
            None => &self.client,
        };
        let mut method = awc::http::Method::from_bytes(method.as_bytes()).map_err(|e| CallError::Refused { message: e.to_string() })?;
        let mut headers = header_args(&args)?;
        // The stage's RequestService leaves out `cert` as well.
        headers.retain(|(name, _)| name != "cert");
        let mut body = args.get("body").filter(|b| !b.is_null() && *b != &Value::Bool(false) && *b != &Value::String(String::new()));
        let mut redirects = 0;
        let sent = loop {
            let mut request = client.request(method.clone(), url.as_str()).timeout(TIMEOUT);
            for (name, value) in &headers {
                request = request.append_header((name.as_str(), value.as_str()));
            }
            let sent = match body {
                Some(body) => request.send_json(body).await,
                None => send_without_body(request).await,
            };
            let Ok(response) = &sent else { break sent };
            let Some(next) = redirect_target(&url, response) else { break sent };
            let status = response.status().as_u16();
            if redirects == MAX_REDIRECTS {
                return Err(CallError::Transport { message: format!("{method} {raw_url}: more than {MAX_REDIRECTS} redirects") });
            }
            redirects += 1;
            self.policy.check(&next).map_err(|refused| match refused {
                CallError::Refused { message } => CallError::Refused { message: format!("{url} redirected: {message}") },
                other => other,
            })?;
            // As awc and browsers do: 303, and 301/302 after anything but GET, become a
            // GET without body; 307 and 308 repeat the request as it was.
            if status == 303 || (matches!(status, 301 | 302) && method != awc::http::Method::GET) {
                method = awc::http::Method::GET;
                body = None;
            }
            if next.origin() != url.origin() {
                headers.retain(|(name, _)| !CREDENTIALS.contains(&name.as_str()));
            }
            url = next;
        };
        let (response, bytes) = read_response(sent, &format!("{method} {raw_url}"), budget).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(CallError::Status {
                message: format!(
                    "Status: {} {}. Data received: {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or(""),
                    String::from_utf8_lossy(&bytes)
                ),
            });
        }
        let parse = args.get("parseResponse").map_or(true, |p| p.as_bool() != Some(false));
        if !parse {
            return Ok(CallResult::buffer(bytes));
        }
        let is_json = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.to_ascii_lowercase().contains("application/json"));
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if is_json {
            return serde_json::from_str(&text)
                .map(CallResult::value)
                .map_err(|_| CallError::Status { message: format!("Invalid JSON response. Cannot parse. Data received: {text}") });
        }
        Ok(CallResult::value(Value::String(text)))
    }
}

/// Where a redirect response sends the request next, if it is one with a usable `Location`.
fn redirect_target<S>(from: &url::Url, response: &awc::ClientResponse<S>) -> Option<url::Url> {
    if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = response.headers().get("location")?.to_str().ok()?;
    from.join(location).ok()
}

/// Which hosts `helper.Request` may reach: [`HostPolicy::check`] judges the URL's host as
/// written, and [`HostPolicy::resolver`] the addresses a host name resolves to.
struct HostPolicy {
    allow_any: bool,
    allowed: Vec<String>,
    denied_names: Vec<String>,
    denied_ranges: Vec<ipnet::IpNet>,
}

impl HostPolicy {
    fn new(allowed: &[String], denied: &[String]) -> HostPolicy {
        let mut policy = HostPolicy { allow_any: false, allowed: Vec::new(), denied_names: Vec::new(), denied_ranges: Vec::new() };
        for host in allowed {
            if host == "*" {
                policy.allow_any = true;
            } else {
                policy.allowed.push(host.to_ascii_lowercase());
            }
        }
        for host in denied {
            if let Ok(net) = host.parse::<ipnet::IpNet>() {
                policy.denied_ranges.push(net);
            } else if let Ok(ip) = host.parse::<IpAddr>() {
                policy.denied_ranges.push(ipnet::IpNet::from(ip));
            } else {
                policy.denied_names.push(host.to_ascii_lowercase());
            }
        }
        policy
    }

    fn denies(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.denied_ranges.iter().any(|net| net.contains(&ip))
    }

    /// The DNS resolver for this policy's clients.
    fn resolver(self: &Rc<Self>) -> Resolver {
        Resolver::custom(PolicyResolver(self.clone()))
    }

    fn check(&self, url: &url::Url) -> Result<(), CallError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CallError::Refused { message: format!("url `{url}` refused: only http and https are allowed") });
        }
        let refuse = |host: &str| CallError::Refused {
            message: format!("helper.Request to `{host}` refused: host not allowed by the gateway's [request] configuration"),
        };
        let Some(host) = url.host() else { return Err(refuse("")) };
        let name = host.to_string().to_ascii_lowercase();
        let ip = match host {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        };
        if ip.is_some_and(|ip| self.denies(ip)) {
            return Err(refuse(&name));
        }
        if self.denied_names.iter().any(|d| name == *d || name.ends_with(&format!(".{d}"))) {
            return Err(refuse(&name));
        }
        let allowed = self.allow_any
            || self.allowed.iter().any(|a| match a.strip_prefix("*.") {
                Some(suffix) => name.ends_with(&format!(".{suffix}")),
                None => name == *a,
            });
        if allowed { Ok(()) } else { Err(refuse(&name)) }
    }
}

/// Resolves host names for `helper.Request` and drops every address in a denied range.
/// The connection goes to an address this returned, so what was checked is what is
/// reached: a name that resolves (or is rebound between two lookups) into a denied range
/// gets nowhere near it.
struct PolicyResolver(Rc<HostPolicy>);

impl Resolve for PolicyResolver {
    fn lookup<'a>(&'a self, host: &'a str, port: u16) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn std::error::Error>>> {
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved.iter().copied().filter(|addr| !self.0.denies(addr.ip())).collect();
            if allowed.is_empty() && !resolved.is_empty() {
                return Err(format!("`{host}` resolves only to addresses the gateway's [request] configuration denies").into());
            }
            Ok(allowed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str]) -> HostPolicy {
        let defaults = crate::config::RequestConfig::default();
        HostPolicy::new(&allowed.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &defaults.denied_hosts)
    }

    fn check(p: &HostPolicy, url: &str) -> bool {
        p.check(&url::Url::parse(url).unwrap()).is_ok()
    }

    #[test]
    fn default_policy_refuses_metadata_and_link_local() {
        let p = policy(&["*"]);
        assert!(check(&p, "http://example.com/x"));
        assert!(check(&p, "http://127.0.0.1:8080/"));
        assert!(!check(&p, "http://169.254.169.254/latest/meta-data/"));
        assert!(!check(&p, "http://[fe80::1]/"));
        assert!(!check(&p, "http://[::ffff:169.254.169.254]/"));
        assert!(!check(&p, "http://metadata.google.internal/"));
    }

    #[actix_web::test]
    async fn host_names_resolving_into_denied_ranges_get_no_address() {
        let guarded = Rc::new(HostPolicy::new(&["*".into()], &["127.0.0.0/8".into(), "::1".into()]));
        let error = PolicyResolver(guarded).lookup("localhost", 80).await.unwrap_err();
        assert!(error.to_string().contains("resolves only to addresses"), "{error}");
        let open = Rc::new(HostPolicy::new(&["*".into()], &[]));
        let addrs = PolicyResolver(open).lookup("localhost", 80).await.unwrap();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
    }

    #[test]
    fn explicit_allow_list_is_exact_or_wildcard() {
        let p = policy(&["api.github.com", "*.example.org"]);
        assert!(check(&p, "https://api.github.com/repos"));
        assert!(check(&p, "https://a.example.org/"));
        assert!(!check(&p, "https://example.org.evil.com/"));
        assert!(!check(&p, "https://github.com/"));
    }
}
