//! Authentication of console users: the `XSRF-TOKEN` cookie checked against the manager.
//!
//! The manager is the only authority on a token, but asking it on every widget call would
//! double the console's load on it, so an accepted token is trusted for `auth.cache_ttl`.
//! The cache is keyed by a SHA-256 of the token, never the token itself, so a memory dump
//! of the gateway does not hand out sessions.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::GatewayError;
use crate::config::{AuthMode, Config};

/// Entries kept before expired ones are swept out.
const SWEEP_AT: usize = 10_000;

#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], (Instant, Value)>>,
}

impl TokenCache {
    fn get(&self, key: &[u8; 32]) -> Option<Value> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.get(key).filter(|(expires, _)| *expires > Instant::now()).map(|(_, user)| user.clone())
    }

    fn put(&self, key: [u8; 32], expires: Instant, user: Value) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SWEEP_AT {
            let now = Instant::now();
            entries.retain(|_, (e, _)| *e > now);
        }
        entries.insert(key, (expires, user));
    }
}

/// The manager's user object for this request, `None` when authentication is off.
pub async fn authenticate(
    req: &HttpRequest,
    config: &Config,
    cache: &TokenCache,
    client: &awc::Client,
) -> Result<Option<Value>, GatewayError> {
    if config.auth.mode == AuthMode::None {
        return Ok(None);
    }
    let token = req
        .cookie("XSRF-TOKEN")
        .map(|c| c.value().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GatewayError::unauthorized("Authentication required: the XSRF-TOKEN cookie is missing"))?;
    let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if let Some(user) = cache.get(&key) {
        return Ok(Some(user));
    }

    let url = format!(
        "{}/api/{}/user?_get_data=true",
        config.manager.url.as_str().trim_end_matches('/'),
        config.manager.api_version
    );
    let unreachable = |e: &dyn std::fmt::Display| {
        GatewayError::unavailable(format!("Cannot verify the session: the manager is unreachable ({e})"), Some(std::time::Duration::from_secs(5)))
    };
    let mut response = client
        .get(url)
        .insert_header(("authentication-token", token))
        .timeout(config.manager.timeouts.get)
        .send()
        .await
        .map_err(|e| unreachable(&e))?;
    let body = response.body().limit(1024 * 1024).await.map_err(|e| unreachable(&e))?;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let reason = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| status.to_string());
        return Err(GatewayError::unauthorized(format!("Authentication failed: {reason}")));
    }
    if !status.is_success() {
        return Err(unreachable(&format!("it answered {status}")));
    }
    let user: Value = serde_json::from_slice(&body).map_err(|e| unreachable(&format!("unreadable user object: {e}")))?;
    cache.put(key, Instant::now() + config.auth.cache_ttl, user.clone());
    Ok(Some(user))
}
