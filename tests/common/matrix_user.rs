//! A Matrix user driven over the client-server API, for the Matrix tests and the Matrix
//! bench (each uses part of it).
#![allow(dead_code)]

use super::PASSWORD;
use serde_json::{json, Value};
use std::time::Duration;

/// A room id or alias as one path segment.
pub fn seg(s: &str) -> String {
    s.replace('!', "%21")
        .replace(':', "%3A")
        .replace('#', "%23")
}

/// A Matrix user over the client-server API.
pub struct MatrixUser {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub since: Option<String>,
    pub txn: u64,
}

impl MatrixUser {
    pub async fn login(base: &str, user: &str) -> MatrixUser {
        let http = reqwest::Client::new();
        let body = json!({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": PASSWORD});
        let v: Value = serde_json::from_str(
            &http
                .post(format!("{base}/_matrix/client/v3/login"))
                .body(body.to_string())
                .send()
                .await
                .expect("login")
                .text()
                .await
                .expect("login body"),
        )
        .expect("login json");
        MatrixUser {
            http,
            base: base.to_string(),
            token: v["access_token"]
                .as_str()
                .expect("access token")
                .to_string(),
            since: None,
            txn: 0,
        }
    }

    /// A call, retried while the homeserver is away (a restart).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let end = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .bearer_auth(&self.token);
            if let Some(b) = &body {
                req = req.body(b.to_string());
            }
            match req.send().await {
                Ok(r) if r.status().as_u16() < 500 => {
                    let text = r.text().await.unwrap_or_default();
                    return serde_json::from_str(&text).unwrap_or(Value::Null);
                }
                _ => {
                    assert!(
                        tokio::time::Instant::now() < end,
                        "homeserver away for a minute"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Sync until `f` finds what it looks for in a sync answer.
    pub async fn until<T>(&mut self, what: &str, f: impl Fn(&Value) -> Option<T>) -> T {
        let end = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let since = self
                .since
                .as_ref()
                .map(|s| format!("&since={s}"))
                .unwrap_or_default();
            let v = self
                .call(
                    reqwest::Method::GET,
                    &format!("/_matrix/client/v3/sync?timeout=500{since}"),
                    None,
                )
                .await;
            if let Some(next) = v["next_batch"].as_str() {
                self.since = Some(next.to_string());
            }
            if let Some(found) = f(&v) {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "timed out waiting for {what}"
            );
        }
    }

    pub async fn send_json(&mut self, room: &str, typ: &str, content: Value) -> String {
        self.txn += 1;
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/{typ}/t{}",
            seg(room),
            self.txn
        );
        let v = self.call(reqwest::Method::PUT, &path, Some(content)).await;
        v["event_id"]
            .as_str()
            .unwrap_or_else(|| panic!("sent: {v}"))
            .to_string()
    }

    pub async fn redact(&mut self, room: &str, event: &str) {
        self.txn += 1;
        let path = format!(
            "/_matrix/client/v3/rooms/{}/redact/{}/t{}",
            seg(room),
            event.replace('$', "%24"),
            self.txn
        );
        self.call(reqwest::Method::PUT, &path, Some(json!({})))
            .await;
    }

    pub async fn upload(&self, name: &str, ctype: &str, bytes: Vec<u8>) -> String {
        let text = self
            .http
            .post(format!(
                "{}/_matrix/media/v3/upload?filename={name}",
                self.base
            ))
            .bearer_auth(&self.token)
            .header("Content-Type", ctype)
            .body(bytes)
            .send()
            .await
            .expect("upload")
            .text()
            .await
            .expect("upload body");
        let v: Value = serde_json::from_str(&text).expect("upload json");
        v["content_uri"].as_str().expect("content uri").to_string()
    }

    pub async fn send(&mut self, room: &str, text: &str) -> String {
        self.txn += 1;
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/t{}",
            seg(room),
            self.txn
        );
        let v = self
            .call(
                reqwest::Method::PUT,
                &path,
                Some(json!({"msgtype": "m.text", "body": text})),
            )
            .await;
        v["event_id"].as_str().expect("event id").to_string()
    }
}
