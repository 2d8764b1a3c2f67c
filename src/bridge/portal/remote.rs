//! What the network says in this room, on its way to XMPP.

use super::changes::fresh_id;
use super::Portal;
use crate::bridge::reactions;
use crate::store::MessageRow;
use crate::xmpp::outbound::{self as out, Extras, Outgoing, RoomMessage};
use crate::xmpp::payload::{self, ChatState};
use causeway_api::*;

impl Portal {
    pub(super) async fn sender_nick(&mut self, user: &RemoteUserId) -> String {
        if let Some(m) = self.occ.remote.get(user) {
            return m.nick.clone();
        }
        let info = match self.net.relay.user_info(user).await {
            Ok(i) => i,
            Err(_) => UserInfo {
                id: user.clone(),
                display_name: user.to_string(),
                avatar_url: None,
                is_bot: false,
            },
        };
        self.add_member(&info).await
    }

    /// The message row a remote message is stored as.
    pub(super) fn remote_row(
        &self,
        ev: &RemoteEvent,
        id: &RemoteMessageId,
        content: &Content,
        reply_to: Option<&RemoteMessageId>,
        nick: &str,
    ) -> MessageRow {
        MessageRow {
            portal_id: self.row.id,
            remote_id: id.clone(),
            part: 0,
            stanza_id: id.to_string(),
            origin_id: None,
            xmpp_id: None,
            sender: ev.sender.to_string(),
            sender_nick: nick.to_string(),
            from_xmpp: false,
            body: Some(payload::body_of(content).0),
            reply_to: reply_to.map(|r| r.to_string()),
            sent_at: ev.at,
        }
    }

    pub(super) async fn nick_of(&mut self, user: &RemoteUserId) -> String {
        if self.row.kind == RoomKind::Direct {
            user.to_string()
        } else {
            self.sender_nick(user).await
        }
    }

    /// A stanza from a remote user (or on their behalf: `nick` and occupant of `who`) to
    /// every session in the room, or from the puppet to the owner of a 1:1 portal.
    pub(super) fn as_remote_user(
        &self,
        sender: &RemoteUserId,
        nick: &str,
        who: &str,
        id: &str,
        body: &str,
        extras: Extras,
    ) -> Vec<Outgoing> {
        if self.row.kind == RoomKind::Direct {
            return match &self.row.xmpp_user {
                Some(owner) => vec![out::chat_message(
                    &self.puppet_jid(sender),
                    owner,
                    id,
                    body,
                    &extras,
                )],
                None => Vec::new(),
            };
        }
        let oid = self.oid(who);
        let stanza_id = if extras.chat_state.is_some() { "" } else { id };
        self.occ
            .sessions()
            .into_iter()
            .map(|to| {
                out::room_message(&RoomMessage {
                    room: self.room_jid.clone(),
                    nick: nick.to_string(),
                    to,
                    id: id.to_string(),
                    stanza_id: stanza_id.to_string(),
                    origin_id: None,
                    body: body.to_string(),
                    occupant_id: oid.clone(),
                    delay: None,
                    extras: extras.clone(),
                })
            })
            .collect()
    }

    /// How a stored message is referred to: in a room by its stanza-id (XEP-0424/0444/0461),
    /// in a 1:1 chat by the id its recipient saw (the sender's own id for XMPP messages).
    pub(super) fn reference(&self, m: &MessageRow) -> String {
        match (&self.row.kind, &m.xmpp_id) {
            (RoomKind::Direct, Some(x)) => x.clone(),
            _ => m.stanza_id.clone(),
        }
    }

    /// The occupant (nick, occupant-id key) a stored message came from.
    pub(super) fn author_of(m: &MessageRow) -> (String, String) {
        let who = if m.from_xmpp {
            format!("xmpp:{}", m.sender)
        } else {
            format!("remote:{}", m.sender)
        };
        (m.sender_nick.clone(), who)
    }

    pub(super) async fn on_remote(&mut self, ev: RemoteEvent) {
        if self.row.access == crate::store::Access::Closed
            && !matches!(ev.kind, RemoteEventKind::RoomRemoved)
        {
            return; // not bridged any more (its task is ending)
        }
        match ev.kind.clone() {
            RemoteEventKind::Message {
                id,
                content,
                reply_to,
                txn,
            } => {
                if txn.as_ref().is_some_and(|t| self.txns.contains(t)) {
                    return; // our own echo
                }
                // Ours too, from before a restart: an echo, or (after a crash between the
                // send and the store) a message its sender never saw reflected. Never a
                // remote user's post.
                if txn.as_ref().is_some_and(|t| {
                    t.is_own_post() || crate::bridge::is_own_txn(&self.shared.occupant_key, t)
                }) {
                    if self.find_remote(&id).await.is_none() {
                        tracing::warn!(network = %self.net.id, room = %self.row.key.room, "a message sent before a restart was not archived (Causeway stopped between sending and storing it)");
                    }
                    return;
                }
                self.remote_message(&ev, id, content, reply_to).await;
            }
            RemoteEventKind::Edit { target, content } => {
                let Some(m) = self.find_remote(&target).await else {
                    return tracing::debug!(network = %self.net.id, "edit of an unknown message dropped");
                };
                let (body, unstyled) = payload::body_of(&content);
                self.keep_correction(&m.stanza_id, &body).await;
                let (nick, who) = Self::author_of(&m);
                let extras = Extras {
                    replace: Some(m.xmpp_id.clone().unwrap_or(m.stanza_id.clone())),
                    unstyled,
                    ..Extras::default()
                };
                let items =
                    self.as_remote_user(&ev.sender, &nick, &who, &fresh_id("edit"), &body, extras);
                self.send(items).await;
            }
            RemoteEventKind::Retract { target, by_author } => {
                self.remote_retract(&ev, &target, by_author).await
            }
            RemoteEventKind::Reactions { target, emojis } => {
                self.remote_reactions(&ev, &target, |_| emojis).await
            }
            RemoteEventKind::ReactionChanged {
                target,
                emoji,
                added,
            } => {
                self.remote_reactions(&ev, &target, |old| reactions::apply(old, &emoji, added))
                    .await
            }
            RemoteEventKind::ReactionsCleared { target, emoji } => {
                self.remote_reactions_cleared(&ev, &target, emoji).await
            }
            RemoteEventKind::Presence {
                availability,
                status,
            } => {
                // The remote user of a 1:1 chat, as the XMPP user's contact.
                if let (RoomKind::Direct, Some(owner)) = (self.row.kind, &self.row.xmpp_user) {
                    let item = crate::xmpp::service_xml::availability(
                        &self.puppet_jid(&ev.sender),
                        owner,
                        availability != Availability::Offline,
                        availability == Availability::Away,
                        status.as_deref(),
                    );
                    self.send(vec![item]).await;
                }
            }
            RemoteEventKind::ReadUpTo { up_to } => {
                // XEP-0333 in 1:1 chats; rooms get no per-reader markers (they would flood).
                if self.row.kind != RoomKind::Direct {
                    return;
                }
                let Some(m) = self.find_remote(&up_to).await else {
                    return;
                };
                let extras = Extras {
                    displayed: Some(self.reference(&m)),
                    ..Extras::default()
                };
                let who = format!("remote:{}", ev.sender);
                let items =
                    self.as_remote_user(&ev.sender, "", &who, &fresh_id("read"), "", extras);
                self.send(items).await;
            }
            RemoteEventKind::Typing { active } => {
                let nick = self.nick_of(&ev.sender).await;
                let extras = Extras {
                    chat_state: Some(if active {
                        ChatState::Composing
                    } else {
                        ChatState::Paused
                    }),
                    ..Extras::default()
                };
                let who = format!("remote:{}", ev.sender);
                let items =
                    self.as_remote_user(&ev.sender, &nick, &who, &fresh_id("state"), "", extras);
                self.send(items).await;
            }
            RemoteEventKind::Membership { user, joined } => {
                if joined {
                    self.add_member(&user).await;
                } else if let Some(m) = self.occ.remote.remove(&user.id) {
                    let jid = self.puppet_jid(&user.id);
                    let items = self
                        .occ
                        .sessions()
                        .iter()
                        .map(|to| self.member_presence(&m.nick, &jid, &user.id, to, true))
                        .collect();
                    self.send(items).await;
                }
            }
            RemoteEventKind::RoomChanged(info) => {
                let topic_changed = info.topic != self.row.topic;
                self.row.name = info.name;
                self.row.topic = info.topic;
                self.row.space = info.space.map(|s| s.to_string());
                self.row.avatar = info.avatar_url;
                if let Err(e) = self.shared.store.upsert_portal(&self.row).await {
                    tracing::warn!(network = %self.net.id, "room change not stored: {e}");
                }
                if topic_changed {
                    let subject = self.row.topic.clone().unwrap_or_default();
                    let items = self
                        .occ
                        .sessions()
                        .iter()
                        .map(|to| out::room_subject(&self.room_jid, to, &subject))
                        .collect();
                    self.send(items).await;
                }
            }
            RemoteEventKind::RoomRemoved => {
                // Everyone is told the room is gone (XEP-0045 destroy); joined sessions are
                // forgotten.
                let sessions = self.occ.sessions();
                let items = self
                    .occ
                    .xmpp
                    .values()
                    .flat_map(|o| o.sessions.iter().map(move |s| (o.nick.clone(), s.clone())))
                    .map(|(nick, to)| out::room_destroyed(&self.room_jid, &nick, &to))
                    .collect();
                self.send(items).await;
                for s in sessions {
                    if let Err(e) = self.shared.store.remove_occupant(self.row.id, &s).await {
                        tracing::warn!(network = %self.net.id, "occupant not forgotten: {e}");
                    }
                }
                for bare in self.occ.xmpp.keys() {
                    self.shared
                        .quotas
                        .leave(bare, (self.net.id.as_str(), self.row.id));
                }
                self.occ.xmpp.clear();
                // (closed until its task ends: what is queued behind this is refused)
                self.row.access = crate::store::Access::Closed;
            }
            // (the router turns a gap into a catch-up of every room: never queued here)
            RemoteEventKind::Gap => {}
            RemoteEventKind::LoginState { state } => {
                tracing::info!(network = %self.net.id, room = %self.row.key.room, "login state: {state:?}");
            }
        }
    }

    /// A stored message by its remote id (waiting for messages still on their way in).
    pub(super) async fn find_remote(&self, id: &RemoteMessageId) -> Option<MessageRow> {
        if let Some(m) = self.recent.by_remote(id.as_str()) {
            return Some(m.clone());
        }
        let (portal, store) = (self.row.id, &self.shared.store);
        self.look_up(|| store.message_by_remote(portal, id)).await
    }

    /// A moderator cleared a message's reactions (or one emoji): every remote user's set
    /// shrinks accordingly.
    async fn remote_reactions_cleared(
        &mut self,
        ev: &RemoteEvent,
        target: &RemoteMessageId,
        emoji: Option<String>,
    ) {
        let Some(m) = self.find_remote(target).await else {
            return;
        };
        let senders = match self
            .shared
            .store
            .reaction_senders(self.row.id, m.remote_id.as_str())
            .await
        {
            Ok(s) => s,
            Err(e) => return tracing::error!(network = %self.net.id, "reactions not read: {e}"),
        };
        for who in senders {
            let Some(user) = who.strip_prefix("remote:") else {
                continue;
            };
            let one = RemoteEvent {
                sender: RemoteUserId::new(user),
                ..ev.clone()
            };
            let emoji = emoji.clone();
            self.remote_reactions(&one, target, |old| match &emoji {
                Some(e) => old.iter().filter(|x| *x != e).cloned().collect(),
                None => Vec::new(),
            })
            .await;
        }
    }

    /// A remote user's reactions on a message changed: store the new set, send it whole.
    async fn remote_reactions(
        &mut self,
        ev: &RemoteEvent,
        target: &RemoteMessageId,
        new_set: impl FnOnce(&[String]) -> Vec<String>,
    ) {
        let Some(m) = self.find_remote(target).await else {
            return tracing::debug!(network = %self.net.id, "reaction to an unknown message dropped");
        };
        let who = format!("remote:{}", ev.sender);
        let store = &self.shared.store;
        let old = match store
            .reactions(self.row.id, m.remote_id.as_str(), &who)
            .await
        {
            Ok(o) => o,
            Err(e) => return tracing::error!(network = %self.net.id, "reactions not read: {e}"),
        };
        let now = new_set(&old);
        if now == old {
            return;
        }
        if let Err(e) = store
            .set_reactions(self.row.id, m.remote_id.as_str(), &who, &now)
            .await
        {
            tracing::warn!(network = %self.net.id, "reactions not stored: {e}");
        }
        let nick = self.nick_of(&ev.sender).await;
        let extras = Extras {
            reactions: Some((self.reference(&m), now)),
            ..Extras::default()
        };
        let items = self.as_remote_user(&ev.sender, &nick, &who, &fresh_id("react"), "", extras);
        self.send(items).await;
    }
}
