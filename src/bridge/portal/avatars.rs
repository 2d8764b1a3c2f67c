//! Puppets look like people: their avatars are copied by Causeway (in the background, so a
//! room with many members does not wait), announced with XEP-0153 hashes in presence and
//! served as vCard-temp photos to clients that ask an occupant for it.

use super::{Portal, PortalInput};
use crate::xmpp::outbound::{self as out, Condition};
use causeway_api::*;

impl Portal {
    /// The avatar hash of a member if Causeway already holds a copy; otherwise a copy is
    /// started and the hash announced when it is done.
    pub(super) async fn photo_of(&self, user: &UserInfo) -> Option<String> {
        let url = user.avatar_url.clone()?;
        let media = self.shared.media.clone();
        if let Some(known) = media.known(&url).await {
            return Some(known.sha1);
        }
        let (me, id, network) = (self.me.clone(), user.id.clone(), self.net.id.clone());
        let origins = self.net.network.origins();
        tokio::spawn(async move {
            match media.copy_of(&url, &origins).await {
                Ok((row, _)) => {
                    if let Some(tx) = me.upgrade() {
                        let _ = tx
                            .send(PortalInput::Avatar {
                                user: id,
                                photo: row.sha1,
                            })
                            .await;
                    }
                }
                Err(e) => tracing::debug!(network = %network, user = %id, "avatar not copied: {e}"),
            }
        });
        None
    }

    pub(super) async fn avatar_ready(&mut self, user: RemoteUserId, photo: String) {
        let Some(m) = self.occ.remote.get_mut(&user) else {
            return;
        };
        if m.photo.as_deref() == Some(photo.as_str()) {
            return;
        }
        m.photo = Some(photo);
        let nick = m.nick.clone();
        let jid = self.puppet_jid(&user);
        let items = self
            .occ
            .sessions()
            .iter()
            .map(|to| self.member_presence(&nick, &jid, &user, to, false))
            .collect();
        self.send(items).await;
    }

    /// vCard of an occupant: a member's name and avatar. XMPP occupants are asked directly
    /// (the room is not anonymous: their real JID is in their presence).
    pub(super) async fn occupant_vcard(&mut self, nick: &str, from: &str, id: &str) {
        let occupant = format!("{}/{nick}", self.room_jid);
        let member = self
            .occ
            .remote
            .iter()
            .find(|(_, m)| m.nick == nick)
            .map(|(u, m)| (u.clone(), m.nick.clone()));
        let reply = match member {
            Some((user, name)) => {
                let photo =
                    crate::bridge::service::avatar_bytes(&self.shared, &self.net, &user).await;
                let photo_ref = photo.as_ref().map(|(t, b)| (t.as_str(), b.as_slice()));
                out::vcard(&occupant, from, id, &name, photo_ref)
            }
            None => self.error(
                "iq",
                from,
                Some(&occupant),
                Some(id),
                Condition::ServiceUnavailable,
                None,
            ),
        };
        self.send(vec![reply]).await;
    }
}
