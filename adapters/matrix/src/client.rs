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

/// Decode a percent-encoded path segment (invalid escapes stay as they are).
pub fn unseg(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if let (b'%', Some(h), Some(l)) = (
            b[i],
            b.get(i + 1).and_then(|c| hex(*c)),
            b.get(i + 2).and_then(|c| hex(*c)),
        ) {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Shared {
    /// One JSON call; `user` is the puppet (or appservice user) to act as.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<Value>,
    ) -> Result<Value, NetworkError> {
        let body = body.map(|b| ("application/json".to_string(), b.to_string().into_bytes()));
        let (_, bytes) = self.raw(method, path, user, body).await?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// Download a file of the media repository: its content type and bytes.
    pub async fn download(&self, path: &str) -> Result<(String, Vec<u8>), NetworkError> {
        self.raw(Method::GET, path, None, None).await
    }

    /// Upload a file as `user`: its mxc:// URI.
    pub async fn upload(
        &self,
        user: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String, NetworkError> {
        let path = format!("/_matrix/media/v3/upload?filename={}", seg(name));
        let (_, answer) = self
            .raw(
                Method::POST,
                &path,
                Some(user),
                Some((content_type.to_string(), bytes)),
            )
            .await?;
        let v: Value = serde_json::from_slice(&answer).unwrap_or(Value::Null);
        v["content_uri"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| NetworkError::Other("the homeserver gave no content URI".into()))
    }

    /// A request with retries: `M_LIMIT_EXCEEDED` waits `retry_after_ms`; an unreachable or
    /// failing (5xx) homeserver is retried with backoff for up to two minutes.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        user: Option<&str>,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<(String, Vec<u8>), NetworkError> {
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
            if let Some((ctype, bytes)) = &body {
                req = req
                    .header("Content-Type", ctype.as_str())
                    .body(bytes.clone());
            }
            let answer = match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let ctype = r
                        .headers()
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("application/octet-stream")
                        .to_string();
                    match r.bytes().await {
                        Ok(b) => Ok((status, ctype, b.to_vec())),
                        Err(e) => Err(e.without_url().to_string()),
                    }
                }
                Err(e) => Err(e.without_url().to_string()),
            };
            let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
            let retry_in = match &answer {
                Ok((status, ctype, bytes)) if (200..300).contains(status) => {
                    return Ok((ctype.clone(), bytes.clone()));
                }
                Ok((429, _, bytes)) => {
                    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
                    Duration::from_millis(v["retry_after_ms"].as_u64().unwrap_or(1000))
                }
                Ok((status, _, _)) if *status >= 500 => delay,
                Ok((status, _, bytes)) => return Err(classify(*status, &text(bytes))),
                Err(_) => delay,
            };
            if started.elapsed() + retry_in > GIVE_UP_AFTER {
                return Err(match answer {
                    Ok((status, _, bytes)) => classify(status, &text(&bytes)),
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
        for s in ["@alice:example.org", "$ev/ent", "é%", "%zz"] {
            assert_eq!(unseg(&seg(s)), s);
        }
        assert_eq!(unseg("%40a%3ab%zz"), "@a:b%zz");
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
