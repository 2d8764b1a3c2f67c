//! XmppEvent | RemoteEvent -> the portal task that owns the room (spawned on first use).

use super::portal::{Portal, PortalInput};
use crate::config::BridgeConfig;
use crate::metrics::Metrics;
use crate::store::{PortalRow, Store};
use crate::xmpp::{self, Addressed, LinkSender, XmppEvent};
use causeway_api::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One network as the bridge uses it: its adapter, the relay session, its component domain.
pub struct NetCtx {
    pub network: Arc<dyn Network>,
    pub id: NetworkId,
    pub relay: Arc<dyn Session>,
    pub domain: Arc<str>,
    pub link: LinkSender,
}

pub(super) struct Shared {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub config: BridgeConfig,
    pub occupant_key: String,
}

#[derive(Clone)]
pub struct Bridge {
    shared: Arc<Shared>,
    by_domain: Arc<HashMap<Arc<str>, Arc<NetCtx>>>,
    by_network: Arc<HashMap<NetworkId, Arc<NetCtx>>>,
    portals: Arc<Mutex<PortalQueues>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// The queue of each running portal task.
type PortalQueues = HashMap<(NetworkId, i64), mpsc::Sender<PortalInput>>;

type Route = Result<(Arc<NetCtx>, PortalRow), Option<xmpp::Outgoing>>;

impl Bridge {
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        config: BridgeConfig,
        occupant_key: String,
        nets: Vec<Arc<NetCtx>>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Bridge {
        let by_domain = nets.iter().map(|n| (n.domain.clone(), n.clone())).collect();
        let by_network = nets.iter().map(|n| (n.id.clone(), n.clone())).collect();
        Bridge {
            shared: Arc::new(Shared {
                store,
                metrics,
                config,
                occupant_key,
            }),
            by_domain: Arc::new(by_domain),
            by_network: Arc::new(by_network),
            portals: Arc::new(Mutex::new(HashMap::new())),
            tracker,
            shutdown,
        }
    }

    pub fn net_for_domain(&self, domain: &str) -> Option<Arc<NetCtx>> {
        self.by_domain.get(domain).cloned()
    }

    /// Make sure every room the relay login sees has a portal (so it is listed and joinable).
    pub async fn sync_rooms(&self) {
        for net in self.by_network.values() {
            match net.relay.rooms().await {
                Ok(rooms) => {
                    for info in rooms.into_iter().filter(|r| r.kind != RoomKind::Direct) {
                        if let Err(e) = self.ensure_portal(net, &info, None).await {
                            tracing::warn!(network = %net.id, room = %info.key.room, "cannot create portal: {e}");
                        }
                    }
                }
                Err(e) => tracing::warn!(network = %net.id, "cannot list rooms: {e}"),
            }
        }
    }

    async fn ensure_portal(
        &self,
        net: &NetCtx,
        info: &RoomInfo,
        xmpp_user: Option<&str>,
    ) -> Result<PortalRow, crate::store::StoreError> {
        if let Some(p) = self.shared.store.portal_by_room(&net.id, &info.key).await? {
            return Ok(p);
        }
        let jid_local = match info.kind {
            RoomKind::Direct => format!("dm.{}", xmpp::encode_local(info.key.room.as_str())),
            _ => xmpp::encode_local(info.key.room.as_str()),
        };
        self.shared
            .store
            .upsert_portal(&PortalRow {
                id: 0,
                network: net.id.clone(),
                key: info.key.clone(),
                jid_local,
                kind: info.kind,
                xmpp_user: xmpp_user.map(String::from),
                name: info.name.clone(),
                topic: info.topic.clone(),
            })
            .await
    }

    fn portal_queue(&self, net: &Arc<NetCtx>, row: PortalRow) -> mpsc::Sender<PortalInput> {
        let mut map = self.portals.lock().unwrap_or_else(|p| p.into_inner());
        let key = (net.id.clone(), row.id);
        if let Some(tx) = map.get(&key).filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(self.shared.config.portal_queue);
        let portal = Portal::new(row, net.clone(), self.shared.clone());
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(portal.run(rx, shutdown));
        map.insert(key, tx.clone());
        tx
    }

    async fn deliver(&self, net: &Arc<NetCtx>, row: PortalRow, input: PortalInput) {
        let tx = self.portal_queue(net, row);
        if tx.send(input).await.is_err() {
            tracing::warn!(network = %net.id, "portal task ended; event dropped");
        }
    }

    /// An event from an XMPP user.
    pub async fn xmpp_event(&self, ev: Addressed) {
        match self.route_xmpp(&ev).await {
            Ok((net, row)) => self.deliver(&net, row, PortalInput::Xmpp(ev.event)).await,
            Err(Some(reply)) => {
                if let Some(net) = self.net_for_domain(&ev.domain) {
                    if let Err(e) = net.link.send(vec![reply]).await {
                        tracing::warn!("cannot answer: {e}");
                    }
                }
            }
            Err(None) => {}
        }
    }

    async fn route_xmpp(&self, ev: &Addressed) -> Route {
        let not_found = |text: &str| {
            let (kind, id) = ev.event.stanza_kind();
            if kind == "error" {
                return None;
            }
            Some(xmpp::outbound::error_reply(&xmpp::outbound::ErrorReply {
                kind,
                from: format!("{}@{}", ev.event.target(), ev.domain),
                to: ev.event.from().to_string(),
                id: id.map(String::from),
                condition: xmpp::outbound::Condition::ItemNotFound,
                text: Some(text.to_string()),
            }))
        };
        let internal = |e: &dyn std::fmt::Display| {
            tracing::error!("store error while routing: {e}");
            let (kind, id) = ev.event.stanza_kind();
            (kind != "error").then(|| {
                xmpp::outbound::error_reply(&xmpp::outbound::ErrorReply {
                    kind,
                    from: format!("{}@{}", ev.event.target(), ev.domain),
                    to: ev.event.from().to_string(),
                    id: id.map(String::from),
                    condition: xmpp::outbound::Condition::InternalServerError,
                    text: None,
                })
            })
        };
        let Some(net) = self.net_for_domain(&ev.domain) else {
            return Err(None);
        };
        let target = ev.event.target();
        match self.shared.store.portal_by_jid(&net.id, target).await {
            Ok(Some(row)) => return Ok((net, row)),
            Ok(None) => {}
            Err(e) => return Err(internal(&e)),
        }
        let Some(remote) = xmpp::decode_local(target) else {
            return Err(not_found("no such room or user on this gateway"));
        };
        let found = match &ev.event {
            XmppEvent::Direct { from, .. } => {
                let persona = Persona {
                    nick: xmpp::bare(from).to_string(),
                    avatar_url: None,
                    xmpp_user: xmpp::bare(from).to_string(),
                };
                match net
                    .relay
                    .direct_room(&RemoteUserId::new(remote), Some(&persona))
                    .await
                {
                    Ok(key) => net.relay.room_info(&key).await,
                    Err(e) => Err(e),
                }
            }
            XmppEvent::OccupantError { .. } => return Err(None),
            _ => net.relay.room_info(&RoomKey::shared(remote)).await,
        };
        match found {
            Ok(info) => {
                let owner = matches!(ev.event, XmppEvent::Direct { .. })
                    .then(|| xmpp::bare(ev.event.from()));
                match self.ensure_portal(&net, &info, owner).await {
                    Ok(row) => Ok((net, row)),
                    Err(e) => Err(internal(&e)),
                }
            }
            Err(NetworkError::NotFound(_)) => {
                Err(not_found("no such room or user on this gateway"))
            }
            Err(e) => {
                let (kind, id) = ev.event.stanza_kind();
                Err((kind != "error").then(|| {
                    xmpp::outbound::error_reply(&xmpp::outbound::ErrorReply {
                        kind,
                        from: format!("{}@{}", ev.event.target(), ev.domain),
                        to: ev.event.from().to_string(),
                        id: id.map(String::from),
                        condition: xmpp::outbound::Condition::from_network(&e),
                        text: Some(e.to_string()),
                    })
                }))
            }
        }
    }

    /// Events from one network's sessions, in order per room.
    pub async fn remote_events(&self, network: NetworkId, mut rx: mpsc::Receiver<Envelope>) {
        let Some(net) = self.by_network.get(&network).cloned() else {
            return;
        };
        loop {
            let env = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                e = rx.recv() => match e { Some(e) => e, None => return },
            };
            let room = env.event.room.clone();
            let row = match self.shared.store.portal_by_room(&net.id, &room).await {
                Ok(Some(row)) => row,
                Ok(None) if room.receiver.is_none() => match net.relay.room_info(&room).await {
                    Ok(info) => match self.ensure_portal(&net, &info, None).await {
                        Ok(row) => row,
                        Err(e) => {
                            tracing::error!(network = %net.id, room = %room.room, "cannot create portal: {e}");
                            continue;
                        }
                    },
                    Err(e) => {
                        tracing::warn!(network = %net.id, room = %room.room, "event for an unknown room: {e}");
                        continue;
                    }
                },
                Ok(None) => {
                    tracing::debug!(network = %net.id, room = %room.room, "event for a direct room without portal");
                    continue;
                }
                Err(e) => {
                    tracing::error!(network = %net.id, "store error: {e}");
                    continue;
                }
            };
            self.deliver(&net, row, PortalInput::Remote(env.event))
                .await;
        }
    }
}
