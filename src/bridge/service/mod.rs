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
        let bare = xmpp::bare(jid);
        self.shared
            .config
            .admins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(bare))
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
            ServiceQuery::Presence { typ } => self.gateway_presence(&ask, &typ).await,
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
            ServiceQuery::PuppetPresence { puppet, typ } => {
                self.puppet_presence(&ask, &puppet, &typ).await
            }
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

    /// The gateway answers subscriptions (and subscribes back to registered users) and
    /// tells whether it is available.
    async fn gateway_presence(&self, ask: &Ask<'_>, typ: &str) -> Vec<Outgoing> {
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

    /// vCard of a puppet (its name and avatar) or of a room (XEP-0486: its avatar).
    async fn vcard(&self, ask: &Ask<'_>, node: &str) -> Vec<Outgoing> {
        let store = &self.shared.store;
        if let Ok(Some(p)) = store.portal_by_jid(&ask.net.id, node).await {
            let photo = match &p.avatar {
                Some(url) => match self.shared.media.copy_of(url).await {
                    Ok((row, path)) => tokio::fs::read(path)
                        .await
                        .ok()
                        .map(|b| (row.content_type, b)),
                    Err(_) => None,
                },
                None => None,
            };
            let photo_ref = photo.as_ref().map(|(t, b)| (t.as_str(), b.as_slice()));
            return vec![out::vcard(&ask.to, &ask.from, &ask.id, &p.name, photo_ref)];
        }
        let Some(remote) = xmpp::decode_local(node) else {
            return ask.iq_error(Condition::ItemNotFound, "");
        };
        let user = RemoteUserId::new(remote);
        let name = match store.puppet(&ask.net.id, &user).await {
            Ok(Some(p)) => p.display_name,
            Ok(None) => match ask.net.relay.user_info(&user).await {
                Ok(info) => {
                    let _ = store.upsert_puppet(&ask.net.id, &info, node).await;
                    info.display_name
                }
                Err(_) => return ask.iq_error(Condition::ItemNotFound, "no such user"),
            },
            Err(e) => {
                tracing::error!("store error: {e}");
                return ask.iq_error(Condition::InternalServerError, "");
            }
        };
        let photo = avatar_bytes(&self.shared, &ask.net.id, &user).await;
        let photo_ref = photo.as_ref().map(|(t, b)| (t.as_str(), b.as_slice()));
        vec![out::vcard(&ask.to, &ask.from, &ask.id, &name, photo_ref)]
    }

    /// Puppets accept every subscription and are shown available while the gateway runs.
    async fn puppet_presence(&self, ask: &Ask<'_>, puppet: &str, typ: &str) -> Vec<Outgoing> {
        let Some(remote) = xmpp::decode_local(puppet) else {
            return vec![ask.error("presence", Condition::ItemNotFound, "")];
        };
        let user = RemoteUserId::new(remote);
        match self.shared.store.puppet(&ask.net.id, &user).await {
            Ok(Some(_)) => {}
            // not seen yet: the network knows, or nobody does
            Ok(None) => match ask.net.relay.user_info(&user).await {
                Ok(info) => {
                    let stored = self
                        .shared
                        .store
                        .upsert_puppet(&ask.net.id, &info, puppet)
                        .await;
                    if let Err(e) = stored {
                        tracing::warn!(network = %ask.net.id, "puppet not stored: {e}");
                    }
                }
                Err(NetworkError::NotFound(_)) => {
                    return vec![ask.error("presence", Condition::ItemNotFound, "no such user")]
                }
                Err(e) => {
                    let text = e.to_string();
                    return vec![ask.error("presence", Condition::from_network(&e), &text)];
                }
            },
            Err(e) => {
                tracing::error!("store error: {e}");
                return vec![ask.error("presence", Condition::InternalServerError, "")];
            }
        }
        let (me, to) = (ask.to.as_str(), ask.bare());
        match typ {
            "subscribe" => vec![
                sx::presence(me, to, Some("subscribed")),
                sx::presence(me, to, None),
            ],
            "unsubscribe" => vec![sx::presence(me, to, Some("unsubscribed"))],
            _ => vec![sx::presence(me, &ask.from, None)],
        }
    }
}

/// A puppet's avatar as Causeway holds it: (content type, bytes).
pub(super) async fn avatar_bytes(
    shared: &super::Shared,
    network: &NetworkId,
    user: &RemoteUserId,
) -> Option<(String, Vec<u8>)> {
    let url = shared.store.puppet(network, user).await.ok()??.avatar?;
    let (row, path) = shared.media.copy_of(&url).await.ok()?;
    let bytes = tokio::fs::read(path).await.ok()?;
    Some((row.content_type, bytes))
}
