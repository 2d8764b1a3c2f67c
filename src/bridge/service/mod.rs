//! What the gateway's own JIDs answer (not rooms, not puppets): registration (XEP-0077),
//! address translation (XEP-0100), ad-hoc commands (XEP-0050), the gateway's presence, and
//! the spaces pubsub service (XEP-0060/0503). Admin-only actions are gated by `bridge.admins`.

mod commands;
mod register;
mod spaces;

use super::router::NetCtx;
use super::Bridge;
use crate::xmpp::inbound::ServiceQuery;
use crate::xmpp::outbound::{self as out, Condition, ErrorReply, Outgoing};
use crate::xmpp::{self, service_xml as sx};
use causeway_api::*;
use std::sync::Arc;

/// Who asked, where, and how to answer.
pub(super) struct Ask<'a> {
    pub net: &'a Arc<NetCtx>,
    /// The full JID of the asker.
    pub from: String,
    /// The JID asked (a service domain).
    pub to: String,
    pub id: String,
}

impl Ask<'_> {
    pub fn bare(&self) -> &str {
        xmpp::bare(&self.from)
    }

    pub fn error(&self, kind: &'static str, condition: Condition, text: &str) -> Outgoing {
        out::error_reply(&ErrorReply {
            kind,
            from: self.to.clone(),
            to: self.from.clone(),
            id: (!self.id.is_empty()).then(|| self.id.clone()),
            condition,
            text: (!text.is_empty()).then(|| text.to_string()),
        })
    }

    pub fn iq_error(&self, condition: Condition, text: &str) -> Vec<Outgoing> {
        vec![self.error("iq", condition, text)]
    }
}

impl Bridge {
    pub fn is_admin(&self, jid: &str) -> bool {
        self.shared.is_admin(jid)
    }

    /// Answer a stanza to a service domain (`spaces`: the spaces service's own domain).
    pub async fn service(
        &self,
        net: &Arc<NetCtx>,
        spaces: bool,
        query: ServiceQuery,
        from: String,
        to: String,
        id: String,
    ) -> Vec<Outgoing> {
        let ask = Ask { net, from, to, id };
        match query {
            ServiceQuery::Pubsub(op) => self.pubsub(&ask, op).await,
            ServiceQuery::DiscoInfo { node } if spaces => self.spaces_info(&ask, node).await,
            ServiceQuery::DiscoItems { node: None, .. } if spaces => self.spaces_items(&ask).await,
            ServiceQuery::DiscoItems { node: Some(n), .. } if n == xmpp::ns::COMMANDS => {
                self.command_list(&ask)
            }
            ServiceQuery::DiscoItems { node: Some(n), .. } => {
                self.space_disco_items(&ask, &n).await
            }
            _ if spaces => ask.iq_error(
                Condition::FeatureNotImplemented,
                "the spaces service only speaks XEP-0060 pubsub",
            ),
            ServiceQuery::RegisterGet => self.register_form(&ask).await,
            ServiceQuery::RegisterSet { fields, remove } => {
                if remove {
                    self.unregister(&ask).await
                } else {
                    self.register(&ask, fields).await
                }
            }
            ServiceQuery::GatewayGet => vec![sx::gateway_prompt(
                &ask.to,
                &ask.from,
                &ask.id,
                &format!(
                    "Paste an address of {} (a link, a room or a user) to get its JID.",
                    net.network.capabilities().display_name
                ),
                "Address",
            )],
            ServiceQuery::GatewaySet { prompt } => match self.resolve_jid(net, &prompt).await {
                Ok(jid) => vec![sx::gateway_jid(&ask.to, &ask.from, &ask.id, &jid)],
                Err(e) => ask.iq_error(Condition::from_network(&e), &e.to_string()),
            },
            ServiceQuery::Command {
                node,
                action,
                sessionid,
                form,
            } => self.command(&ask, &node, &action, sessionid, form).await,
            ServiceQuery::Presence { typ } => self.presence_answer(&ask, &typ),
            ServiceQuery::VCard { node } => self.vcard(&ask, &node).await,
            ServiceQuery::MirrorRefused { condition } => {
                // "conflict" is a node created before: expected when a space is linked again
                if condition != "conflict" {
                    tracing::warn!(network = %net.id, service = %ask.from, condition, "the space mirror refused a change");
                }
                Vec::new()
            }
            ServiceQuery::RosterRefused { jid, name, group } => {
                // The privilege is granted but does not work (ejabberd before 23.10):
                // suggest contacts instead from now on.
                tracing::warn!(network = %net.id, "the server refused a privileged roster push; suggesting contacts (XEP-0144) instead");
                net.roster_privilege
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                vec![sx::roster_add(
                    &ask.to,
                    ask.bare(),
                    &jid,
                    &name,
                    &group,
                    false,
                )]
            }
            ServiceQuery::Privileges { roster } => {
                tracing::info!(network = %net.id, roster, "the server's privileges (XEP-0356)");
                net.roster_privilege
                    .store(roster, std::sync::atomic::Ordering::Relaxed);
                Vec::new()
            }
            ServiceQuery::PuppetPresence {
                puppet,
                typ,
                show,
                status,
            } => match typ.as_str() {
                "" | "unavailable" => self.availability(&ask, &puppet, &typ, show, status).await,
                _ => self.puppet_presence(&ask, &puppet, &typ).await,
            },
            ServiceQuery::DiscoInfo { .. } => ask.iq_error(Condition::ItemNotFound, ""),
            // answered by disco::answer before reaching here
            ServiceQuery::DiscoItems { .. } | ServiceQuery::Version | ServiceQuery::Ping => {
                ask.iq_error(Condition::InternalServerError, "")
            }
        }
    }

    /// The JID of what an address names on the network.
    pub(super) async fn resolve_jid(
        &self,
        net: &NetCtx,
        address: &str,
    ) -> Result<String, NetworkError> {
        let local = match net.relay.resolve(address).await? {
            Resolved::Room(key) => match self.shared.store.portal_by_room(&net.id, &key).await {
                Ok(Some(p)) => p.jid_local,
                _ => xmpp::encode_local(key.room.as_str()),
            },
            Resolved::User(user) => xmpp::encode_local(user.as_str()),
        };
        Ok(format!("{local}@{}", net.domain))
    }

    /// The gateway and its puppets accept every subscription and are available while
    /// Causeway runs.
    fn presence_answer(&self, ask: &Ask<'_>, typ: &str) -> Vec<Outgoing> {
        let (me, to) = (ask.to.as_str(), ask.bare());
        match typ {
            "subscribe" => vec![
                sx::presence(me, to, Some("subscribed")),
                sx::presence(me, to, None),
            ],
            "unsubscribe" => vec![sx::presence(me, to, Some("unsubscribed"))],
            "probe" => vec![sx::presence(me, &ask.from, None)],
            _ => Vec::new(),
        }
    }

    /// A remote user behind a puppet localpart: from the store, else asked of the network
    /// (and stored). Err is the condition and text for the asker.
    async fn known_puppet(
        &self,
        net: &NetCtx,
        local: &str,
    ) -> Result<(RemoteUserId, String, Option<String>), (Condition, String)> {
        let Some(remote) = xmpp::decode_local(local) else {
            return Err((Condition::ItemNotFound, String::new()));
        };
        let user = RemoteUserId::new(remote);
        match self.shared.store.puppet(&net.id, &user).await {
            Ok(Some(p)) => Ok((user, p.display_name, p.avatar)),
            // not seen yet: the network knows, or nobody does
            Ok(None) => match net.relay.user_info(&user).await {
                Ok(info) => {
                    let stored = self.shared.store.upsert_puppet(&net.id, &info, local).await;
                    if let Err(e) = stored {
                        tracing::warn!(network = %net.id, "puppet not stored: {e}");
                    }
                    Ok((user, info.display_name, info.avatar_url))
                }
                Err(NetworkError::NotFound(_)) => {
                    Err((Condition::ItemNotFound, "no such user".into()))
                }
                Err(e) => Err((Condition::from_network(&e), e.to_string())),
            },
            Err(e) => {
                tracing::error!("store error: {e}");
                Err((Condition::InternalServerError, String::new()))
            }
        }
    }

    /// vCard of a puppet (its name and avatar) or of a room (XEP-0486: its avatar).
    async fn vcard(&self, ask: &Ask<'_>, node: &str) -> Vec<Outgoing> {
        let (name, avatar) = match self.shared.store.portal_by_jid(&ask.net.id, node).await {
            // (a closed or members-only room tells nobody its name or picture here)
            Ok(Some(p)) if p.access != crate::store::Access::Open => {
                return ask.iq_error(Condition::ItemNotFound, "no such room on this gateway");
            }
            Ok(Some(p)) => (p.name, p.avatar),
            _ => match self.known_puppet(ask.net, node).await {
                Ok((_, name, avatar)) => (name, avatar),
                Err((c, text)) => return ask.iq_error(c, &text),
            },
        };
        let photo = match avatar {
            Some(url) => picture(&self.shared, &ask.net.network.origins(), &url).await,
            None => None,
        };
        let photo_ref = photo.as_ref().map(|(t, b)| (t.as_str(), b.as_slice()));
        vec![out::vcard(&ask.to, &ask.from, &ask.id, &name, photo_ref)]
    }

    /// An XMPP user's availability sent to a contact: passed on through their direct
    /// conversation with that remote user, if there is one. Presence to a room's bare JID is
    /// a join without a nick.
    async fn availability(
        &self,
        ask: &Ask<'_>,
        puppet: &str,
        typ: &str,
        show: Option<String>,
        status: Option<String>,
    ) -> Vec<Outgoing> {
        if self.known_puppet(ask.net, puppet).await.is_err() {
            if typ == "unavailable" {
                return Vec::new();
            }
            return vec![ask.error(
                "presence",
                Condition::JidMalformed,
                "join a room as room@domain/nick",
            )];
        }
        let owner = ask.bare().to_string();
        let local = xmpp::direct_portal_local(puppet, &owner);
        let Ok(Some(row)) = self.shared.store.portal_by_jid(&ask.net.id, &local).await else {
            return Vec::new(); // no conversation with them yet
        };
        let availability = match (typ, show.as_deref()) {
            ("unavailable", _) => Availability::Offline,
            (_, Some("away" | "xa" | "dnd")) => Availability::Away,
            _ => Availability::Online,
        };
        let action = Action {
            room: row.key,
            persona: Some(self.shared.personas.persona(&owner, &owner)),
            kind: ActionKind::Presence {
                availability,
                status: status.filter(|s| !s.is_empty()),
            },
        };
        if let Err(e) = ask.net.relay.apply(action).await {
            tracing::debug!(network = %ask.net.id, "presence not passed on: {e}");
        }
        Vec::new()
    }

    async fn puppet_presence(&self, ask: &Ask<'_>, puppet: &str, typ: &str) -> Vec<Outgoing> {
        match self.known_puppet(ask.net, puppet).await {
            Ok(_) => self.presence_answer(ask, typ),
            Err((c, text)) => vec![ask.error("presence", c, &text)],
        }
    }
}

/// A remote picture as Causeway holds a copy of it: (content type, bytes).
async fn picture(
    shared: &super::Shared,
    origins: &[String],
    url: &str,
) -> Option<(String, Vec<u8>)> {
    let (row, path) = shared.media.copy_of(url, origins).await.ok()?;
    let bytes = tokio::fs::read(path).await.ok()?;
    Some((row.content_type, bytes))
}

/// A puppet's avatar as Causeway holds it: (content type, bytes).
pub(super) async fn avatar_bytes(
    shared: &super::Shared,
    net: &NetCtx,
    user: &RemoteUserId,
) -> Option<(String, Vec<u8>)> {
    let url = shared.store.puppet(&net.id, user).await.ok()??.avatar?;
    picture(shared, &net.network.origins(), &url).await
}
