//! What XMPP users say in this room (or to a puppet), on its way to the network.

use super::Portal;
use crate::store::MessageRow;
use crate::xmpp;
use crate::xmpp::outbound::{self as out, Condition, RoomMessage};
use causeway_api::*;

impl Portal {
    pub(super) async fn groupchat(
        &mut self,
        from: String,
        id: Option<String>,
        origin_id: Option<String>,
        body: String,
    ) {
        let Some(me) = self.occ.by_session(&from).cloned() else {
            let e = self.error(
                "message",
                &from,
                None,
                id.as_deref(),
                Condition::NotAcceptable,
                Some("join the room before sending to it".into()),
            );
            return self.send(vec![e]).await;
        };
        let (sent, rows) = match self
            .send_remote(&me.nick, &me.bare, &body, id.clone(), origin_id.clone())
            .await
        {
            Ok(s) if !s.0.ids.is_empty() => s,
            Ok(_) => return,
            Err(e) => return self.refused(&from, None, id.as_deref(), &e).await,
        };
        let stanza_id = sent.ids[0].to_string();
        let oid = self.oid(&format!("xmpp:{}", me.bare));
        let items = self
            .occ
            .sessions()
            .into_iter()
            .map(|to| {
                out::room_message(&RoomMessage {
                    room: self.room_jid.clone(),
                    nick: me.nick.clone(),
                    to,
                    id: id.clone().unwrap_or_else(|| stanza_id.clone()),
                    stanza_id: stanza_id.clone(),
                    origin_id: origin_id.clone(),
                    body: body.clone(),
                    occupant_id: oid.clone(),
                    delay: None,
                })
            })
            .collect();
        self.record(rows, items).await;
        self.shared.metrics.inc(
            "causeway_messages_bridged_total",
            &[
                ("network", self.net.id.as_str()),
                ("direction", "to_remote"),
            ],
        );
    }

    /// Send an XMPP user's text to the network (as a Persona of the relay login); returns
    /// what it made of it and one row per remote part (every part maps to the first part's
    /// stanza-id), to be stored with `record`.
    pub(super) async fn send_remote(
        &mut self,
        nick: &str,
        bare: &str,
        body: &str,
        xmpp_id: Option<String>,
        origin_id: Option<String>,
    ) -> Result<(Sent, Vec<MessageRow>), NetworkError> {
        let txn = TxnId::new(format!("cw{:016x}", rand::random::<u64>()));
        self.remember_txn(txn.clone());
        let msg = OutgoingMessage {
            room: self.row.key.clone(),
            txn,
            content: Content::text(body),
            reply_to: None,
            persona: Some(Persona {
                nick: nick.to_string(),
                avatar_url: None,
                xmpp_user: bare.to_string(),
            }),
        };
        let sent = self.net.relay.send_message(msg).await?;
        let Some(first) = sent.ids.first() else {
            return Ok((sent, Vec::new()));
        };
        let rows: Vec<MessageRow> = sent
            .ids
            .iter()
            .enumerate()
            .map(|(part, rid)| MessageRow {
                portal_id: self.row.id,
                remote_id: rid.clone(),
                part: part as i64,
                stanza_id: first.to_string(),
                origin_id: origin_id.clone(),
                xmpp_id: xmpp_id.clone(),
                sender: bare.to_string(),
                sender_nick: nick.to_string(),
                from_xmpp: true,
                body: (part == 0).then(|| body.to_string()),
                reply_to: None,
                sent_at: sent.at,
            })
            .collect();
        Ok((sent, rows))
    }

    /// Store the rows of a sent message with the stanzas about it (one transaction).
    async fn record(&self, rows: Vec<MessageRow>, items: Vec<out::Outgoing>) {
        if let Err(e) = self.net.link.send_recorded(rows, true, items, None).await {
            // The network has it; without the row, later edits of it will not resolve.
            tracing::error!(network = %self.net.id, room = %self.row.key.room, "sent message not stored: {e}");
        }
    }

    /// The network refused: the sender gets an error message (from `as_jid`, else the room).
    pub(super) async fn refused(
        &self,
        from: &str,
        as_jid: Option<&str>,
        id: Option<&str>,
        e: &NetworkError,
    ) {
        tracing::warn!(network = %self.net.id, room = %self.row.key.room, kind = e.kind(), "the network refused a message: {e}");
        self.shared
            .metrics
            .inc("causeway_errors_total", &[("kind", e.kind())]);
        let err = self.error(
            "message",
            from,
            as_jid,
            id,
            Condition::from_network(e),
            Some(e.to_string()),
        );
        self.send(vec![err]).await;
    }

    pub(super) async fn direct(
        &mut self,
        from: String,
        id: Option<String>,
        body: String,
        user: String,
    ) {
        let puppet = format!("{user}@{}", self.net.domain);
        let bare = xmpp::bare(&from).to_string();
        if self.row.xmpp_user.as_deref() != Some(bare.as_str()) {
            let e = self.error(
                "message",
                &from,
                Some(&puppet),
                id.as_deref(),
                Condition::Forbidden,
                None,
            );
            return self.send(vec![e]).await;
        }
        match self
            .send_remote(&bare, &bare, &body, id.clone(), None)
            .await
        {
            Ok((_, rows)) => {
                self.record(rows, Vec::new()).await;
                self.shared.metrics.inc(
                    "causeway_messages_bridged_total",
                    &[
                        ("network", self.net.id.as_str()),
                        ("direction", "to_remote"),
                    ],
                );
            }
            Err(e) => {
                // The error comes from the puppet the user wrote to.
                self.refused(&from, Some(&puppet), id.as_deref(), &e).await;
            }
        }
    }
}
