//! The appservice API the homeserver calls on Causeway's HTTP listener: transactions
//! (hs_token checked; each transaction id applied once, remembered in the store), user and
//! alias queries, ping.

use crate::client::{seg, unseg};
use crate::events::MEDIA_PATH;
use crate::Shared;
use async_trait::async_trait;
use causeway_api::*;
use serde_json::{json, Value};
use std::sync::Arc;

/// How long an applied transaction's id is remembered (homeservers send a transaction
/// again within hours; after a crash Synapse numbers them from 1 again).
const KEEP_TXN: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);
/// The longest a transaction waits for its events to be stored before it is answered 503.
const STORE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub struct Endpoint {
    pub(crate) shared: Arc<Shared>,
}

fn error(status: u16, code: &str, text: &str) -> HttpResponse {
    HttpResponse::json(status, &json!({"errcode": code, "error": text}))
}

fn hex_digest(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(body)
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
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
    /// A Matrix file, fetched with the appservice's token for whoever holds our signed link
    /// (Causeway's media copier, which cannot send the token).
    async fn media(&self, rest: &str) -> HttpResponse {
        let parts: Vec<&str> = rest.split('/').collect();
        let [server, id, sig] = parts.as_slice() else {
            return error(404, "M_NOT_FOUND", "no such file");
        };
        if !same(sig, &self.shared.media_sig(server, id)) {
            return error(404, "M_NOT_FOUND", "no such file");
        }
        let path = format!(
            "/_matrix/client/v1/media/download/{}/{}",
            seg(server),
            seg(id)
        );
        match self.shared.download(&path).await {
            Ok((content_type, body)) => HttpResponse {
                status: 200,
                content_type,
                body,
            },
            Err(e) => error(502, "M_UNKNOWN", &e.to_string()),
        }
    }

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
        // A transaction is known by its id and its content: a homeserver that crashed before
        // recording a transaction as sent may reuse its id for new events (Synapse does), and
        // those must not be dropped as a retry. Events applied twice are dropped by the core.
        let key = format!("txn:{txn}");
        let digest = hex_digest(body);
        match store.get(&key).await {
            Ok(Some(d)) if d == digest => return HttpResponse::json(200, &json!({})), // a retry
            Ok(Some(_)) => {
                // The homeserver restarted: events it lost may be missing before these.
                tracing::info!(txn, "transaction id reused with new events: applied");
                self.shared.mark_gap();
            }
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
        self.shared.resync_if_needed().await;
        // Ephemeral events come under their stable name or MSC2409's.
        let ephemeral = v["ephemeral"]
            .as_array()
            .or(v["de.sorunome.msc2409.ephemeral"].as_array());
        let timeline = v["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| (e, false));
        let all = timeline.chain(ephemeral.into_iter().flatten().map(|e| (e, true)));
        // Answered only once the core stored what the events mean (edits, redactions and
        // reactions included): a crash before that, and the homeserver sends them again.
        let mut applied = Vec::new();
        for (event, ephemeral) in all {
            tracing::debug!(
                txn,
                kind = event["type"].as_str().unwrap_or("?"),
                room = event["room_id"].as_str().unwrap_or("?"),
                "transaction event"
            );
            let converted = if !ephemeral {
                self.shared.timeline_event(event).await
            } else if event["type"] == "m.typing" {
                self.shared.typing_event(event).await
            } else if event["type"] == "m.receipt" {
                self.shared.receipt_event(event).await
            } else if event["type"] == "m.presence" {
                self.shared.presence_event(event).await
            } else {
                Ok(Vec::new())
            };
            match converted {
                Ok(events) => {
                    if let (Some(room), Some(id)) =
                        (event["room_id"].as_str(), event["event_id"].as_str())
                    {
                        if !events.is_empty() && !ephemeral {
                            self.shared.seen(room, id);
                        }
                    }
                    for ev in events {
                        match sink.send_applied(ev).await {
                            Ok(done) => applied.push(done),
                            Err(_) => return error(503, "M_UNKNOWN", "the bridge is stopping"),
                        }
                    }
                }
                // Not acknowledged: the homeserver sends the transaction again.
                Err(e) => {
                    tracing::warn!(
                        txn,
                        "transaction not applied (the homeserver will send it again): {e}"
                    );
                    return error(500, "M_UNKNOWN", &e.to_string());
                }
            }
        }
        // (bounded: a room slow to take its events must not hold the homeserver's one
        // transaction at a time for ever; it sends it again, and what was stored is dropped)
        let stored = tokio::time::timeout(STORE_WAIT, async {
            for done in applied {
                done.await.map_err(|_| ())?;
            }
            Ok::<(), ()>(())
        });
        if !matches!(stored.await, Ok(Ok(()))) {
            return error(503, "M_UNKNOWN", "not stored yet; send it again");
        }
        // Marked applied only after every event was stored: a crash in between means the
        // homeserver sends it again, and the core drops what it already has.
        // (a homeserver sends a transaction again within hours at most)
        if let Err(e) = store.put_for(&key, &digest, KEEP_TXN).await {
            return error(500, "M_UNKNOWN", &e.to_string());
        }
        HttpResponse::json(200, &json!({}))
    }
}

#[async_trait]
impl HttpEndpoint for Endpoint {
    fn prefixes(&self) -> Vec<String> {
        vec!["/_matrix/app/".into()]
    }

    /// The homeserver's token, checked before the body is read (the signed media path
    /// carries its own signature instead).
    fn admit(&self, head: &HttpRequest) -> Option<HttpResponse> {
        if head.path.starts_with(MEDIA_PATH) {
            return None;
        }
        match Self::token(head) {
            None => Some(error(401, "M_UNAUTHORIZED", "no token")),
            Some(t) if !same(t, self.shared.reg.hs_token.expose()) => {
                tracing::warn!(path = %head.path, "appservice request with a wrong hs_token refused");
                Some(error(403, "M_FORBIDDEN", "wrong token"))
            }
            Some(_) => None,
        }
    }

    async fn handle(&self, req: HttpRequest) -> HttpResponse {
        if let Some(rest) = req.path.strip_prefix(MEDIA_PATH) {
            return self.media(rest).await;
        }
        if let Some(refused) = self.admit(&req) {
            return refused;
        }
        let path = req.path.trim_start_matches("/_matrix/app/v1/");
        match (req.method.as_str(), path.split_once('/')) {
            ("PUT", Some(("transactions", txn))) => self.transaction(txn, &req.body).await,
            ("GET", Some(("users", user))) => {
                let user = unseg(user);
                if self.shared.is_ours(&user) {
                    // The homeserver asks before an invitation to a puppet: it must exist.
                    let local = user
                        .strip_prefix('@')
                        .and_then(|u| u.split(':').next())
                        .unwrap_or("");
                    if let Err(e) = self.shared.register(local).await {
                        return error(500, "M_UNKNOWN", &e.to_string());
                    }
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
