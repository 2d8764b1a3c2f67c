//! What XMPP users say in this room (or to a puppet), on its way to the network.

use super::Portal;
use crate::store::MessageRow;
use crate::xmpp;
use crate::xmpp::outbound::{self as out, Condition, Extras, ReplyRef, RoomMessage};
use crate::xmpp::payload::{self, Payload};
use causeway_api::*;

/// What is known of a message sent before with the same origin-id.
enum Before {
    /// Nothing: a new message, to send with this transaction.
    New(TxnId),
    /// Stored: its stanza-id.
    Stored(String),
    /// About to be sent with this transaction when Causeway stopped.
    Unsure(TxnId),
}

/// Who sent an XMPP stanza to the portal, and how to answer them.
#[derive(Clone, Debug)]
pub(super) struct Author {
    pub session: String,
    pub bare: String,
    pub nick: String,
    pub id: Option<String>,
    pub origin_id: Option<String>,
    /// Set for 1:1 messages to a puppet: errors come from it and nothing is reflected.
    pub puppet: Option<String>,
}

impl Portal {
    /// How the relay login shows `a` on the network. Users joined before a restart have
    /// their avatar read now (it shows from their next message on).
    pub(super) fn persona(&self, a: &Author) -> Persona {
        self.shared.personas.refresh(
            &a.bare,
            self.net.domain.clone(),
            self.net.link.clone(),
            self.shared.media.clone(),
        );
        self.shared.personas.persona(&a.bare, &a.nick)
    }

    pub(super) async fn groupchat(
        &mut self,
        from: String,
        id: Option<String>,
        origin_id: Option<String>,
        payload: Payload,
    ) {
        let Some(me) = self.occ.by_session(&from).cloned() else {
            if payload.body.is_none() {
                return; // a chat state or marker from outside: nothing to answer
            }
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
        let author = Author {
            session: from,
            bare: me.bare,
            nick: me.nick,
            id,
            origin_id,
            puppet: None,
        };
        self.handle_payload(author, payload).await;
    }

    pub(super) async fn direct(
        &mut self,
        from: String,
        id: Option<String>,
        payload: Payload,
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
        let author = Author {
            session: from,
            nick: bare.clone(),
            bare,
            id,
            origin_id: None,
            puppet: Some(puppet),
        };
        self.handle_payload(author, payload).await;
    }

    /// One stanza's worth of XMPP intent, in the order a client means it.
    async fn handle_payload(&mut self, a: Author, p: Payload) {
        if let Some(target) = p.retract {
            return self.xmpp_retract(&a, &target).await;
        }
        if let Some(set) = p.reactions {
            return self.xmpp_reactions(&a, set).await;
        }
        match (p.replace, p.body) {
            (Some(target), Some(body)) => return self.xmpp_edit(&a, &target, body).await,
            (None, Some(body)) => {
                let content = payload::content_of(&body, p.unstyled, p.oob_url.as_deref());
                self.xmpp_message(&a, body, content, p.reply_to, p.oob_url)
                    .await
            }
            _ => {}
        }
        if let Some(state) = p.chat_state {
            self.xmpp_chat_state(&a, state).await;
        }
        if let Some(id) = p.displayed {
            self.xmpp_displayed(&a, &id).await;
        }
    }

    /// A stanza from `a` to every session in the room (nothing for 1:1 chats).
    pub(super) fn reflect(
        &self,
        a: &Author,
        body: &str,
        stanza_id: &str,
        extras: Extras,
        to_self: bool,
    ) -> Vec<out::Outgoing> {
        if a.puppet.is_some() {
            return Vec::new();
        }
        let oid = self.oid(&format!("xmpp:{}", a.bare));
        let id = a.id.clone().unwrap_or_else(|| stanza_id.to_string());
        self.occ
            .sessions()
            .into_iter()
            .filter(|s| to_self || xmpp::bare(s) != a.bare)
            .map(|to| {
                out::room_message(&RoomMessage {
                    room: self.room_jid.clone(),
                    nick: a.nick.clone(),
                    to,
                    id: id.clone(),
                    stanza_id: stanza_id.to_string(),
                    origin_id: a.origin_id.clone(),
                    body: body.to_string(),
                    occupant_id: oid.clone(),
                    delay: None,
                    extras: extras.clone(),
                })
            })
            .collect()
    }

    async fn xmpp_message(
        &mut self,
        a: &Author,
        body: String,
        content: Content,
        reply_to: Option<String>,
        oob: Option<String>,
    ) {
        let (txn, maybe_sent) = match self.sent_before(a).await {
            Before::New(txn) => (txn, false),
            Before::Unsure(txn) => {
                self.remember_txn(txn.clone());
                (txn, true)
            }
            Before::Stored(stanza_id) => return self.answer_again(a, body, stanza_id).await,
        };
        let target = match &reply_to {
            Some(id) => self.find_message(id).await,
            None => None,
        };
        let (sent, rows) = match self
            .send_remote(
                a,
                content,
                &body,
                target.as_ref().map(|t| t.remote_id.clone()),
                (txn, maybe_sent),
            )
            .await
        {
            Ok(s) if !s.0.ids.is_empty() => s,
            Ok(_) => return,
            Err(e) => return self.refused(a, &e).await,
        };
        self.reflect_sent(a, body, (sent, rows), (target, reply_to), oob)
            .await;
    }

    /// A message its author sent again, stored before: answered as the first time.
    async fn answer_again(&mut self, a: &Author, body: String, stanza_id: String) {
        // sent again by a client after a reconnect: answered as before, not posted again
        let again = out::room_message(&RoomMessage {
            room: self.room_jid.clone(),
            nick: a.nick.clone(),
            to: a.session.clone(),
            id: a.id.clone().unwrap_or_else(|| stanza_id.clone()),
            stanza_id,
            origin_id: a.origin_id.clone(),
            body,
            occupant_id: self.oid(&format!("xmpp:{}", a.bare)),
            delay: None,
            extras: Extras::default(),
        });
        self.send(vec![again]).await;
    }

    /// Store what the network made of an XMPP user's message and reflect it.
    async fn reflect_sent(
        &mut self,
        a: &Author,
        body: String,
        (sent, rows): (Sent, Vec<MessageRow>),
        (target, reply_to): (Option<MessageRow>, Option<String>),
        oob: Option<String>,
    ) {
        let stanza_id = sent.ids[0].to_string();
        let extras = Extras {
            reply: target.zip(reply_to).map(|(t, id)| ReplyRef {
                to: format!("{}/{}", self.room_jid, t.sender_nick),
                id,
                nick: t.sender_nick,
                quoted: t.body.unwrap_or_default(),
            }),
            oob: oob.filter(|u| *u == body),
            ..Extras::default()
        };
        let mut items = self.reflect(a, &body, &stanza_id, extras, true);
        items.extend(self.warn_sender(a, &sent.warnings));
        self.record(rows, items).await;
        self.shared.metrics.inc(
            "causeway_messages_bridged_total",
            &[
                ("network", self.net.id.as_str()),
                ("direction", "to_remote"),
            ],
        );
    }

    /// What is known of a message this author sent before with the same origin-id: its
    /// stored row's stanza-id, or only that it was about to be sent with a transaction
    /// (Causeway stopped before it learned whether the network took it).
    ///
    /// A new message's intent is noted here, before the send, with the transaction it gets
    /// (a crash before its row is stored must not turn the client's re-send into a second
    /// post); the store is read only when the origin-id was noted before.
    async fn sent_before(&mut self, a: &Author) -> Before {
        let origin = match (&a.origin_id, &a.puppet) {
            (Some(o), None) => o.as_str(),
            // (1:1 chats: the user's own server deals with its clients)
            _ => return Before::New(self.new_txn()),
        };
        if let Some(r) = self.recent.by_origin(&a.bare, origin) {
            return Before::Stored(r.stanza_id.clone());
        }
        let txn = self.new_txn();
        let store = &self.shared.store;
        match store
            .add_intent(self.row.id, &a.bare, origin, txn.as_str())
            .await
        {
            Ok(true) => return Before::New(txn),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(network = %self.net.id, "message sent without its intent noted: {e}");
                return Before::New(txn);
            }
        }
        let found = match store.message_by_origin(self.row.id, &a.bare, origin).await {
            Ok(Some(row)) => return Before::Stored(row.stanza_id),
            Ok(None) => store.intent(self.row.id, &a.bare, origin).await,
            Err(e) => Err(e),
        };
        match found {
            Ok(Some(first)) => {
                tracing::warn!(network = %self.net.id, room = %self.row.key.room, "a message sent as Causeway stopped was sent again by its client: sent with its first transaction");
                Before::Unsure(TxnId::new(first))
            }
            Ok(None) => Before::New(txn),
            Err(e) => {
                tracing::warn!(network = %self.net.id, "origin-id not looked up: {e}");
                Before::New(txn)
            }
        }
    }

    /// Send an XMPP user's text to the network (as a Persona of the relay login); returns
    /// what it made of it and one row per remote part (every part maps to the first part's
    /// stanza-id), to be stored with `record`.
    pub(super) async fn send_remote(
        &mut self,
        a: &Author,
        content: Content,
        body: &str,
        reply_to: Option<RemoteMessageId>,
        (txn, maybe_sent): (TxnId, bool),
    ) -> Result<(Sent, Vec<MessageRow>), NetworkError> {
        let msg = OutgoingMessage {
            room: self.row.key.clone(),
            txn,
            content,
            reply_to: reply_to.clone(),
            persona: Some(self.persona(a)),
            maybe_sent,
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
                origin_id: a.origin_id.clone(),
                xmpp_id: a.id.clone(),
                sender: a.bare.clone(),
                sender_nick: a.nick.clone(),
                from_xmpp: true,
                body: (part == 0).then(|| body.to_string()),
                reply_to: reply_to.as_ref().map(|r| r.to_string()),
                sent_at: sent.at,
            })
            .collect();
        Ok((sent, rows))
    }

    /// Store the rows of a sent message with the stanzas about it (one transaction).
    async fn record(&mut self, rows: Vec<MessageRow>, items: Vec<out::Outgoing>) {
        self.recent.remember(&rows);
        if let Err(e) = self.net.link.send_recorded_own(rows, items).await {
            // The network has it; without the row, later edits of it will not resolve.
            tracing::error!(network = %self.net.id, room = %self.row.key.room, "sent message not stored: {e}");
        }
    }

    /// What the network sent differently from what was asked (a linked file not uploaded),
    /// told to the author's session, after the reflection.
    fn warn_sender(&self, a: &Author, warnings: &[String]) -> Vec<out::Outgoing> {
        warnings
            .iter()
            .map(|w| {
                tracing::warn!(network = %self.net.id, room = %self.row.key.room, "sent with a warning: {w}");
                let (from, kind) = match &a.puppet {
                    Some(p) => (p.as_str(), "chat"),
                    None => (self.room_jid.as_str(), "groupchat"),
                };
                let id = format!("warn-{:016x}", rand::random::<u64>());
                out::notice(from, &a.session, kind, &id, &format!("Your message went out, but {w}"))
            })
            .collect()
    }

    /// The network refused: the sender gets an error message (from the puppet in a 1:1
    /// chat, else the room).
    pub(super) async fn refused(&self, a: &Author, e: &NetworkError) {
        tracing::warn!(network = %self.net.id, room = %self.row.key.room, kind = e.kind(), "the network refused: {e}");
        self.shared
            .metrics
            .inc("causeway_errors_total", &[("kind", e.kind())]);
        self.reject(a, Condition::from_network(e), e.to_string())
            .await;
    }

    /// An error message to the author of a stanza.
    pub(super) async fn reject(&self, a: &Author, condition: Condition, text: String) {
        let err = self.error(
            "message",
            &a.session,
            a.puppet.as_deref(),
            a.id.as_deref(),
            condition,
            Some(text),
        );
        self.send(vec![err]).await;
    }
}
