//! The appservice API the homeserver calls on Causeway's HTTP listener: transactions
//! (hs_token checked; each transaction id applied once, remembered in the store), user and
//! alias queries, ping.

use crate::{ids, Shared, RELAY_LOGIN};
use async_trait::async_trait;
use causeway_api::*;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub struct Endpoint {
    pub(crate) shared: Arc<Shared>,
}

fn error(status: u16, code: &str, text: &str) -> HttpResponse {
    HttpResponse::json(status, &json!({"errcode": code, "error": text}))
}

/// Compare without stopping at the first difference.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Endpoint {
    /// The hs_token from `Authorization: Bearer` or the legacy `access_token` parameter.
    fn token(req: &HttpRequest) -> Option<&str> {
        req.header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .or_else(|| {
                req.query
                    .split('&')
                    .find_map(|p| p.strip_prefix("access_token="))
            })
    }

    async fn transaction(&self, txn: &str, body: &[u8]) -> HttpResponse {
        let store = match self.shared.store() {
            Ok(s) => s,
            Err(e) => return error(500, "M_UNKNOWN", &e.to_string()),
        };
        let key = format!("txn:{txn}");
        match store.get(&key).await {
            Ok(Some(_)) => return HttpResponse::json(200, &json!({})), // already applied
            Ok(None) => {}
            Err(e) => return error(500, "M_UNKNOWN", &e.to_string()),
        }
        let sink = self
            .shared
            .sink
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(sink) = sink else {
            // Not connected yet: the homeserver sends it again later.
            return error(503, "M_UNKNOWN", "the bridge is starting");
        };
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return error(400, "M_NOT_JSON", "the transaction is not JSON");
        };
        for event in v["events"].as_array().into_iter().flatten() {
            match self.event(event).await {
                Ok(Some(ev)) => {
                    if sink.send(ev).await.is_err() {
                        return error(503, "M_UNKNOWN", "the bridge is stopping");
                    }
                }
                Ok(None) => {}
                Err(e) => return error(500, "M_UNKNOWN", &e.to_string()),
            }
        }
        // Marked applied only after every event was handed on: a crash in between means the
        // homeserver sends it again, and the core drops what it already has.
        if let Err(e) = store.put(&key, "applied").await {
            return error(500, "M_UNKNOWN", &e.to_string());
        }
        HttpResponse::json(200, &json!({}))
    }

    /// A timeline event as a remote event, if it is about a room Causeway bridges.
    async fn event(&self, e: &Value) -> Result<Option<RemoteEvent>, NetworkError> {
        let sender = e["sender"].as_str().unwrap_or("");
        if self.is_ours(sender) {
            return Ok(None); // our puppets' own events
        }
        let (Some(room), Some(user)) = (e["room_id"].as_str(), ids::remote_user(sender)) else {
            return Ok(None);
        };
        let store = self.shared.store()?;
        if store.get(&format!("room:{room}")).await?.is_none() {
            return Ok(None);
        }
        let content = &e["content"];
        let id = e["event_id"].as_str().unwrap_or("");
        let kind = match e["type"].as_str() {
            Some("m.room.message") => {
                let relates = &content["m.relates_to"];
                if relates["rel_type"] == "m.replace" {
                    let new = &content["m.new_content"];
                    RemoteEventKind::Edit {
                        target: RemoteMessageId::new(relates["event_id"].as_str().unwrap_or("")),
                        content: text_content(new),
                    }
                } else {
                    RemoteEventKind::Message {
                        id: RemoteMessageId::new(id),
                        content: text_content(content),
                        reply_to: None,
                        txn: None,
                    }
                }
            }
            Some("m.room.redaction") => {
                let target = e["redacts"]
                    .as_str()
                    .or(content["redacts"].as_str())
                    .unwrap_or("");
                RemoteEventKind::Retract {
                    target: RemoteMessageId::new(target),
                    by_author: true,
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(RemoteEvent {
            room: RoomKey {
                room: RemoteRoomId::new(room),
                receiver: Some(LoginId::new(RELAY_LOGIN)),
            },
            sender: user,
            at: e["origin_server_ts"].as_i64().unwrap_or_else(now_ms),
            kind,
        }))
    }

    /// The appservice's own users: its bot and the puppets of XMPP users.
    fn is_ours(&self, user: &str) -> bool {
        let server = format!(":{}", self.shared.cfg.server_name);
        user.ends_with(&server)
            && (user.starts_with(&format!("@{}", self.shared.cfg.user_prefix))
                || user == self.shared.bot_user())
    }
}

/// The text of an `m.room.message` content.
fn text_content(c: &Value) -> Content {
    Content {
        text: c["body"].as_str().unwrap_or("").to_string(),
        kind: match c["msgtype"].as_str() {
            Some("m.emote") => TextKind::Emote,
            Some("m.notice") => TextKind::Notice,
            _ => TextKind::Normal,
        },
        ..Content::default()
    }
}

#[async_trait]
impl HttpEndpoint for Endpoint {
    fn prefixes(&self) -> Vec<String> {
        vec!["/_matrix/app/".into()]
    }

    async fn handle(&self, req: HttpRequest) -> HttpResponse {
        match Self::token(&req) {
            None => return error(401, "M_UNAUTHORIZED", "no token"),
            Some(t) if !same(t, self.shared.reg.hs_token.expose()) => {
                tracing::warn!(path = %req.path, "appservice request with a wrong hs_token refused");
                return error(403, "M_FORBIDDEN", "wrong token");
            }
            Some(_) => {}
        }
        let path = req.path.trim_start_matches("/_matrix/app/v1/");
        match (req.method.as_str(), path.split_once('/')) {
            ("PUT", Some(("transactions", txn))) => self.transaction(txn, &req.body).await,
            ("GET", Some(("users", user))) => {
                let user = user
                    .replace("%40", "@")
                    .replace("%3A", ":")
                    .replace("%3a", ":");
                if self.is_ours(&user) {
                    HttpResponse::json(200, &json!({}))
                } else {
                    error(404, "M_NOT_FOUND", "not one of ours")
                }
            }
            ("GET", Some(("rooms", _))) => error(404, "M_NOT_FOUND", "no such alias"),
            ("POST", None) if path == "ping" => HttpResponse::json(200, &json!({})),
            _ => error(404, "M_UNRECOGNIZED", "unknown endpoint"),
        }
    }
}
