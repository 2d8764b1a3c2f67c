//! What the network says in this room, on its way to XMPP.

use super::Portal;
use crate::store::MessageRow;
use crate::xmpp::outbound::{self as out, RoomMessage};
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

    pub(super) async fn on_remote(&mut self, ev: RemoteEvent) {
        match ev.kind {
            RemoteEventKind::Message {
                id,
                content,
                reply_to,
                txn,
            } => {
                if txn.as_ref().is_some_and(|t| self.txns.contains(t)) {
                    return; // our own echo
                }
                let nick = if self.row.kind == RoomKind::Direct {
                    ev.sender.to_string()
                } else {
                    self.sender_nick(&ev.sender).await
                };
                let row = MessageRow {
                    portal_id: self.row.id,
                    remote_id: id.clone(),
                    part: 0,
                    stanza_id: id.to_string(),
                    origin_id: None,
                    xmpp_id: None,
                    sender: ev.sender.to_string(),
                    sender_nick: nick.clone(),
                    from_xmpp: false,
                    body: Some(content.text.clone()),
                    reply_to: reply_to.map(|r| r.to_string()),
                    sent_at: ev.at,
                };
                let stanzas = if self.row.kind == RoomKind::Direct {
                    let Some(owner) = self.row.xmpp_user.clone() else {
                        return;
                    };
                    vec![out::chat_message(
                        &self.puppet_jid(&ev.sender),
                        &owner,
                        id.as_str(),
                        &content.text,
                    )]
                } else {
                    let oid = self.oid(&format!("remote:{}", ev.sender));
                    self.occ
                        .sessions()
                        .into_iter()
                        .map(|to| {
                            out::room_message(&RoomMessage {
                                room: self.room_jid.clone(),
                                nick: nick.clone(),
                                to,
                                id: id.to_string(),
                                stanza_id: id.to_string(),
                                origin_id: None,
                                body: content.text.clone(),
                                occupant_id: oid.clone(),
                                delay: None,
                            })
                        })
                        .collect()
                };
                // Stored, then sent, by the link's recorder; a duplicate delivery stops
                // there, and the message is counted once stored.
                let counted = Some((self.net.id.to_string(), "to_xmpp"));
                if let Err(e) = self
                    .net
                    .link
                    .send_recorded(vec![row], true, stanzas, counted)
                    .await
                {
                    tracing::error!(network = %self.net.id, room = %self.row.key.room, remote_id = %id, "message not delivered: {e}");
                }
            }
            RemoteEventKind::Membership { user, joined } => {
                if joined {
                    self.add_member(&user).await;
                } else if let Some(m) = self.occ.remote.remove(&user.id) {
                    let items = self
                        .occ
                        .sessions()
                        .iter()
                        .map(|to| self.member_presence(&m.nick, &m.jid, &user.id, to, true))
                        .collect();
                    self.send(items).await;
                }
            }
            RemoteEventKind::RoomChanged(info) => {
                let topic_changed = info.topic != self.row.topic;
                self.row.name = info.name;
                self.row.topic = info.topic;
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
            other => {
                tracing::debug!(network = %self.net.id, room = %self.row.key.room, "remote event not bridged yet: {:?}", std::mem::discriminant(&other));
            }
        }
    }
}
