//! The spaces service: linked remote spaces as XEP-0060 nodes (XEP-0503), their rooms as
//! `<conference>` items, nested spaces as `<subscription>` items, notifications to
//! subscribers when rooms come, change or go. Only admins change what is linked.

use super::Ask;
use crate::bridge::{Bridge, NetCtx};
use crate::store::{Access, PortalRow, SpaceRow};
use crate::xmpp::inbound::PubsubOp;
use crate::xmpp::outbound::{iq_result, Condition, Outgoing};
use crate::xmpp::service_xml::{self as sx, MirrorOp, SpaceItem};
use causeway_api::*;

impl Bridge {
    /// Whether a room may have a portal: rooms outside spaces always, rooms of a space only
    /// once it is linked.
    pub(crate) async fn room_allowed(&self, net: &NetCtx, info: &RoomInfo) -> bool {
        match &info.space {
            None => true,
            Some(s) => matches!(
                self.shared.store.space(&net.id, s.as_str()).await,
                Ok(Some(_))
            ),
        }
    }

    fn room_item(net: &NetCtx, p: &PortalRow) -> SpaceItem {
        SpaceItem::Room {
            jid: format!("{}@{}", p.jid_local, net.domain),
            name: p.name.clone(),
        }
    }

    /// Link a space and, below it, its nested spaces; its rooms get portals. Returns its
    /// name and how many rooms it holds.
    pub(super) async fn link_space(
        &self,
        net: &NetCtx,
        space: &str,
    ) -> Result<(String, usize), String> {
        let mut todo: Vec<(String, Option<String>)> = vec![(space.to_string(), None)];
        let (mut top_name, mut top_rooms) = (String::new(), 0);
        while let Some((id, parent)) = todo.pop() {
            let info = net
                .relay
                .space_info(&RemoteSpaceId::new(id.as_str()))
                .await
                .map_err(|e| e.to_string())?;
            let row = SpaceRow {
                id: id.clone(),
                name: info.name.clone(),
                avatar: info.avatar_url.clone(),
                parent: parent.clone(),
            };
            self.shared
                .store
                .upsert_space(&net.id, &row)
                .await
                .map_err(|e| e.to_string())?;
            let mut rooms = 0;
            for key in &info.rooms {
                match net.relay.room_info(key).await {
                    Ok(mut room) => {
                        room.space = Some(info.id.clone());
                        let portal = self
                            .ensure_portal(net, &room, None)
                            .await
                            .map_err(|e| e.to_string())?;
                        // (members-only rooms are not listed either: treated as closed here)
                        if portal.access != Access::Open {
                            continue; // private, and no admin opted it in
                        }
                        if portal.space.as_deref() != Some(id.as_str()) {
                            let mut p = portal;
                            p.space = Some(id.clone());
                            self.shared
                                .store
                                .upsert_portal(&p)
                                .await
                                .map_err(|e| e.to_string())?;
                        }
                        rooms += 1;
                    }
                    Err(e) => {
                        tracing::warn!(network = %net.id, room = %key.room, "room of a space not linked: {e}")
                    }
                }
            }
            if id == space {
                (top_name, top_rooms) = (info.name.clone(), rooms);
            }
            self.mirror_space(net, &row).await;
            todo.extend(
                info.children
                    .iter()
                    .map(|c| (c.to_string(), Some(id.clone()))),
            );
        }
        tracing::info!(network = %net.id, space, rooms = top_rooms, "space linked");
        Ok((top_name, top_rooms))
    }

    /// Unlink a space and its nested spaces; their rooms are closed (occupants see them
    /// destroyed) and cannot be joined until the space is linked again; their history stays.
    pub(super) async fn unlink_space(&self, net: &NetCtx, space: &str) -> Result<bool, String> {
        let all = self
            .shared
            .store
            .spaces(&net.id)
            .await
            .map_err(|e| e.to_string())?;
        let mut todo = vec![space.to_string()];
        let mut found = false;
        while let Some(id) = todo.pop() {
            todo.extend(
                all.iter()
                    .filter(|s| s.parent.as_deref() == Some(id.as_str()))
                    .map(|s| s.id.clone()),
            );
            let rooms = self
                .shared
                .store
                .portals_in_space(&net.id, &id)
                .await
                .map_err(|e| e.to_string())?;
            found |= self
                .shared
                .store
                .remove_space(&net.id, &id)
                .await
                .map_err(|e| e.to_string())?;
            for row in rooms {
                let row = PortalRow {
                    access: Access::Closed,
                    ..row
                };
                self.close_room(&net.id, row).await;
            }
            self.mirror_send(net, &id, vec![MirrorOp::Delete]).await;
        }
        Ok(found)
    }

    async fn space_items(
        &self,
        net: &NetCtx,
        space: &SpaceRow,
    ) -> Result<Vec<SpaceItem>, crate::store::StoreError> {
        let store = &self.shared.store;
        // (members-only rooms are not listed: their members are given the JID)
        let mut items: Vec<SpaceItem> = store
            .portals_in_space(&net.id, &space.id)
            .await?
            .iter()
            .filter(|p| p.access == Access::Open)
            .map(|p| Self::room_item(net, p))
            .collect();
        let (service, _) = net.spaces_service();
        items.extend(
            store
                .spaces(&net.id)
                .await?
                .into_iter()
                .filter(|s| s.parent.as_deref() == Some(space.id.as_str()))
                .map(|s| SpaceItem::Space {
                    service: service.to_string(),
                    node: s.id,
                }),
        );
        if let Some(url) = &space.avatar {
            items.push(SpaceItem::Avatar { url: url.clone() });
        }
        Ok(items)
    }

    pub(super) async fn spaces_info(&self, ask: &Ask<'_>, node: Option<String>) -> Vec<Outgoing> {
        match node {
            None => vec![sx::spaces_info(&ask.to, &ask.from, &ask.id, None)],
            Some(n) => match self.shared.store.space(&ask.net.id, &n).await {
                Ok(Some(s)) => vec![sx::spaces_info(
                    &ask.to,
                    &ask.from,
                    &ask.id,
                    Some((&n, &s.name)),
                )],
                Ok(None) => ask.iq_error(Condition::ItemNotFound, "no such space"),
                Err(e) => {
                    tracing::error!("store error: {e}");
                    ask.iq_error(Condition::InternalServerError, "")
                }
            },
        }
    }

    pub(super) async fn spaces_items(&self, ask: &Ask<'_>) -> Vec<Outgoing> {
        match self.shared.store.spaces(&ask.net.id).await {
            Ok(list) => {
                let list: Vec<(String, String)> =
                    list.into_iter().map(|s| (s.id, s.name)).collect();
                vec![sx::spaces_items(&ask.to, &ask.from, &ask.id, &list)]
            }
            Err(e) => {
                tracing::error!("store error: {e}");
                ask.iq_error(Condition::InternalServerError, "")
            }
        }
    }

    /// disco#items of a node: a space's items are read with pubsub, not listed here.
    pub(super) async fn space_disco_items(&self, ask: &Ask<'_>, node: &str) -> Vec<Outgoing> {
        match self.shared.store.space(&ask.net.id, node).await {
            Ok(Some(_)) => vec![sx::spaces_items(&ask.to, &ask.from, &ask.id, &[])],
            _ => ask.iq_error(Condition::ItemNotFound, "no such node"),
        }
    }

    pub(super) async fn pubsub(&self, ask: &Ask<'_>, op: PubsubOp) -> Vec<Outgoing> {
        let store = &self.shared.store;
        let space = |node: String| async move { store.space(&ask.net.id, &node).await };
        match op {
            PubsubOp::Items { node } => match space(node.clone()).await {
                Ok(Some(s)) => match self.space_items(ask.net, &s).await {
                    Ok(items) => vec![sx::pubsub_items(&ask.to, &ask.from, &ask.id, &node, &items)],
                    Err(e) => {
                        tracing::error!("store error: {e}");
                        ask.iq_error(Condition::InternalServerError, "")
                    }
                },
                Ok(None) => ask.iq_error(Condition::ItemNotFound, "no such space"),
                Err(e) => {
                    tracing::error!("store error: {e}");
                    ask.iq_error(Condition::InternalServerError, "")
                }
            },
            PubsubOp::Subscribe { node, jid } | PubsubOp::Unsubscribe { node, jid }
                if crate::xmpp::bare(&jid) != ask.bare() =>
            {
                let _ = node;
                ask.iq_error(Condition::BadRequest, "you can only subscribe yourself")
            }
            PubsubOp::Subscribe { node, jid } => match space(node.clone()).await {
                Ok(Some(_)) => match store.set_subscribed(&ask.net.id, &node, crate::xmpp::bare(&jid), true).await {
                    Ok(()) => vec![sx::pubsub_subscription(&ask.to, &ask.from, &ask.id, &node, &jid, "subscribed")],
                    Err(e) => {
                        tracing::error!("store error: {e}");
                        ask.iq_error(Condition::InternalServerError, "")
                    }
                },
                _ => ask.iq_error(Condition::ItemNotFound, "no such space"),
            },
            PubsubOp::Unsubscribe { node, jid } => {
                match store.set_subscribed(&ask.net.id, &node, crate::xmpp::bare(&jid), false).await {
                    Ok(()) => vec![iq_result(&ask.to, &ask.from, &ask.id, None)],
                    Err(e) => {
                        tracing::error!("store error: {e}");
                        ask.iq_error(Condition::InternalServerError, "")
                    }
                }
            }
            PubsubOp::Subscriptions => {
                let nodes = match store.subscribed_spaces(&ask.net.id, ask.bare()).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::error!("store error: {e}");
                        return ask.iq_error(Condition::InternalServerError, "");
                    }
                };
                vec![sx::pubsub_subscriptions(
                    &ask.to,
                    &ask.from,
                    &ask.id,
                    ask.bare(),
                    &nodes,
                )]
            }
            PubsubOp::Write { what } if self.is_admin(&ask.from) => ask.iq_error(
                Condition::FeatureNotImplemented,
                &format!("spaces follow the network: '{what}' is done there, or with the link-space command"),
            ),
            PubsubOp::Write { .. } => ask.iq_error(Condition::Forbidden, "only gateway admins change spaces"),
        }
    }

    /// Rooms coming, changing or going in linked spaces: subscribers are told. Returns false
    /// when the event is for a room of a space that is not linked (it is not bridged).
    pub(crate) async fn space_event(&self, net: &NetCtx, ev: &RemoteEvent) -> bool {
        let store = &self.shared.store;
        let old = store.portal_by_room(&net.id, &ev.room).await.ok().flatten();
        match &ev.kind {
            RemoteEventKind::RoomChanged(info) => {
                if !self.room_allowed(net, info).await {
                    return false;
                }
                let new_space = info.space.as_ref().map(|s| s.to_string());
                let portal = match &old {
                    Some(p) => {
                        // (a channel made private is closed here, one opted in becomes
                        // members-only)
                        let access = self.access_for(net, info, &p.jid_local).await;
                        match self.set_access(net, p.clone(), access).await {
                            Ok(p) => PortalRow {
                                name: info.name.clone(),
                                space: new_space.clone(),
                                ..p
                            },
                            Err(e) => {
                                tracing::error!(network = %net.id, "portal access not changed: {e}");
                                return false;
                            }
                        }
                    }
                    None => match self.ensure_portal(net, info, None).await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::error!(network = %net.id, "cannot create portal: {e}");
                            return false;
                        }
                    },
                };
                if portal.access == Access::Closed {
                    if let Some(s) = old.as_ref().and_then(|p| p.space.as_ref()) {
                        let jid = format!("{}@{}", portal.jid_local, net.domain);
                        self.notify(net, s, vec![], vec![jid]).await;
                    }
                    return false;
                }
                let old_space = old.as_ref().and_then(|p| p.space.clone());
                let renamed = old.as_ref().is_some_and(|p| p.name != info.name);
                if let Some(s) = &new_space {
                    if old.is_none() || renamed || old_space != new_space {
                        self.notify(net, s, vec![Self::room_item(net, &portal)], vec![])
                            .await;
                    }
                }
                if let Some(o) = old_space.filter(|o| Some(o) != new_space.as_ref()) {
                    let jid = format!("{}@{}", portal.jid_local, net.domain);
                    self.notify(net, &o, vec![], vec![jid]).await;
                }
                true
            }
            RemoteEventKind::RoomRemoved => {
                if let Some(p) = old {
                    let jid = format!("{}@{}", p.jid_local, net.domain);
                    if let Some(s) = &p.space {
                        self.notify(net, s, vec![], vec![jid]).await;
                    }
                    // closed for good: deleted on the network
                    let detached = PortalRow {
                        space: None,
                        access: Access::Closed,
                        ..p
                    };
                    if let Err(e) = store.upsert_portal(&detached).await {
                        tracing::warn!(network = %net.id, "portal not detached: {e}");
                    }
                }
                true
            }
            _ => true,
        }
    }

    /// The server's pubsub service gets the space node and all its items (created again if
    /// it exists: the server answers a conflict, the items are published anyway).
    async fn mirror_space(&self, net: &NetCtx, space: &SpaceRow) {
        if net.spaces_mirror.is_none() {
            return;
        }
        let items = match self.space_items(net, space).await {
            Ok(i) => i,
            Err(e) => return tracing::warn!(network = %net.id, "space not mirrored: {e}"),
        };
        let mut ops = vec![MirrorOp::Create { title: &space.name }];
        ops.extend(items.iter().map(MirrorOp::Publish));
        self.mirror_send(net, &space.id, ops).await;
    }

    async fn mirror_send(&self, net: &NetCtx, node: &str, ops: Vec<MirrorOp<'_>>) {
        let Some(service) = &net.spaces_mirror else {
            return;
        };
        let items: Vec<Outgoing> = ops
            .into_iter()
            .map(|op| sx::mirror(&net.domain, service, node, op))
            .collect();
        if let Err(e) = net.link.send(items).await {
            tracing::warn!(network = %net.id, "space mirror not updated: {e}");
        }
    }

    /// Tell a space's subscribers what was published or retracted (and the mirror).
    async fn notify(
        &self,
        net: &NetCtx,
        space: &str,
        published: Vec<SpaceItem>,
        retracted: Vec<String>,
    ) {
        let mut ops: Vec<MirrorOp<'_>> = published.iter().map(MirrorOp::Publish).collect();
        ops.extend(retracted.iter().map(|id| MirrorOp::Retract { id }));
        self.mirror_send(net, space, ops).await;
        let subscribers = match self.shared.store.subscribers(&net.id, space).await {
            Ok(s) => s,
            Err(e) => return tracing::error!(network = %net.id, "subscribers not read: {e}"),
        };
        let (service, link) = net.spaces_service();
        let items: Vec<Outgoing> = subscribers
            .iter()
            .map(|to| sx::pubsub_event(service, to, space, &published, &retracted))
            .collect();
        if let Err(e) = link.send(items).await {
            tracing::warn!(network = %net.id, "space notifications not sent: {e}");
        }
    }
}
