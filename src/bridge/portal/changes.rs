//! What XMPP users do to messages already sent (corrections, retractions, reactions,
//! moderation) and their chat states and markers, on their way to the network.

use super::outgoing::Author;
use super::Portal;
use crate::bridge::reactions;
use crate::store::MessageRow;
use crate::xmpp::outbound::{self as out, Condition, Extras};
use crate::xmpp::payload::{self, ChatState, ReactionSet};
use causeway_api::*;

impl Portal {
    /// A stored message by the id a client uses for it: the stanza-id (retractions, reactions,
    /// replies, markers in a room), or the sender's own id (corrections, 1:1 chats). Messages
    /// still on their way into the store are waited for.
    pub(super) async fn find_message(&self, id: &str) -> Option<MessageRow> {
        if let Some(m) = self.recent.by_client_id(id) {
            return Some(m.clone());
        }
        let portal = self.row.id;
        let store = &self.shared.store;
        self.look_up(|| async move {
            match store.message_by_stanza_id(portal, id).await {
                Ok(None) => store.message_by_xmpp_id(portal, id).await,
                found => found,
            }
        })
        .await
    }

    /// A store look-up, tried again once what is queued for the store is written (the
    /// message may be in the recorder's queue still).
    pub(super) async fn look_up<F, Fut>(&self, find: F) -> Option<MessageRow>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = crate::store::Result<Option<MessageRow>>>,
    {
        for attempt in 0..2 {
            if attempt == 1 {
                if let Err(e) = self.net.link.flush().await {
                    tracing::warn!(network = %self.net.id, "cannot wait for the store: {e}");
                }
            }
            match find().await {
                Ok(Some(m)) => return Some(m),
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(network = %self.net.id, "message look-up failed: {e}");
                    return None;
                }
            }
        }
        None
    }

    /// A message's text changed: in memory and in the store.
    pub(super) async fn keep_correction(&mut self, stanza_id: &str, body: &str) {
        self.recent.set_body(stanza_id, Some(body));
        let stored = self
            .shared
            .store
            .set_body(self.row.id, stanza_id, body)
            .await;
        if let Err(e) = stored {
            tracing::warn!(network = %self.net.id, "correction not stored: {e}");
        }
    }

    /// A message was retracted: its text forgotten in memory, a tombstone in the store.
    pub(super) async fn keep_retraction(&mut self, stanza_id: &str, at: i64) {
        self.recent.set_body(stanza_id, None);
        let stored = self
            .shared
            .store
            .set_retracted(self.row.id, stanza_id, at)
            .await;
        if let Err(e) = stored {
            tracing::warn!(network = %self.net.id, "retraction not stored: {e}");
        }
    }

    fn action(&self, a: &Author, kind: ActionKind) -> Action {
        Action {
            room: self.row.key.clone(),
            persona: Some(self.persona(a)),
            kind,
        }
    }

    /// The target of a correction or retraction, if `a` wrote it; an error to `a` otherwise.
    async fn own_message(
        &self,
        a: &Author,
        id: &str,
        allowed: bool,
        what: &str,
    ) -> Option<MessageRow> {
        if !allowed {
            self.reject(
                a,
                Condition::FeatureNotImplemented,
                format!("{} does not support {what}", self.net.id),
            )
            .await;
            return None;
        }
        match self.find_message(id).await {
            Some(m) if m.from_xmpp && m.sender == a.bare => Some(m),
            Some(_) => {
                self.reject(
                    a,
                    Condition::Forbidden,
                    format!("only the author can do {what}"),
                )
                .await;
                None
            }
            None => {
                self.reject(a, Condition::ItemNotFound, format!("no message {id} here"))
                    .await;
                None
            }
        }
    }

    pub(super) async fn xmpp_edit(&mut self, a: &Author, target: &str, body: String) {
        let caps = self.net.network.capabilities().edits;
        let Some(m) = self.own_message(a, target, caps, "corrections").await else {
            return;
        };
        let txn = self.new_txn();
        let kind = ActionKind::Edit {
            target: m.remote_id.clone(),
            content: payload::content_of(&body, false, None),
            txn,
        };
        if let Err(e) = self.net.relay.apply(self.action(a, kind)).await {
            return self.refused(a, &e).await;
        }
        self.keep_correction(&m.stanza_id, &body).await;
        let extras = Extras {
            replace: Some(target.to_string()),
            ..Extras::default()
        };
        let sid = fresh_id("edit");
        let items = self.reflect(a, &body, &sid, extras, true);
        self.send(items).await;
    }

    pub(super) async fn xmpp_retract(&mut self, a: &Author, target: &str) {
        let caps = self.net.network.capabilities().retractions;
        let Some(m) = self.own_message(a, target, caps, "retractions").await else {
            return;
        };
        if let Err(e) = self.retract_parts(&m, Some(self.persona(a))).await {
            return self.refused(a, &e).await;
        }
        let extras = Extras {
            retract: Some(target.to_string()),
            ..Extras::default()
        };
        let items = self.reflect(a, "", &fresh_id("retract"), extras, true);
        self.send(items).await;
    }

    /// Delete every part of a message on the network, then mark it retracted in the store.
    async fn retract_parts(
        &mut self,
        m: &MessageRow,
        persona: Option<Persona>,
    ) -> Result<(), NetworkError> {
        let parts = match self
            .shared
            .store
            .message_parts(self.row.id, &m.stanza_id)
            .await
        {
            Ok(p) if !p.is_empty() => p,
            Ok(_) => vec![m.remote_id.clone()],
            Err(e) => return Err(NetworkError::Other(format!("store: {e}"))),
        };
        for target in parts {
            let action = Action {
                room: self.row.key.clone(),
                persona: persona.clone(),
                kind: ActionKind::Retract { target },
            };
            self.net.relay.apply(action).await?;
        }
        self.keep_retraction(&m.stanza_id, crate::store::now_ms())
            .await;
        Ok(())
    }

    pub(super) async fn xmpp_reactions(&mut self, a: &Author, set: ReactionSet) {
        let caps = self.net.network.capabilities().clone();
        if !caps.reactions {
            return self
                .reject(
                    a,
                    Condition::FeatureNotImplemented,
                    format!("{} does not support reactions", self.net.id),
                )
                .await;
        }
        if let Some(max) = caps.max_reactions_per_user {
            if set.emojis.len() > max {
                return self
                    .reject(
                        a,
                        Condition::NotAcceptable,
                        format!("at most {max} reactions per message"),
                    )
                    .await;
            }
        }
        let Some(m) = self.find_message(&set.id).await else {
            return self
                .reject(
                    a,
                    Condition::ItemNotFound,
                    format!("no message {} here", set.id),
                )
                .await;
        };
        let who = format!("xmpp:{}", a.bare);
        let store = &self.shared.store;
        let old = match store
            .reactions(self.row.id, m.remote_id.as_str(), &who)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(network = %self.net.id, "reactions not read: {e}");
                return self
                    .reject(
                        a,
                        Condition::InternalServerError,
                        "reactions not read".into(),
                    )
                    .await;
            }
        };
        let (adds, removes) = reactions::diff(&old, &set.emojis);
        let mut now = old.clone();
        let mut failed = None;
        let changes = removes
            .iter()
            .map(|e| (e, false))
            .chain(adds.iter().map(|e| (e, true)));
        for (emoji, added) in changes {
            let target = m.remote_id.clone();
            let emoji = emoji.clone();
            let kind = if added {
                ActionKind::ReactionAdd {
                    target,
                    emoji: emoji.clone(),
                }
            } else {
                ActionKind::ReactionRemove {
                    target,
                    emoji: emoji.clone(),
                }
            };
            match self.net.relay.apply(self.action(a, kind)).await {
                Ok(()) => now = reactions::apply(&now, &emoji, added),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Err(e) = store
            .set_reactions(self.row.id, m.remote_id.as_str(), &who, &now)
            .await
        {
            tracing::warn!(network = %self.net.id, "reactions not stored: {e}");
        }
        if let Some(e) = &failed {
            self.refused(a, e).await;
        }
        if now != old {
            let extras = Extras {
                reactions: Some((set.id.clone(), now)),
                ..Extras::default()
            };
            let items = self.reflect(a, "", &fresh_id("react"), extras, true);
            self.send(items).await;
        }
    }

    pub(super) async fn xmpp_chat_state(&mut self, a: &Author, state: ChatState) {
        if !self.net.network.capabilities().typing {
            return;
        }
        let active = state == ChatState::Composing;
        if let Err(e) = self
            .net
            .relay
            .apply(self.action(a, ActionKind::Typing { active }))
            .await
        {
            tracing::debug!(network = %self.net.id, "typing not shown: {e}");
        }
        let extras = Extras {
            chat_state: Some(state),
            ..Extras::default()
        };
        let items = self.reflect(a, "", "", extras, false);
        self.send(items).await;
    }

    pub(super) async fn xmpp_displayed(&mut self, a: &Author, id: &str) {
        let Some(m) = self.find_message(id).await else {
            return;
        };
        let kind = ActionKind::ReadMarker { up_to: m.remote_id };
        if let Err(e) = self.net.relay.apply(self.action(a, kind)).await {
            tracing::debug!(network = %self.net.id, "read marker not passed on: {e}");
        }
    }

    /// XEP-0425: a configured admin retracts someone's message for the room.
    pub(super) async fn moderate(
        &mut self,
        from: String,
        id: String,
        target: String,
        reason: Option<String>,
    ) {
        let answer = if !self.shared.is_admin(&from) {
            self.error(
                "iq",
                &from,
                None,
                Some(&id),
                Condition::Forbidden,
                Some("only gateway admins moderate".into()),
            )
        } else if let Some(m) = self.find_message(&target).await {
            match self.retract_parts(&m, None).await {
                Ok(()) => {
                    let items = self.moderation(&target, reason.as_deref());
                    self.send(items).await;
                    out::iq_result(&self.room_jid, &from, &id, None)
                }
                Err(e) => self.error(
                    "iq",
                    &from,
                    None,
                    Some(&id),
                    Condition::from_network(&e),
                    Some(e.to_string()),
                ),
            }
        } else {
            self.error("iq", &from, None, Some(&id), Condition::ItemNotFound, None)
        };
        self.send(vec![answer]).await;
    }
}

impl Portal {
    /// XEP-0425: the room retracts a message, to every session in it.
    pub(super) fn moderation(&self, target: &str, reason: Option<&str>) -> Vec<out::Outgoing> {
        self.occ
            .sessions()
            .iter()
            .map(|to| out::moderation(&self.room_jid, to, target, reason))
            .collect()
    }

    /// A TxnId for something sent to the network, remembered to recognise its echo.
    pub(super) fn new_txn(&mut self) -> TxnId {
        let txn = super::super::own_txn(&self.shared.occupant_key);
        self.remember_txn(txn.clone());
        txn
    }
}

/// A new id for a stanza the room makes up (reflections of changes).
pub(super) fn fresh_id(kind: &str) -> String {
    format!("{kind}-{:016x}", rand::random::<u64>())
}
