//! The client-server API, as the appservice (`Authorization: Bearer <as_token>`, acting as
//! a puppet with `?user_id=`). A homeserver that is restarting or overloaded delays a call,
//! never fails it: `M_LIMIT_EXCEEDED` waits `retry_after_ms`, an unreachable or 5xx
//! homeserver is retried with backoff. Errors never carry the token.

use crate::Shared;
use causeway_api::NetworkError;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// How long a call keeps retrying a homeserver that does not answer.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// Percent-encode one path segment (room ids, user ids, event ids, txn ids).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Shared {
    /// One call; `user` is the puppet (or appservice user) to act as.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, NetworkError> {
        let base = self.cfg.homeserver_url.trim_end_matches('/');
        let mut url = format!("{base}{path}");
        if let Some(u) = user {
            url.push(if path.contains('?') { '&' } else { '?' });
            url.push_str("user_id=");
            url.push_str(&seg(u));
        }
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(250);
        loop {
            let mut req = self.http.request(method.clone(), &url).header(
                "Authorization",
                format!("Bearer {}", self.reg.as_token.expose()),
            );
            if let Some(b) = &body {
                req = req
                    .header("Content-Type", "application/json")
                    .body(b.to_string());
            }
            let answer = match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let text = r.text().await.unwrap_or_default();
                    Ok((status, text))
                }
                Err(e) => Err(e.without_url().to_string()),
            };
            let retry_in = match &answer {
                Ok((status, text)) if (200..300).contains(status) => {
                    return Ok(serde_json::from_str(text).unwrap_or(Value::Null));
                }
                Ok((429, text)) => {
                    let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                    Duration::from_millis(v["retry_after_ms"].as_u64().unwrap_or(1000))
                }
                Ok((status, _)) if *status >= 500 => delay,
                Ok((status, text)) => return Err(classify(*status, text)),
                Err(_) => delay,
            };
            if started.elapsed() + retry_in > GIVE_UP_AFTER {
                return Err(match answer {
                    Ok((status, text)) => classify(status, &text),
                    Err(e) => NetworkError::Other(format!("the homeserver is unreachable: {e}")),
                });
            }
            tracing::info!(
                path = path.split('?').next().unwrap_or(""),
                wait_ms = retry_in.as_millis() as u64,
                "homeserver busy or away; retrying"
            );
            tokio::time::sleep(retry_in).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    /// The appservice's own user id.
    pub fn bot_user(&self) -> String {
        format!("@{}:{}", self.reg.sender_localpart, self.cfg.server_name)
    }

    /// Register a puppet (idempotent: an existing one is fine).
    pub async fn register(&self, localpart: &str) -> Result<(), NetworkError> {
        let body = json!({
            "type": "m.login.application_service",
            "username": localpart,
            "inhibit_login": true,
        });
        match self
            .call(
                Method::POST,
                "/_matrix/client/v3/register",
                None,
                Some(body),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(NetworkError::BadRequest(e)) if e.contains("M_USER_IN_USE") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A Matrix error answer as a NetworkError (`errcode` and `error`).
pub fn classify(status: u16, body: &str) -> NetworkError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = v["errcode"].as_str().unwrap_or("M_UNKNOWN");
    let text = format!(
        "{code}: {} (HTTP {status})",
        v["error"].as_str().unwrap_or("no details")
    );
    match (status, code) {
        (_, "M_UNKNOWN_TOKEN" | "M_MISSING_TOKEN") => NetworkError::LoggedOut(format!(
            "the homeserver refused the appservice token ({code})"
        )),
        (_, "M_FORBIDDEN") | (403, _) => NetworkError::Forbidden(text),
        (_, "M_NOT_FOUND") | (404, _) => NetworkError::NotFound(text),
        (429, _) => NetworkError::RateLimited(Duration::from_millis(
            v["retry_after_ms"].as_u64().unwrap_or(1000),
        )),
        (s, _) if s < 500 => NetworkError::BadRequest(text),
        _ => NetworkError::Other(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_and_errors() {
        assert_eq!(seg("!abc:example.org"), "%21abc%3Aexample.org");
        assert_eq!(seg("$ev/ent"), "%24ev%2Fent");
        assert!(matches!(
            classify(401, r#"{"errcode":"M_UNKNOWN_TOKEN","error":"x"}"#),
            NetworkError::LoggedOut(_)
        ));
        assert!(matches!(
            classify(403, r#"{"errcode":"M_FORBIDDEN","error":"no"}"#),
            NetworkError::Forbidden(_)
        ));
        assert!(
            matches!(classify(400, r#"{"errcode":"M_USER_IN_USE","error":"taken"}"#), NetworkError::BadRequest(e) if e.contains("M_USER_IN_USE"))
        );
        assert!(matches!(classify(502, "gateway"), NetworkError::Other(_)));
    }
}
