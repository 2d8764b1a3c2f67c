//! Gaps after a homeserver crash. Synapse may lose events it had accepted but not yet queued
//! for the appservice when it is killed, and reuses transaction ids after a restart. So the
//! adapter remembers the last event it handed on per room, watches the homeserver, and after
//! it was away (or reused a transaction id) reads each room's history from that event on,
//! before the next transaction is applied: what was missed arrives first, in order; what
//! arrives twice the core drops.

use crate::Shared;
use std::sync::Arc;
use std::time::Duration;

/// How often the homeserver is looked at.
const POLL: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Health {
    /// The homeserver did not answer the last look.
    pub down: bool,
    /// Rooms must be read again before the next transaction.
    pub resync: bool,
}

impl Shared {
    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember the last event handed on in a room.
    pub fn seen(&self, room: &str, event: &str) {
        if !event.is_empty() {
            let mut s = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
            s.insert(room.to_string(), event.to_string());
        }
    }

    /// The homeserver was away or reused a transaction id: read the rooms again first.
    pub fn mark_gap(&self) {
        self.health().resync = true;
    }

    /// A transaction came in: if the homeserver was away, fill the gaps before applying it.
    pub async fn resync_if_needed(&self) {
        {
            let mut h = self.health();
            if h.down {
                h.down = false;
                h.resync = true;
            }
        }
        let _one = self.resync_lock.lock().await;
        if !std::mem::take(&mut self.health().resync) {
            return;
        }
        let sink = self.sink.read().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(sink) = sink else {
            return;
        };
        let rooms: Vec<(String, String)> = self
            .last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(r, e)| (r.clone(), e.clone()))
            .collect();
        let mut filled = 0;
        for (room, last) in rooms {
            match self.history(&room, Some(&last), 1000).await {
                Ok(events) => {
                    for ev in events {
                        if let causeway_api::RemoteEventKind::Message { id, .. } = &ev.kind {
                            self.seen(&room, id.as_str());
                        }
                        filled += 1;
                        if sink.send(ev).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(room = %room, "room not read again after the homeserver restarted: {e}");
                    self.mark_gap();
                }
            }
        }
        tracing::info!(
            events = filled,
            "rooms read again after the homeserver was away"
        );
    }
}

/// Look at the homeserver every second; note when it is away.
pub async fn watch(shared: Arc<Shared>) {
    let url = format!(
        "{}/_matrix/client/versions",
        shared.cfg.homeserver_url.trim_end_matches('/')
    );
    loop {
        tokio::time::sleep(POLL).await;
        let up = shared
            .http
            .get(&url)
            .timeout(POLL)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let back = {
            let mut h = shared.health();
            let back = h.down && up;
            if !up && !h.down {
                tracing::warn!("the homeserver does not answer");
                h.down = true;
                h.resync = true;
            }
            back
        };
        if back {
            tracing::info!("the homeserver is back");
            shared.resync_if_needed().await;
        }
    }
}
