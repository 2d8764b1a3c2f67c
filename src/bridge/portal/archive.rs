//! XEP-0313: the room's archive, served from the store, and its first filling from the
//! network's history.

use super::Portal;
use crate::store::{MessageRow, Page};
use crate::xmpp::mam::{self, MamQuery};
use crate::xmpp::outbound::{self as out, Condition, Extras, RoomMessage};
use causeway_api::*;

impl Portal {
    pub(super) async fn archive(&mut self, from: String, id: String, q: MamQuery) {
        let answer = self.archive_page(&from, &id, q).await;
        self.send(answer).await;
    }

    async fn archive_page(&self, from: &str, id: &str, q: MamQuery) -> Vec<out::Outgoing> {
        let err = |c: Condition, text: &str| {
            let text = (!text.is_empty()).then(|| text.to_string());
            vec![self.error("iq", from, None, Some(id), c, text)]
        };
        if self.row.kind == RoomKind::Direct {
            return err(
                Condition::ServiceUnavailable,
                "1:1 chats are archived by your own server",
            );
        }
        // What is on its way into the store belongs in the answer.
        if let Err(e) = self.net.link.flush().await {
            tracing::warn!(network = %self.net.id, "archive may miss the newest messages: {e}");
        }
        let store = &self.shared.store;
        let mut page = Page {
            start: q.start,
            end: q.end,
            ids: q.ids.clone(),
            max: q.max,
            ..Page::default()
        };
        for (rsm_id, before) in [
            (q.after.as_ref(), false),
            (q.before.as_ref().and_then(|b| b.as_ref()), true),
        ] {
            let Some(rsm_id) = rsm_id else { continue };
            let seq = match store.archive_seq(self.row.id, rsm_id).await {
                Ok(Some(seq)) => seq,
                Ok(None) => {
                    return err(
                        Condition::ItemNotFound,
                        &format!("no message {rsm_id} in this archive"),
                    )
                }
                Err(e) => {
                    tracing::error!(network = %self.net.id, "archive not read: {e}");
                    return err(Condition::InternalServerError, "");
                }
            };
            if before {
                page.before = Some(seq);
            } else {
                page.after = Some(seq);
            }
        }
        page.from_end = q.before.is_some();
        let (found, count) = match (
            store.archive_page(self.row.id, &page).await,
            store.archive_count(self.row.id, q.start, q.end).await,
        ) {
            (Ok(f), Ok(c)) => (f, c),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(network = %self.net.id, "archive not read: {e}");
                return err(Condition::InternalServerError, "");
            }
        };
        let (rows, complete) = found;
        let mut items = Vec::with_capacity(rows.len() + 1);
        for a in &rows {
            let m = &a.row;
            let message = self.stored_message(m, from, None, a.retracted_at).await;
            items.push(mam::result(
                &self.room_jid,
                from,
                q.queryid.as_deref(),
                &m.stanza_id,
                m.sent_at,
                message,
            ));
        }
        let first = rows.first().map(|a| a.row.stanza_id.as_str());
        let last = rows.last().map(|a| a.row.stanza_id.as_str());
        items.push(mam::fin(
            &self.room_jid,
            from,
            id,
            complete,
            first,
            last,
            count,
        ));
        items
    }

    /// A stored message as the room shows it to `to`: history on join (with a delay) and
    /// archive results (with the retraction tombstone, if any).
    pub(super) async fn stored_message(
        &self,
        m: &MessageRow,
        to: &str,
        delay: Option<i64>,
        retracted_at: Option<i64>,
    ) -> out::Outgoing {
        let (nick, who) = Self::author_of(m);
        out::room_message(&RoomMessage {
            room: self.room_jid.clone(),
            nick,
            to: to.to_string(),
            id: m.xmpp_id.clone().unwrap_or_else(|| m.stanza_id.clone()),
            stanza_id: m.stanza_id.clone(),
            origin_id: m.origin_id.clone(),
            body: m.body.clone().unwrap_or_default(),
            occupant_id: self.oid(&who),
            delay,
            extras: Extras {
                retracted_at,
                ..self.stored_extras(m).await
            },
        })
    }

    /// A portal without a cursor (used for the first time, or no message ever seen): its
    /// archive is filled with the room's latest messages, told to no one when nobody is
    /// joined (joiners get them as history), else delivered like live ones.
    pub(super) async fn backfill(&mut self, first: Option<&RemoteMessageId>) {
        let limit = self.shared.config.backfill;
        if limit == 0 {
            return;
        }
        let mut events = match self.net.relay.history(&self.row.key, None, limit).await {
            Ok(e) => e,
            Err(e) => {
                return tracing::warn!(network = %self.net.id, room = %self.row.key.room, "no backfill: {e}")
            }
        };
        if let Some(first) = first {
            events.truncate(before_first(&events, first));
        }
        if self.row.kind == RoomKind::Direct || !self.occ.xmpp.is_empty() {
            for ev in events {
                self.on_remote(ev).await;
            }
            return;
        }
        let mut rows = Vec::with_capacity(events.len());
        for ev in &events {
            if let RemoteEventKind::Message {
                id,
                content,
                reply_to,
                ..
            } = &ev.kind
            {
                let nick = self.nick_of(&ev.sender).await;
                rows.push(self.remote_row(ev, id, content, reply_to.as_ref(), &nick));
            }
        }
        if rows.is_empty() {
            return;
        }
        let n = rows.len();
        match self.net.link.send_recorded(rows, Vec::new(), None).await {
            Ok(()) => {
                tracing::info!(network = %self.net.id, room = %self.row.key.room, messages = n, "archive backfilled")
            }
            Err(e) => tracing::warn!(network = %self.net.id, "backfill not stored: {e}"),
        }
    }
}

/// How many of a room's latest messages (oldest first) came before `first`, the message a
/// new portal was started for, which waits in its queue with whatever followed it. History
/// is in order and `first` was in it before it was fetched: when `first` is not among
/// them, they all followed it (a burst longer than the page), and none is backfilled,
/// or the archive would hold them ahead of older messages still queued.
fn before_first(events: &[RemoteEvent], first: &RemoteMessageId) -> usize {
    events
        .iter()
        .position(|e| matches!(&e.kind, RemoteEventKind::Message { id, .. } if id == first))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str) -> RemoteEvent {
        RemoteEvent {
            room: RoomKey::shared("r"),
            sender: RemoteUserId::new("u"),
            at: 0,
            kind: RemoteEventKind::Message {
                id: RemoteMessageId::new(id),
                content: Content::text(id),
                reply_to: None,
                txn: None,
            },
        }
    }

    #[test]
    fn a_backfill_stops_before_the_message_that_started_the_portal() {
        // (history, oldest first; the first queued message; how many are backfilled)
        let cases: [(&[&str], &str, usize); 5] = [
            (&["a", "b", "c"], "c", 2),
            (&["a", "b", "c"], "a", 0),
            (&["a", "b", "c"], "b", 1),
            // a burst longer than the page: everything fetched follows the first message
            (&["x", "y", "z"], "a", 0),
            (&[], "a", 0),
        ];
        for (history, first, want) in cases {
            let events: Vec<RemoteEvent> = history.iter().map(|id| message(id)).collect();
            let got = before_first(&events, &RemoteMessageId::new(first));
            assert_eq!(got, want, "{history:?} first {first}");
        }
    }
}
