//! XmppEvent | RemoteEvent -> the portal task that owns the room (spawned on first use).

use super::portal::{Held, Portal, PortalInput};
use super::quota::Per;
use super::serial::Serial;
use crate::config::BridgeConfig;
use crate::metrics::Metrics;
use crate::store::{Access, PortalRow, Store};
use crate::xmpp::{self, Addressed, LinkSender, XmppEvent};
use causeway_api::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One network as the bridge uses it: its adapter, the relay session, its component domain.
pub struct NetCtx {
    pub network: Arc<dyn Network>,
    pub id: NetworkId,
    pub relay: Arc<dyn Session>,
    pub domain: Arc<str>,
    pub link: LinkSender,
    /// The spaces pubsub service's own domain and link, when configured (else spaces are
    /// served on `domain`).
    pub spaces: Option<(Arc<str>, LinkSender)>,
    /// Where sessions of this network push their events (users' own logins too).
    pub events: mpsc::Sender<Envelope>,
    /// XEP-0356: the server lets the component edit its users' rosters.
    pub roster_privilege: std::sync::atomic::AtomicBool,
    /// A pubsub service of the server that gets a copy of every linked space.
    pub spaces_mirror: Option<String>,
}

impl NetCtx {
    /// The domain and link the spaces service answers from.
    pub fn spaces_service(&self) -> (&str, &LinkSender) {
        match &self.spaces {
            Some((d, l)) => (d, l),
            None => (&self.domain, &self.link),
        }
    }
}

/// What every portal shares: the store, metrics, the bridge's settings, keys and media.
pub struct Shared {
    pub store: Store,
    pub media: Arc<crate::media::Media>,
    pub metrics: Arc<Metrics>,
    pub config: BridgeConfig,
    pub occupant_key: String,
    /// XMPP users as relay logins show them (nick, avatar).
    pub personas: Arc<super::personas::Personas>,
    /// What each XMPP user may create.
    pub quotas: super::quota::Quotas,
}

impl Shared {
    /// A configured gateway admin (bare JID, any case).
    pub fn is_admin(&self, jid: &str) -> bool {
        let bare = xmpp::bare(jid);
        self.config
            .admins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(bare))
    }

    /// Whether the gateway serves this user (`bridge.allowed_domains`; admins always).
    pub fn serves(&self, jid: &str) -> bool {
        let allowed = &self.config.allowed_domains;
        let bare = xmpp::bare(jid);
        let domain = bare.rsplit_once('@').map_or(bare, |(_, d)| d);
        allowed.is_empty()
            || allowed.iter().any(|d| d.eq_ignore_ascii_case(domain))
            || self.is_admin(jid)
    }

    /// The admin's opt-in of a private room (by its JID), if any.
    pub fn private_room(&self, room_jid: &str) -> Option<&crate::config::PrivateRoom> {
        self.config
            .private_rooms
            .iter()
            .find(|p| p.room.eq_ignore_ascii_case(room_jid))
    }

    /// Whether a user may use a members-only room: listed in its opt-in, or an admin.
    pub fn is_member(&self, room_jid: &str, jid: &str) -> bool {
        let bare = xmpp::bare(jid);
        self.is_admin(jid)
            || self
                .private_room(room_jid)
                .is_some_and(|p| p.members.iter().any(|m| m.eq_ignore_ascii_case(bare)))
    }
}

#[derive(Clone)]
pub struct Bridge {
    pub(super) shared: Arc<Shared>,
    by_domain: Arc<HashMap<Arc<str>, Arc<NetCtx>>>,
    pub(super) by_network: Arc<HashMap<NetworkId, Arc<NetCtx>>>,
    live: Arc<Mutex<Live>>,
    /// Live sessions of registered users' own logins, by (network, bare JID).
    pub(super) sessions: Arc<Mutex<UserSessions>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// Events from either side that may wait in portal queues at once, all portals together
    /// (`bridge.backlog`). Each portal's queue is bounded too (`bridge.portal_queue`), but a
    /// thousand portals with a full queue each would hold a quarter million events: past
    /// this many, the router waits, and the wait reaches back to the network's socket and
    /// the XMPP stream (nothing is dropped). At least twice a portal's queue, so that one
    /// stuck portal cannot take them all.
    backlog: Arc<Semaphore>,
    /// Events for rooms and users the gateway has to look up on the network first, in
    /// tasks of their own (one at a time per room, in order), so that the XMPP stream
    /// never waits on a network.
    routing: Arc<Serial>,
}

/// Rooms looked up on the network at once, events waiting per room meanwhile, and the
/// longest a look-up may take.
const ROUTING_WORKERS: usize = 256;
const ROUTING_DEPTH: usize = 64;
const ROUTING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

type Queue = mpsc::Sender<PortalInput>;
/// Users' own sessions by (network, bare JID).
pub(super) type UserSessions = HashMap<(NetworkId, String), Arc<dyn Session>>;

/// The running portal tasks, and the two names events use for them, so that traffic for a
/// live portal reaches it without a store look-up.
#[derive(Default)]
struct Live {
    queues: HashMap<(NetworkId, i64), Queue>,
    by_room: HashMap<(NetworkId, RoomKey), i64>,
    by_jid: HashMap<(NetworkId, String), i64>,
}

impl Live {
    /// Take a portal out of the index: its task ends once its queue is drained.
    fn forget(&mut self, net: &NetworkId, id: i64) {
        self.queues.remove(&(net.clone(), id));
        self.by_room.retain(|(n, _), v| !(n == net && *v == id));
        self.by_jid.retain(|(n, _), v| !(n == net && *v == id));
    }

    fn queue(&self, net: &NetworkId, id: Option<&i64>) -> Option<Queue> {
        let id = *id?;
        self.queues
            .get(&(net.clone(), id))
            .filter(|tx| !tx.is_closed())
            .cloned()
    }

    fn for_jid(&self, net: &NetworkId, local: &str) -> Option<Queue> {
        self.queue(net, self.by_jid.get(&(net.clone(), local.to_string())))
    }

    fn for_room(&self, net: &NetworkId, key: &RoomKey) -> Option<Queue> {
        self.queue(net, self.by_room.get(&(net.clone(), key.clone())))
    }
}

type Route = Result<PortalRow, Option<xmpp::Outgoing>>;

impl Bridge {
    /// What every part of the bridge shares.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    pub fn new(
        shared: Shared,
        nets: Vec<Arc<NetCtx>>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Bridge {
        let by_domain = nets.iter().map(|n| (n.domain.clone(), n.clone())).collect();
        let by_network = nets.iter().map(|n| (n.id.clone(), n.clone())).collect();
        let backlog = shared.config.backlog.max(2 * shared.config.portal_queue);
        Bridge {
            shared: Arc::new(shared),
            by_domain: Arc::new(by_domain),
            by_network: Arc::new(by_network),
            live: Arc::new(Mutex::new(Live::default())),
            sessions: Arc::new(Mutex::new(HashMap::new())),
            tracker,
            shutdown,
            backlog: Arc::new(Semaphore::new(backlog)),
            routing: Serial::new(ROUTING_WORKERS, ROUTING_DEPTH),
        }
    }

    /// The network behind a component domain, and whether the domain is its spaces service.
    pub fn net_for_domain(&self, domain: &str) -> Option<(Arc<NetCtx>, bool)> {
        if let Some(n) = self.by_domain.get(domain) {
            return Some((n.clone(), false));
        }
        self.by_network
            .values()
            .find(|n| n.spaces.as_ref().is_some_and(|(d, _)| &**d == domain))
            .map(|n| (n.clone(), true))
    }

    /// Make sure every room the relay login sees has a portal (so it is listed and joinable),
    /// and start the portals that catch up at once (see `Store::portals_to_resume`).
    pub async fn sync_rooms(&self) {
        for net in self.by_network.values() {
            match net.relay.rooms().await {
                Ok(rooms) => {
                    for info in rooms.into_iter().filter(|r| r.kind != RoomKind::Direct) {
                        if !self.room_allowed(net, &info).await {
                            continue; // in a space nobody linked
                        }
                        if let Err(e) = self.ensure_portal(net, &info, None).await {
                            tracing::warn!(network = %net.id, room = %info.key.room, "cannot create portal: {e}");
                        }
                    }
                }
                Err(e) => tracing::warn!(network = %net.id, "cannot list rooms: {e}"),
            }
            match self.shared.store.portals_to_resume(&net.id).await {
                Ok(rows) => {
                    for row in rows {
                        self.portal_queue(net, row, None);
                    }
                }
                Err(e) => tracing::error!(network = %net.id, "portals not resumed: {e}"),
            }
        }
    }

    /// Who may use a room's portal, from what the network says of it now: closed when its
    /// space is not linked, or when not everyone on the network may see it and no admin
    /// opted it in (then it is members-only).
    pub(crate) async fn access_for(
        &self,
        net: &NetCtx,
        info: &RoomInfo,
        jid_local: &str,
    ) -> Access {
        if !self.room_allowed(net, info).await {
            return Access::Closed;
        }
        if !info.restricted || info.kind == RoomKind::Direct {
            return Access::Open;
        }
        let jid = format!("{jid_local}@{}", net.domain);
        match self.shared.private_room(&jid) {
            Some(_) => Access::Members,
            None => Access::Closed,
        }
    }

    /// The portal of a room (created if new), its access brought up to date with `info`.
    pub(super) async fn ensure_portal(
        &self,
        net: &NetCtx,
        info: &RoomInfo,
        direct_for: Option<(&str, &str)>,
    ) -> Result<PortalRow, crate::store::StoreError> {
        if let Some(p) = self.shared.store.portal_by_room(&net.id, &info.key).await? {
            let access = self.access_for(net, info, &p.jid_local).await;
            return self.set_access(net, p, access).await;
        }
        let (jid_local, xmpp_user) = match direct_for {
            Some((puppet, owner)) => (xmpp::direct_portal_local(puppet, owner), Some(owner)),
            None => (xmpp::encode_local(info.key.room.as_str()), None),
        };
        let access = self.access_for(net, info, &jid_local).await;
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
                space: info.space.as_ref().map(|s| s.to_string()),
                avatar: info.avatar_url.clone(),
                access,
            })
            .await
    }

    /// Change who may use a portal; a room that closes is closed for its occupants now.
    pub(crate) async fn set_access(
        &self,
        net: &NetCtx,
        row: PortalRow,
        access: Access,
    ) -> Result<PortalRow, crate::store::StoreError> {
        if row.access == access {
            return Ok(row);
        }
        self.shared.store.set_portal_access(row.id, access).await?;
        tracing::info!(network = %net.id, room = %row.key.room, "room access: {:?} -> {access:?}", row.access);
        let row = PortalRow { access, ..row };
        if access != Access::Open {
            // Occupants are put out (a members-only room's members join again); the task
            // is started only to say so, as a closed room: it fetches nothing. A live
            // portal keeps its old access: it is stopped, and the next event starts it with
            // the new one.
            let closing = PortalRow {
                access: Access::Closed,
                ..row.clone()
            };
            self.close_room(&net.id, closing).await;
        }
        Ok(row)
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The queue of the portal for `row`, its task started if it was not running. `first`:
    /// the network event it is started for (its backfill stops before that message).
    fn portal_queue(
        &self,
        net: &Arc<NetCtx>,
        row: PortalRow,
        first: Option<&RemoteEvent>,
    ) -> Queue {
        let mut live = self.live();
        if let Some(tx) = live.queue(&net.id, Some(&row.id)) {
            return tx;
        }
        let (tx, rx) = mpsc::channel(self.shared.config.portal_queue);
        live.queues.insert((net.id.clone(), row.id), tx.clone());
        live.by_room
            .insert((net.id.clone(), row.key.clone()), row.id);
        live.by_jid
            .insert((net.id.clone(), row.jid_local.clone()), row.id);
        let portal = Portal::new(row, net.clone(), self.shared.clone(), tx.downgrade());
        let first = first.and_then(|ev| match &ev.kind {
            RemoteEventKind::Message { id, .. } => Some(id.clone()),
            _ => None,
        });
        self.tracker
            .spawn(portal.run(rx, self.shutdown.clone(), first));
        tx
    }

    /// Close a room (its space was unlinked, it was deleted, it became private or
    /// members-only): occupants see it destroyed, joined sessions are forgotten, and its
    /// task ends; the next event finds the portal's new access in the store.
    pub(crate) async fn close_room(&self, network: &NetworkId, row: PortalRow) {
        let Some(net) = self.by_network.get(network).cloned() else {
            return;
        };
        let ev = RemoteEvent {
            room: row.key.clone(),
            sender: RemoteUserId::new(""),
            at: crate::store::now_ms(),
            kind: RemoteEventKind::RoomRemoved,
        };
        let id = row.id;
        let tx = self.portal_queue(&net, row, None);
        self.enqueue(&net, tx, PortalInput::Remote(Box::new(ev), None, None))
            .await;
        self.live().forget(network, id);
    }

    /// Queue an event with its place in the backlog, which it holds until its portal has
    /// handled it. Waits for a place are counted (`causeway_backlog_waits_total`): the
    /// portals could not keep up.
    async fn enqueue_held(&self, net: &NetCtx, tx: Queue, input: impl FnOnce(Held) -> PortalInput) {
        let held = match self.backlog.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                self.shared.metrics.inc(
                    "causeway_backlog_waits_total",
                    &[("network", net.id.as_str())],
                );
                // the semaphore is never closed
                self.backlog.clone().acquire_owned().await.ok()
            }
        };
        self.enqueue(net, tx, input(held)).await;
    }

    async fn enqueue(&self, net: &NetCtx, tx: Queue, input: PortalInput) {
        if tx.send(input).await.is_err() {
            tracing::warn!(network = %net.id, "portal task ended; event dropped");
        }
    }

    /// An event from an XMPP user.
    pub async fn xmpp_event(&self, ev: Addressed) {
        let Some((net, false)) = self.net_for_domain(&ev.domain) else {
            return;
        };
        // Users the gateway does not serve are refused here, before any look-up on the
        // network (a 1:1 message would open a conversation there); leaving is allowed.
        let leaving = matches!(
            ev.event,
            XmppEvent::Leave { .. } | XmppEvent::OccupantError { .. }
        );
        if !leaving && !self.shared.serves(ev.event.from()) {
            let refused = xmpp::outbound::error_for_event(
                &ev.domain,
                &ev.event,
                xmpp::outbound::Condition::Forbidden,
                Some("this gateway does not serve users of your server".into()),
            );
            if let Err(e) = net.link.send(refused.into_iter().collect()).await {
                tracing::warn!("cannot answer: {e}");
            }
            return;
        }
        let target = ev.event.target();
        // A direct conversation is named by (puppet, XMPP user), without asking the network.
        let lookup = match &ev.event {
            XmppEvent::Direct { from, .. } => xmpp::direct_portal_local(target, xmpp::bare(from)),
            _ => target.to_string(),
        };
        let key = format!("{}|{lookup}", net.id);
        if self.routing.busy(&key) {
            return self.route_later(net, key, lookup, ev).await; // behind the look-up
        }
        let live = self.live().for_jid(&net.id, &lookup);
        let tx = match live {
            Some(tx) => tx,
            None => match self.shared.store.portal_by_jid(&net.id, &lookup).await {
                Ok(Some(row)) if row.access != Access::Closed => self.portal_queue(&net, row, None),
                // new to the gateway (the network is asked), closed, or a store error: all
                // answered by `route_xmpp`, away from the stream
                _ => return self.route_later(net, key, lookup, ev).await,
            },
        };
        let ev = Box::new(ev.event);
        self.enqueue_held(&net, tx, |held| PortalInput::Xmpp(ev, held))
            .await;
    }

    /// Route an event in a task of its own: its room is looked up on the network first.
    async fn route_later(&self, net: Arc<NetCtx>, key: String, lookup: String, ev: Addressed) {
        let busy = xmpp::outbound::error_for_event(
            &ev.domain,
            &ev.event,
            xmpp::outbound::Condition::ResourceConstraint,
            Some("too many rooms being looked up; try again".into()),
        );
        let me = self.clone();
        let (link, network) = (net.link.clone(), net.id.clone());
        let job = async move {
            let live = me.live().for_jid(&net.id, &lookup);
            let tx = match live {
                Some(tx) => Ok(tx),
                None => {
                    let found =
                        tokio::time::timeout(ROUTING_TIMEOUT, me.route_xmpp(&ev, &net, &lookup));
                    match found.await {
                        Ok(Ok(row)) => Ok(me.portal_queue(&net, row, None)),
                        Ok(Err(reply)) => Err(reply),
                        Err(_) => Err(xmpp::outbound::error_for_event(
                            &ev.domain,
                            &ev.event,
                            xmpp::outbound::Condition::RemoteServerTimeout,
                            Some("the network did not answer in time".into()),
                        )),
                    }
                }
            };
            match tx {
                Ok(tx) => {
                    let ev = Box::new(ev.event);
                    me.enqueue_held(&net, tx, |held| PortalInput::Xmpp(ev, held))
                        .await;
                }
                Err(Some(reply)) => {
                    if let Err(e) = net.link.send(vec![reply]).await {
                        tracing::warn!("cannot answer: {e}");
                    }
                }
                Err(None) => {}
            }
        };
        if self.routing.run(&key, job).is_err() {
            tracing::warn!(network = %network, "event refused: too many rooms being looked up");
            if let Some(reply) = busy {
                if let Err(e) = link.send(vec![reply]).await {
                    tracing::warn!("cannot answer: {e}");
                }
            }
        }
    }

    /// The portal for an XMPP event with no running portal: from the store, else from the
    /// network (a room or direct conversation seen for the first time).
    async fn route_xmpp(&self, ev: &Addressed, net: &Arc<NetCtx>, lookup: &str) -> Route {
        use xmpp::outbound::{error_for_event, Condition};
        let refuse = |condition, text: Option<String>| {
            error_for_event(&ev.domain, &ev.event, condition, text)
        };
        let not_found = || {
            refuse(
                Condition::ItemNotFound,
                Some("no such room or user on this gateway".into()),
            )
        };
        let internal = |e: &dyn std::fmt::Display| {
            tracing::error!("store error while routing: {e}");
            refuse(Condition::InternalServerError, None)
        };
        let target = ev.event.target();
        match self.shared.store.portal_by_jid(&net.id, lookup).await {
            Ok(Some(row)) if row.access == Access::Closed => return Err(not_found()),
            Ok(Some(row)) => return Ok(row),
            Ok(None) => {}
            Err(e) => return Err(internal(&e)),
        }
        let Some(remote) = xmpp::decode_local(target) else {
            return Err(not_found());
        };
        let found = match &ev.event {
            XmppEvent::Direct { from, .. }
                if !self.shared.quotas.take(Per::NewDirect, xmpp::bare(from)) =>
            {
                return Err(refuse(
                    Condition::ResourceConstraint,
                    Some("you opened too many new conversations in the last hour".into()),
                ));
            }
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
            Ok(info) if !self.room_allowed(net, &info).await => Err(refuse(
                Condition::ItemNotFound,
                Some("this room's space is not linked to the gateway".into()),
            )),
            Ok(info) => {
                let direct = matches!(ev.event, XmppEvent::Direct { .. })
                    .then(|| (target, xmpp::bare(ev.event.from())));
                match self.ensure_portal(net, &info, direct).await {
                    Ok(row) if row.access == Access::Closed => Err(not_found()),
                    Ok(row) => {
                        if let Some((puppet, owner)) = direct {
                            self.add_contact(net, owner, puppet, &info.name).await;
                        }
                        Ok(row)
                    }
                    Err(e) => Err(internal(&e)),
                }
            }
            Err(NetworkError::NotFound(_)) => Err(not_found()),
            Err(e) => Err(refuse(Condition::from_network(&e), Some(e.to_string()))),
        }
    }

    /// A direct room a remote user opened with an XMPP user: its portal, and the remote
    /// user in the XMPP user's roster.
    async fn remote_direct(&self, net: &NetCtx, room: &RoomKey) -> Option<PortalRow> {
        let info = net.relay.room_info(room).await.ok()?;
        let owner = info.xmpp_user.clone()?;
        let remote = info.members.first()?;
        if info.kind != RoomKind::Direct {
            return None;
        }
        let puppet = xmpp::encode_local(remote.id.as_str());
        match self
            .ensure_portal(net, &info, Some((&puppet, &owner)))
            .await
        {
            Ok(row) => {
                self.add_contact(net, &owner, &puppet, &info.name).await;
                Some(row)
            }
            Err(e) => {
                tracing::error!(network = %net.id, "cannot create portal: {e}");
                None
            }
        }
    }

    /// A new 1:1 contact lands in the user's roster (XEP-0356 when the server allows it,
    /// else a XEP-0144 suggestion).
    async fn add_contact(&self, net: &NetCtx, owner: &str, puppet_local: &str, name: &str) {
        let privileged = net
            .roster_privilege
            .load(std::sync::atomic::Ordering::Relaxed);
        let item = xmpp::service_xml::roster_add(
            &net.domain,
            owner,
            &format!("{puppet_local}@{}", net.domain),
            name,
            &net.network.capabilities().display_name,
            privileged,
        );
        if let Err(e) = net.link.send(vec![item]).await {
            tracing::warn!(network = %net.id, "contact not added: {e}");
        }
    }

    /// After a gap in a network's events, every running portal catches up from its cursor
    /// before it takes the events queued after this (portals not running catch up when
    /// they start). Rooms with joined users are started, so their users get what was
    /// missed now rather than at the next event.
    async fn catch_up_all(&self, net: &Arc<NetCtx>) {
        tracing::warn!(network = %net.id, "the network's events had a gap: every room catches up");
        if let Ok(rows) = self.shared.store.portals_to_resume(&net.id).await {
            for row in rows {
                self.portal_queue(net, row, None);
            }
        }
        let queues: Vec<Queue> = {
            let live = self.live();
            live.queues
                .iter()
                .filter(|((n, _), tx)| *n == net.id && !tx.is_closed())
                .map(|(_, tx)| tx.clone())
                .collect()
        };
        for tx in queues {
            self.enqueue(net, tx, PortalInput::CatchUp).await;
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
            if matches!(env.event.kind, RemoteEventKind::Gap) {
                self.catch_up_all(&net).await;
                continue;
            }
            if let RemoteEventKind::LoginState { state } = &env.event.kind {
                match state {
                    LoginState::Connected => {
                        tracing::info!(network = %net.id, login = %env.login, "connected")
                    }
                    other => {
                        tracing::warn!(network = %net.id, login = %env.login, "login state: {other:?}")
                    }
                }
                continue;
            }
            let room = env.event.room.clone();
            if matches!(
                env.event.kind,
                RemoteEventKind::RoomChanged(_) | RemoteEventKind::RoomRemoved
            ) && !self.space_event(&net, &env.event).await
            {
                continue;
            }
            let live = self.live().for_room(&net.id, &room);
            if let Some(tx) = live {
                let ev = Box::new(env.event);
                let applied = env.applied;
                self.enqueue_held(&net, tx, |held| PortalInput::Remote(ev, held, applied))
                    .await;
                continue;
            }
            let row = match self.shared.store.portal_by_room(&net.id, &room).await {
                // not bridged: a private room nobody opted in, an unlinked space
                Ok(Some(row)) if row.access == Access::Closed => continue,
                Ok(Some(row)) => row,
                Ok(None) if room.receiver.is_none() => match net.relay.room_info(&room).await {
                    Ok(info) if !self.room_allowed(&net, &info).await => continue,
                    Ok(info) => match self.ensure_portal(&net, &info, None).await {
                        Ok(row) if row.access == Access::Closed => continue,
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
                Ok(None) => match self.remote_direct(&net, &room).await {
                    Some(row) => row,
                    None => {
                        tracing::debug!(network = %net.id, room = %room.room, "event for a direct room without portal");
                        continue;
                    }
                },
                Err(e) => {
                    tracing::error!(network = %net.id, "store error: {e}");
                    continue;
                }
            };
            let tx = self.portal_queue(&net, row, Some(&env.event));
            let ev = Box::new(env.event);
            let applied = env.applied;
            self.enqueue_held(&net, tx, |held| PortalInput::Remote(ev, held, applied))
                .await;
        }
    }
}
