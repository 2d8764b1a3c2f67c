//! A remote message on its way to XMPP: its text (styled, with a reply reference) and its
//! files, each copied and served by Causeway, as one stanza per piece; and a remote deletion,
//! which retracts every piece.

use super::changes::fresh_id;
use super::Portal;
use crate::media::MediaError;
use crate::store::MessageRow;
use crate::xmpp::outbound::{Extras, ReplyRef};
use crate::xmpp::payload;
use causeway_api::*;

/// One stanza of a remote message: text, or one file.
struct Piece {
    id: String,
    body: String,
    extras: Extras,
}

impl Portal {
    /// The reference to the message a stored one answered (XEP-0461), if it is known.
    pub(super) async fn reply_ref(&self, reply_to: &RemoteMessageId) -> Option<ReplyRef> {
        let t = self.find_remote(reply_to).await?;
        Some(ReplyRef {
            to: if self.row.kind != RoomKind::Direct {
                format!("{}/{}", self.room_jid, t.sender_nick)
            } else if t.from_xmpp {
                t.sender.clone()
            } else {
                self.puppet_jid(&RemoteUserId::new(t.sender.as_str()))
            },
            id: self.reference(&t),
            nick: t.sender_nick,
            quoted: t.body.unwrap_or_default(),
        })
    }

    /// What a stored message carried besides its body, for history and the archive: its
    /// reply reference and, for a file Causeway serves, the OOB link.
    pub(super) async fn stored_extras(&self, m: &MessageRow) -> Extras {
        let reply = match &m.reply_to {
            Some(r) => self.reply_ref(&RemoteMessageId::new(r.as_str())).await,
            None => None,
        };
        let oob = m
            .body
            .as_ref()
            .filter(|b| self.shared.media.is_ours(b))
            .cloned();
        Extras {
            reply,
            oob,
            ..Extras::default()
        }
    }

    pub(super) async fn remote_message(
        &mut self,
        ev: &RemoteEvent,
        id: RemoteMessageId,
        content: Content,
        reply_to: Option<RemoteMessageId>,
    ) {
        let nick = self.nick_of(&ev.sender).await;
        let reply = match &reply_to {
            Some(r) => self.reply_ref(r).await,
            None => None,
        };
        let mut pieces = Vec::new();
        let (body, unstyled) = payload::body_of(&content);
        if !body.is_empty() || content.attachments.is_empty() {
            pieces.push(Piece {
                id: id.to_string(),
                body,
                extras: Extras {
                    reply,
                    unstyled,
                    ..Extras::default()
                },
            });
        }
        let origins = self.net.network.origins();
        for a in &content.attachments {
            let piece_id = if pieces.is_empty() {
                id.to_string()
            } else {
                format!("{id}#{}", pieces.len())
            };
            let (body, oob) = match self.shared.media.rehost(a, &origins).await {
                Ok(served) => (served.url.clone(), Some(served.url)),
                Err(e) => {
                    if !matches!(e, MediaError::TooLarge { .. }) {
                        tracing::warn!(network = %self.net.id, room = %self.row.key.room, "file not copied: {e}");
                    }
                    (format!("📎 {e}"), None)
                }
            };
            pieces.push(Piece {
                id: piece_id,
                body,
                extras: Extras {
                    oob,
                    ..Extras::default()
                },
            });
        }
        let who = format!("remote:{}", ev.sender);
        let mut rows = Vec::with_capacity(pieces.len());
        let mut stanzas = Vec::new();
        for (part, p) in pieces.into_iter().enumerate() {
            rows.push(MessageRow {
                part: part as i64,
                stanza_id: p.id.clone(),
                body: Some(p.body.clone()),
                ..self.remote_row(ev, &id, &content, reply_to.as_ref(), &nick)
            });
            stanzas.extend(self.as_remote_user(&ev.sender, &nick, &who, &p.id, &p.body, p.extras));
        }
        self.recent.remember(&rows);
        // Stored, then sent, by the link's recorder; a duplicate delivery stops there, and
        // the message is counted once stored.
        let counted = Some((self.net.id.to_string(), "to_xmpp"));
        if let Err(e) = self.net.link.send_recorded(rows, stanzas, counted).await {
            tracing::error!(network = %self.net.id, room = %self.row.key.room, remote_id = %id, "message not delivered: {e}");
        }
    }

    pub(super) async fn remote_retract(
        &mut self,
        ev: &RemoteEvent,
        target: &RemoteMessageId,
        by_author: bool,
    ) {
        if self.find_remote(target).await.is_none() {
            return tracing::debug!(network = %self.net.id, "deletion of an unknown message dropped");
        }
        let pieces = match self.shared.store.message_pieces(self.row.id, target).await {
            Ok(p) => p,
            Err(e) => return tracing::error!(network = %self.net.id, "message look-up failed: {e}"),
        };
        let mut items = Vec::new();
        let mut done = std::collections::HashSet::new();
        for m in pieces.iter().filter(|m| done.insert(m.stanza_id.clone())) {
            self.keep_retraction(&m.stanza_id, ev.at).await;
            let reference = self.reference(m);
            if by_author || self.row.kind == RoomKind::Direct {
                let (nick, who) = Self::author_of(m);
                let extras = Extras {
                    retract: Some(reference),
                    ..Extras::default()
                };
                items.extend(self.as_remote_user(
                    &ev.sender,
                    &nick,
                    &who,
                    &fresh_id("retract"),
                    "",
                    extras,
                ));
            } else {
                items.extend(self.moderation(&reference, None));
            }
        }
        self.send(items).await;
    }
}
