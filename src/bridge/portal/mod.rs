//! One task per bridged room: the only place a room's events are handled, so they keep
//! their order. It maps ids through the store, stores each message before anything about it
//! goes out, and keeps the room's occupants.

mod archive;
mod avatars;
mod changes;
mod incoming;
mod occupancy;
mod outgoing;
mod recent;
mod remote;

use super::occupant_id;
use super::occupants::Occupants;
use super::router::{NetCtx, Shared};
use crate::store::{Access, PortalRow};
use crate::xmpp::outbound::{self as out, Condition, ErrorReply, Outgoing};
use crate::xmpp::{self, XmppEvent};
use causeway_api::*;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events are boxed: a queue holds its slots in blocks of 32, and a thousand portals' queues
/// of 300-byte slots held 17 MiB in the memory bench before any event waited in them.
pub enum PortalInput {
    Xmpp(Box<XmppEvent>, Held),
    /// A network event; the network is told once it is stored (`Applied`) if it asked.
    Remote(Box<RemoteEvent>, Held, Option<Applied>),
    /// A member's avatar was copied: its XEP-0153 hash.
    Avatar {
        user: RemoteUserId,
        photo: String,
    },
    /// The network's events had a gap: catch up from the cursor now.
    CatchUp,
}

/// A place in the router's backlog of queued events, given back once the event is handled.
pub type Held = Option<tokio::sync::OwnedSemaphorePermit>;

/// How many of our own TxnIds are remembered to recognise echoes.
const TXN_MEMORY: usize = 4096;
/// Largest catch-up page asked of the network after downtime.
const CATCH_UP_PAGE: usize = 200;

pub struct Portal {
    row: PortalRow,
    /// This portal's own queue, for work it hands to other tasks (avatar copies).
    me: mpsc::WeakSender<PortalInput>,
    room_jid: String,
    net: Arc<NetCtx>,
    shared: Arc<Shared>,
    occ: Occupants,
    /// Whether the remote room's member list is among the occupants. It is read when the
    /// first XMPP user joins: until then nobody sees it, and a thousand portals live only
    /// for their traffic would each hold up to a thousand members. Speakers are occupants
    /// from their first message either way.
    members_loaded: bool,
    txns: HashSet<TxnId>,
    txn_order: VecDeque<TxnId>,
    recent: recent::Recent,
}

impl Portal {
    pub fn new(
        row: PortalRow,
        net: Arc<NetCtx>,
        shared: Arc<Shared>,
        me: mpsc::WeakSender<PortalInput>,
    ) -> Portal {
        let room_jid = format!("{}@{}", row.jid_local, net.domain);
        Portal {
            row,
            me,
            room_jid,
            net,
            shared,
            occ: Occupants::default(),
            members_loaded: false,
            txns: HashSet::new(),
            txn_order: VecDeque::new(),
            recent: recent::Recent::default(),
        }
    }

    /// The portal's task. `first`: the network message that brought it up, if one did (it
    /// waits in `rx`): a backfill stops before it.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<PortalInput>,
        shutdown: CancellationToken,
        first: Option<RemoteMessageId>,
    ) {
        self.load_occupants().await;
        // (a closed room is started only to be closed: nothing of it is fetched)
        if self.row.access != Access::Closed {
            self.copy_room_avatar();
            if !self.occ.xmpp.is_empty() {
                self.load_members().await;
            }
            self.catch_up(first.as_ref()).await;
        }
        loop {
            let input = tokio::select! {
                _ = shutdown.cancelled() => return,
                i = rx.recv() => match i { Some(i) => i, None => return },
            };
            match input {
                PortalInput::Xmpp(ev, _held) => self.on_xmpp(*ev).await,
                PortalInput::Remote(ev, _held, applied) => {
                    self.on_remote(*ev).await;
                    if let Some(applied) = applied {
                        // what it meant is stored before the network hears it was taken
                        match self.net.link.flush().await {
                            Ok(()) => drop(applied),
                            Err(e) => {
                                tracing::warn!(network = %self.net.id, "not acknowledged to the network (it sends it again): {e}");
                                applied.abandon();
                            }
                        }
                    }
                }
                PortalInput::Avatar { user, photo } => self.avatar_ready(user, photo).await,
                PortalInput::CatchUp => {
                    if self.row.access != Access::Closed {
                        self.catch_up(None).await
                    }
                }
            }
        }
    }

    async fn send(&self, items: Vec<Outgoing>) {
        if items.is_empty() {
            return;
        }
        if let Err(e) = self.net.link.send(items).await {
            tracing::error!(network = %self.net.id, room = %self.row.key.room, "cannot queue stanzas: {e}");
        }
    }

    fn oid(&self, who: &str) -> String {
        occupant_id(&self.shared.occupant_key, who)
    }

    fn puppet_jid(&self, user: &RemoteUserId) -> String {
        format!("{}@{}", xmpp::encode_local(user.as_str()), self.net.domain)
    }

    /// The room's picture (XEP-0486), copied ahead of the first vCard request.
    fn copy_room_avatar(&self) {
        if let Some(url) = self.row.avatar.clone() {
            let media = self.shared.media.clone();
            let origins = self.net.network.origins();
            tokio::spawn(async move {
                if let Err(e) = media.copy_of(&url, &origins).await {
                    tracing::debug!("room avatar not copied: {e}");
                }
            });
        }
    }

    /// The remote room's members as occupants (once; again after a failure).
    async fn load_members(&mut self) {
        if self.members_loaded || self.row.kind == RoomKind::Direct {
            return;
        }
        match self.net.relay.room_info(&self.row.key).await {
            Ok(info) => {
                self.members_loaded = true;
                for m in info.members {
                    self.add_member(&m).await;
                }
            }
            Err(e) => {
                tracing::warn!(network = %self.net.id, room = %self.row.key.room, "no member list: {e}")
            }
        }
    }

    /// After downtime: what the network produced since the cursor, in order, before live traffic.
    async fn catch_up(&mut self, first: Option<&RemoteMessageId>) {
        let mut cursor = match self.shared.store.cursor(self.row.id).await {
            Ok(Some(c)) => c,
            Ok(None) => return self.backfill(first).await,
            Err(e) => {
                return tracing::error!(network = %self.net.id, room = %self.row.key.room, "no cursor, no catch-up: {e}")
            }
        };
        loop {
            let page = match self
                .net
                .relay
                .history(&self.row.key, Some(&cursor), CATCH_UP_PAGE)
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(network = %self.net.id, room = %self.row.key.room, "catch-up failed: {e}");
                    return;
                }
            };
            let n = page.len();
            for ev in page {
                if let RemoteEventKind::Message { id, .. } = &ev.kind {
                    cursor = id.clone();
                }
                self.on_remote(ev).await;
            }
            if n < CATCH_UP_PAGE {
                return;
            }
        }
    }

    pub(super) fn remember_txn(&mut self, txn: TxnId) {
        if self.txn_order.len() >= TXN_MEMORY {
            if let Some(old) = self.txn_order.pop_front() {
                self.txns.remove(&old);
            }
        }
        self.txns.insert(txn.clone());
        self.txn_order.push_back(txn);
    }

    fn error(
        &self,
        kind: &'static str,
        to: &str,
        from: Option<&str>,
        id: Option<&str>,
        condition: Condition,
        text: Option<String>,
    ) -> Outgoing {
        out::error_reply(&ErrorReply {
            kind,
            from: from
                .map(String::from)
                .unwrap_or_else(|| self.room_jid.clone()),
            to: to.to_string(),
            id: id.map(String::from),
            condition,
            text,
        })
    }

    /// Who may do what here: the gateway's users only (`bridge.allowed_domains`), a closed
    /// room nobody, a members-only room its members (and admins); the history only those in
    /// the room (or, members-only, its members). Leaving is always allowed.
    fn refusal(&self, ev: &XmppEvent) -> Option<(Condition, &'static str)> {
        if matches!(
            ev,
            XmppEvent::Leave { .. } | XmppEvent::OccupantError { .. }
        ) {
            return None;
        }
        let from = ev.from();
        if !self.shared.serves(from) {
            return Some((
                Condition::Forbidden,
                "this gateway does not serve users of your server",
            ));
        }
        match self.row.access {
            Access::Closed => Some((Condition::ItemNotFound, "no such room on this gateway")),
            Access::Members if !self.shared.is_member(&self.room_jid, from) => {
                let c = match ev {
                    XmppEvent::Join { .. } => Condition::RegistrationRequired,
                    _ => Condition::ItemNotFound,
                };
                Some((c, "this room is for its members only"))
            }
            Access::Open
                if matches!(ev, XmppEvent::Archive { .. })
                    && self.row.kind != RoomKind::Direct
                    && !self.occ.xmpp.contains_key(xmpp::bare(from)) =>
            {
                Some((Condition::Forbidden, "join the room to read its history"))
            }
            _ => None,
        }
    }

    async fn on_xmpp(&mut self, ev: XmppEvent) {
        if let Some((condition, text)) = self.refusal(&ev) {
            let refused = out::error_for_event(&self.net.domain, &ev, condition, Some(text.into()));
            return self.send(refused.into_iter().collect()).await;
        }
        match ev {
            XmppEvent::Join {
                from,
                nick,
                id,
                history,
                ..
            } => self.join(from, nick, id, history).await,
            XmppEvent::Leave { from, .. } => self.leave(&from, vec![110]).await,
            XmppEvent::OccupantError { from, .. } => {
                if self.occ.by_session(&from).is_some() {
                    tracing::info!(network = %self.net.id, room = %self.row.key.room, "occupant session bounced an error; removing it");
                    self.leave(&from, vec![333]).await;
                }
            }
            XmppEvent::SelfPing { nick, from, id, .. } => {
                let room_nick = format!("{}/{}", self.room_jid, nick);
                let reply = match self.occ.by_session(&from) {
                    Some(o) if o.nick == nick => out::iq_result(&room_nick, &from, &id, None),
                    _ => self.error(
                        "iq",
                        &from,
                        Some(&room_nick),
                        Some(&id),
                        Condition::NotAcceptable,
                        None,
                    ),
                };
                self.send(vec![reply]).await;
            }
            XmppEvent::RoomInfo { from, id, .. } => {
                let reply = if self.row.kind == RoomKind::Direct {
                    self.error("iq", &from, None, Some(&id), Condition::ItemNotFound, None)
                } else {
                    let avatar_hash = match &self.row.avatar {
                        Some(url) => self.shared.media.known(url).await.map(|m| m.sha1),
                        None => None,
                    };
                    let about = xmpp::disco::RoomAbout {
                        occupants: self.occ.count(),
                        caps: self.net.network.capabilities(),
                        space: self
                            .row
                            .space
                            .as_ref()
                            .map(|s| format!("xmpp:{}?;node={s}", self.net.spaces_service().0)),
                        avatar_hash,
                    };
                    xmpp::disco::room_info(&self.room_jid, &from, &id, &self.row, &about)
                };
                self.send(vec![reply]).await;
            }
            XmppEvent::Groupchat {
                from,
                id,
                origin_id,
                payload,
                ..
            } => self.groupchat(from, id, origin_id, payload).await,
            XmppEvent::Direct {
                from,
                id,
                payload,
                user,
            } => self.direct(from, id, payload, user).await,
            XmppEvent::Moderate {
                from,
                id,
                target,
                reason,
                ..
            } => self.moderate(from, id, target, reason).await,
            XmppEvent::Archive {
                from, id, query, ..
            } => self.archive(from, id, query).await,
            XmppEvent::OccupantVCard { nick, from, id, .. } => {
                self.occupant_vcard(&nick, &from, &id).await
            }
        }
    }
}
