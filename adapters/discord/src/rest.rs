//! Discord's REST API with its rate limits: one queue per route bucket (so requests of one
//! channel keep their order), `X-RateLimit-Remaining`/`Reset-After` obeyed before the next
//! request, 429s waited out for `retry_after` and retried, the global limit shared. The
//! same code runs against Discord and against the test kit's fake. Errors never carry the
//! token or a webhook URL.

use causeway_api::{NetworkError, Secret};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Retries of one request after 429s before giving up with `RateLimited`.
const MAX_429: u32 = 20;
/// The longest a single 429 may make us wait before the request fails instead.
const MAX_WAIT: Duration = Duration::from_secs(60);

pub struct Rest {
    http: reqwest::Client,
    api: String,
    token: Secret,
    buckets: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Bucket>>>>,
    global_until: Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Bucket {
    /// Requests left before `reset_at`.
    remaining: Option<u32>,
    reset_at: Option<Instant>,
}

/// A file to upload with a message.
#[derive(Clone)]
pub struct Upload {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

pub enum Body {
    None,
    Json(Value),
    /// `payload_json` plus `files[n]`.
    Multipart(Value, Vec<Upload>),
}

impl Rest {
    pub fn new(api: &str, token: Secret) -> Result<Self, NetworkError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!(
                "DiscordBot (https://github.com/causeway-gateway/causeway, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| NetworkError::Other(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            api: api.trim_end_matches('/').to_string(),
            token,
            buckets: Mutex::new(HashMap::new()),
            global_until: Mutex::new(None),
        })
    }

    /// A request with the bot's token. `what` names it in errors (never the URL).
    pub async fn bot(
        &self,
        method: Method,
        path: &str,
        body: Body,
        what: &str,
    ) -> Result<Value, NetworkError> {
        self.send(method, path, body, true, what).await
    }

    /// A webhook request (the token is in the path; no Authorization).
    pub async fn hook(
        &self,
        method: Method,
        path: &str,
        body: Body,
        what: &str,
    ) -> Result<Value, NetworkError> {
        self.send(method, path, body, false, what).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Body,
        auth: bool,
        what: &str,
    ) -> Result<Value, NetworkError> {
        let bucket = self.bucket(&method, path);
        // One request of a bucket at a time: the order of a channel's requests is kept and
        // the headers of one answer govern the next request.
        let mut b = bucket.lock().await;
        let mut limited = 0;
        loop {
            self.wait_global().await;
            if let (Some(0), Some(at)) = (b.remaining, b.reset_at) {
                tokio::time::sleep_until(at).await;
            }
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.api));
            if auth {
                req = req.header("Authorization", format!("Bot {}", self.token.expose()));
            }
            req = match &body {
                Body::None => req,
                Body::Json(v) => req
                    .header("Content-Type", "application/json")
                    .body(v.to_string()),
                Body::Multipart(payload, files) => req.multipart(form(payload, files)?),
            };
            let resp = req.send().await.map_err(|e| {
                NetworkError::Other(format!("{what}: Discord unreachable ({})", e.without_url()))
            })?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let header = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let now = Instant::now();
            b.remaining = header("x-ratelimit-remaining").and_then(|v| v.parse().ok());
            b.reset_at = header("x-ratelimit-reset-after")
                .and_then(|v| v.parse::<f64>().ok())
                .map(|s| now + seconds(s, 3600.0));
            let text = resp.text().await.unwrap_or_default();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let secs = json["retry_after"]
                    .as_f64()
                    .or_else(|| header("retry-after").and_then(|v| v.parse().ok()))
                    .unwrap_or(1.0);
                // (past MAX_WAIT it is an error, whatever Discord said: inf and NaN included)
                let wait = seconds(secs, MAX_WAIT.as_secs_f64() + 1.0);
                limited += 1;
                if limited > MAX_429 || wait > MAX_WAIT {
                    return Err(NetworkError::RateLimited(wait));
                }
                let global = json["global"].as_bool().unwrap_or(false)
                    || header("x-ratelimit-global").is_some_and(|v| v == "true");
                tracing::info!(
                    what,
                    global,
                    retry_after = secs,
                    "Discord rate limit: waiting"
                );
                if global {
                    *lock(&self.global_until) = Some(now + wait);
                } else {
                    b.remaining = Some(0);
                    b.reset_at = Some(now + wait);
                }
                continue;
            }
            if status.is_success() {
                return Ok(if text.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text).map_err(|e| {
                        NetworkError::Other(format!("{what}: bad JSON from Discord: {e}"))
                    })?
                });
            }
            return Err(classify(status, &text, what));
        }
    }

    async fn wait_global(&self) {
        let until = *lock(&self.global_until);
        if let Some(at) = until {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Discord buckets by route and top-level resource: channel, guild or webhook.
    fn bucket(&self, method: &Method, path: &str) -> Arc<tokio::sync::Mutex<Bucket>> {
        let path = path.split('?').next().unwrap_or(path);
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let major = matches!(segs[0], "channels" | "guilds" | "webhooks");
        let mut key = method.as_str().to_string();
        for (i, s) in segs.iter().enumerate() {
            let seg = if i > 0 && segs[i - 1] == "reactions" {
                ":emoji"
            } else if major && (i == 1 || (i == 2 && segs[0] == "webhooks")) {
                s // the top-level resource (a webhook is id + token)
            } else if s.bytes().all(|b| b.is_ascii_digit()) {
                ":id"
            } else {
                s
            };
            key.push('/');
            key.push_str(seg);
        }
        lock(&self.buckets).entry(key).or_default().clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn form(payload: &Value, files: &[Upload]) -> Result<reqwest::multipart::Form, NetworkError> {
    let mut form = reqwest::multipart::Form::new().text("payload_json", payload.to_string());
    for (i, f) in files.iter().enumerate() {
        let part = reqwest::multipart::Part::bytes(f.bytes.clone())
            .file_name(f.name.clone())
            .mime_str(&f.content_type)
            .or_else(|_| {
                reqwest::multipart::Part::bytes(f.bytes.clone())
                    .file_name(f.name.clone())
                    .mime_str("application/octet-stream")
            })
            .map_err(|e| NetworkError::BadRequest(format!("file {}: {e}", f.name)))?;
        form = form.part(format!("files[{i}]"), part);
    }
    Ok(form)
}

/// Discord's error answer as a NetworkError (its JSON `message` and `code`).
fn classify(status: StatusCode, body: &str, what: &str) -> NetworkError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let msg = v["message"].as_str().unwrap_or("no details");
    let code = v["code"].as_u64().unwrap_or(0);
    let text = format!("{what}: {msg} (HTTP {}, code {code})", status.as_u16());
    match status {
        StatusCode::UNAUTHORIZED => {
            NetworkError::LoggedOut(format!("{what}: Discord refused the bot token"))
        }
        StatusCode::FORBIDDEN => NetworkError::Forbidden(text),
        StatusCode::NOT_FOUND => NetworkError::NotFound(text),
        s if s.is_client_error() => NetworkError::BadRequest(text),
        _ => NetworkError::Other(text),
    }
}

/// A path segment for an emoji in a reactions route (`name:id` for custom emoji).
pub fn emoji_path(emoji: &str) -> String {
    let mut out = String::new();
    for b in emoji.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A wait Discord gave in seconds (a header or a JSON number: any float, NaN and infinity
/// included) as a duration between 0 and `max`. NaN is 0; infinity is `max`.
pub(crate) fn seconds(s: f64, max: f64) -> Duration {
    let s = if s.is_nan() { 0.0 } else { s.clamp(0.0, max) };
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_wait_discord_gives_is_a_duration() {
        // (seconds given, the longest allowed, the wait)
        for (given, max, want) in [
            (1.5, 10.0, 1.5),
            (-3.0, 10.0, 0.0),
            (f64::NAN, 10.0, 0.0),
            (f64::INFINITY, 10.0, 10.0),
            (f64::NEG_INFINITY, 10.0, 0.0),
            (1e300, 3600.0, 3600.0),
        ] {
            assert_eq!(super::seconds(given, max).as_secs_f64(), want, "{given}");
        }
    }

    use super::*;

    #[test]
    fn buckets_by_route_and_major_resource() {
        let r = Rest::new("http://127.0.0.1:1/api/v10", Secret::new("t")).expect("client");
        let same = [
            ("/channels/1/messages/5", "/channels/1/messages/6"),
            (
                "/channels/1/messages/5/reactions/%F0%9F%91%8D/@me",
                "/channels/1/messages/7/reactions/x:1/@me",
            ),
            ("/webhooks/3/tok/messages/1", "/webhooks/3/tok/messages/2"),
        ];
        for (a, b) in same {
            assert!(
                Arc::ptr_eq(&r.bucket(&Method::PATCH, a), &r.bucket(&Method::PATCH, b)),
                "{a} {b}"
            );
        }
        let different = [
            ("/channels/1/messages", "/channels/2/messages"),
            ("/webhooks/3/t?wait=true", "/webhooks/4/t"),
        ];
        for (a, b) in different {
            assert!(
                !Arc::ptr_eq(&r.bucket(&Method::POST, a), &r.bucket(&Method::POST, b)),
                "{a} {b}"
            );
        }
    }

    #[test]
    fn errors_are_classified_without_secrets() {
        let e = classify(
            StatusCode::NOT_FOUND,
            r#"{"message":"Unknown Webhook","code":10015}"#,
            "post to #general",
        );
        assert_eq!(
            e,
            NetworkError::NotFound(
                "post to #general: Unknown Webhook (HTTP 404, code 10015)".into()
            )
        );
        assert!(matches!(
            classify(StatusCode::UNAUTHORIZED, "", "x"),
            NetworkError::LoggedOut(_)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, "garbage", "x"),
            NetworkError::BadRequest(_)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, "", "x"),
            NetworkError::Other(_)
        ));
    }

    #[test]
    fn emoji_paths() {
        for (e, want) in [
            ("👍", "%F0%9F%91%8D"),
            ("party:123", "party:123"),
            ("a b", "a%20b"),
        ] {
            assert_eq!(emoji_path(e), want);
        }
    }
}
