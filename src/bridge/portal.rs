//! One task per bridged room: the only place a room's events are handled, so they keep
//! their order. It maps ids through the store, stores each message before anything about it
//! goes out, and keeps the room's occupants.

use super::occupant_id;
use super::occupants::{Occupants, RemoteOccupant, XmppOccupant};
use super::router::{NetCtx, Shared};
use crate::store::{MessageRow, PortalRow};
use crate::xmpp::outbound::{
    self as out, Condition, ErrorReply, OccupantPresence, Outgoing, RoomMessage,
};
use crate::xmpp::{self, set_attr, XmppEvent};
use causeway_api::*;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub enum PortalInput {
    Xmpp(XmppEvent),
    Remote(RemoteEvent),
}

/// How many of our own TxnIds are remembered to recognise echoes.
const TXN_MEMORY: usize = 4096;
/// Largest catch-up page asked of the network after downtime.
const CATCH_UP_PAGE: usize = 200;

pub struct Portal {
    row: PortalRow,
    room_jid: String,
    net: Arc<NetCtx>,
    shared: Arc<Shared>,
    occ: Occupants,
    txns: HashSet<TxnId>,
    txn_order: VecDeque<TxnId>,
}

impl Portal {
    pub fn new(row: PortalRow, net: Arc<NetCtx>, shared: Arc<Shared>) -> Portal {
        let room_jid = format!("{}@{}", row.jid_local, net.domain);
        Portal {
            row,
            room_jid,
            net,
            shared,
            occ: Occupants::default(),
            txns: HashSet::new(),
            txn_order: VecDeque::new(),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<PortalInput>, shutdown: CancellationToken) {
        self.load_members().await;
        self.catch_up().await;
        loop {
            let input = tokio::select! {
                _ = shutdown.cancelled() => return,
                i = rx.recv() => match i { Some(i) => i, None => return },
            };
            match input {
                PortalInput::Xmpp(ev) => self.on_xmpp(ev).await,
                PortalInput::Remote(ev) => self.on_remote(ev).await,
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

    async fn load_members(&mut self) {
        if self.row.kind == RoomKind::Direct {
            return;
        }
        match self.net.relay.room_info(&self.row.key).await {
            Ok(info) => {
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
    async fn catch_up(&mut self) {
        let Ok(Some(mut cursor)) = self.shared.store.cursor(self.row.id).await else {
            return;
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

    /// A remote user seen for the first time: puppet upserted, occupant presence sent.
    async fn add_member(&mut self, user: &UserInfo) -> String {
        if let Some(m) = self.occ.remote.get(&user.id) {
            return m.nick.clone();
        }
        let jid_local = xmpp::encode_local(user.id.as_str());
        if let Err(e) = self
            .shared
            .store
            .upsert_puppet(&self.net.id, user, &jid_local)
            .await
        {
            tracing::warn!(network = %self.net.id, user = %user.id, "puppet not stored: {e}");
        }
        let nick = self.occ.free_nick(&user.display_name, user.id.as_str());
        let jid = self.puppet_jid(&user.id);
        let presences = self
            .occ
            .sessions()
            .into_iter()
            .map(|to| self.member_presence(&nick, &jid, &user.id, &to, false))
            .collect();
        self.occ.remote.insert(
            user.id.clone(),
            RemoteOccupant {
                nick: nick.clone(),
                jid,
            },
        );
        self.send(presences).await;
        nick
    }

    fn member_presence(
        &self,
        nick: &str,
        jid: &str,
        user: &RemoteUserId,
        to: &str,
        gone: bool,
    ) -> Outgoing {
        out::occupant_presence(&OccupantPresence {
            room: self.room_jid.clone(),
            nick: nick.to_string(),
            to: to.to_string(),
            unavailable: gone,
            affiliation: "member",
            role: "participant",
            jid: Some(jid.to_string()),
            occupant_id: self.oid(&format!("remote:{user}")),
            ..Default::default()
        })
    }

    fn xmpp_presence(
        &self,
        o: &XmppOccupant,
        to: &str,
        statuses: Vec<u16>,
        gone: bool,
    ) -> Outgoing {
        out::occupant_presence(&OccupantPresence {
            room: self.room_jid.clone(),
            nick: o.nick.clone(),
            to: to.to_string(),
            unavailable: gone,
            affiliation: "none",
            role: "participant",
            jid: o.sessions.iter().next().cloned(),
            statuses,
            occupant_id: self.oid(&format!("xmpp:{}", o.bare)),
            ..Default::default()
        })
    }

    async fn sender_nick(&mut self, user: &RemoteUserId) -> String {
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

    fn remember_txn(&mut self, txn: TxnId) {
        if self.txn_order.len() >= TXN_MEMORY {
            if let Some(old) = self.txn_order.pop_front() {
                self.txns.remove(&old);
            }
        }
        self.txns.insert(txn.clone());
        self.txn_order.push_back(txn);
    }

    async fn on_remote(&mut self, ev: RemoteEvent) {
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
                match self.shared.store.insert_messages(&[row], true).await {
                    Ok(fresh) if fresh.first() == Some(&true) => {}
                    Ok(_) => return, // delivered before: drop the duplicate
                    Err(e) => {
                        tracing::error!(network = %self.net.id, room = %self.row.key.room, remote_id = %id, "message not stored, not delivered: {e}");
                        self.shared
                            .metrics
                            .inc("causeway_errors_total", &[("kind", "store")]);
                        return;
                    }
                }
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
                self.send(stanzas).await;
                self.shared.metrics.inc(
                    "causeway_messages_bridged_total",
                    &[("network", self.net.id.as_str()), ("direction", "to_xmpp")],
                );
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

    async fn on_xmpp(&mut self, ev: XmppEvent) {
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
                    xmpp::disco::room_info(&self.room_jid, &from, &id, &self.row, self.occ.count())
                };
                self.send(vec![reply]).await;
            }
            XmppEvent::Groupchat {
                from,
                id,
                origin_id,
                body,
                ..
            } => self.groupchat(from, id, origin_id, body).await,
            XmppEvent::Direct {
                from,
                id,
                body,
                user,
            } => self.direct(from, id, body, user).await,
        }
    }

    async fn join(
        &mut self,
        from: String,
        nick: String,
        id: Option<String>,
        history: Option<usize>,
    ) {
        if self.row.kind == RoomKind::Direct {
            let e = self.error(
                "presence",
                &from,
                None,
                id.as_deref(),
                Condition::ItemNotFound,
                None,
            );
            return self.send(vec![e]).await;
        }
        let bare = xmpp::bare(&from).to_string();
        let room_nick = format!("{}/{}", self.room_jid, nick);
        match self.occ.holder(&nick) {
            Some(Ok(holder)) if holder == bare => {}
            None => {}
            Some(_) => {
                let e = self.error(
                    "presence",
                    &from,
                    Some(&room_nick),
                    id.as_deref(),
                    Condition::Conflict,
                    Some("that nickname is taken".into()),
                );
                return self.send(vec![e]).await;
            }
        }
        // A nick change by a user already in the room.
        if let Some(o) = self.occ.xmpp.get(&bare).cloned() {
            if o.sessions.contains(&from) && o.nick != nick {
                let mut items = Vec::new();
                for to in self.occ.sessions() {
                    let mut codes = vec![303];
                    if o.sessions.contains(&to) {
                        codes.push(110);
                    }
                    let mut p = OccupantPresence {
                        room: self.room_jid.clone(),
                        nick: o.nick.clone(),
                        to: to.clone(),
                        unavailable: true,
                        affiliation: "none",
                        role: "participant",
                        jid: Some(from.clone()),
                        new_nick: Some(nick.clone()),
                        statuses: codes,
                        occupant_id: self.oid(&format!("xmpp:{bare}")),
                        ..Default::default()
                    };
                    items.push(out::occupant_presence(&p));
                    p.unavailable = false;
                    p.nick = nick.clone();
                    p.new_nick = None;
                    p.statuses = if o.sessions.contains(&to) {
                        vec![110]
                    } else {
                        vec![]
                    };
                    if p.statuses.contains(&110) {
                        p.id = id.clone();
                    }
                    items.push(out::occupant_presence(&p));
                }
                if let Some(occ) = self.occ.xmpp.get_mut(&bare) {
                    occ.nick = nick;
                }
                return self.send(items).await;
            }
            if o.sessions.contains(&from) {
                // A presence update from a joined session: answer with its self-presence.
                let mut p = self.xmpp_presence(&o, &from, vec![110], false);
                if let Some(i) = &id {
                    set_attr(&mut p.element, "id", i.as_str());
                }
                return self.send(vec![p]).await;
            }
        }
        let is_new_occupant = !self.occ.xmpp.contains_key(&bare);
        let occ = self
            .occ
            .xmpp
            .entry(bare.clone())
            .or_insert_with(|| XmppOccupant {
                bare: bare.clone(),
                nick: nick.clone(),
                sessions: Default::default(),
            });
        occ.sessions.insert(from.clone());
        let me = occ.clone();

        let mut items = Vec::new();
        // 1. every other occupant's presence, to the joining session
        for (user, m) in &self.occ.remote {
            items.push(self.member_presence(&m.nick, &m.jid, user, &from, false));
        }
        for o in self.occ.xmpp.values().filter(|o| o.bare != bare) {
            items.push(self.xmpp_presence(o, &from, vec![], false));
        }
        // the newcomer's presence to everyone else
        if is_new_occupant {
            for to in self
                .occ
                .sessions()
                .into_iter()
                .filter(|s| xmpp::bare(s) != bare)
            {
                items.push(self.xmpp_presence(&me, &to, vec![], false));
            }
        }
        // 2. self-presence, reflecting the join's id
        let mut own = self.xmpp_presence(&me, &from, vec![100, 110, 170], false);
        if let Some(i) = &id {
            set_attr(&mut own.element, "id", i.as_str());
        }
        items.push(own);
        // 3. history
        let want = history
            .unwrap_or(self.shared.config.history_on_join)
            .min(self.shared.config.history_on_join);
        if want > 0 {
            match self
                .shared
                .store
                .recent_messages(self.row.id, want as i64)
                .await
            {
                Ok(rows) => {
                    for m in rows {
                        let who = if m.from_xmpp {
                            format!("xmpp:{}", m.sender)
                        } else {
                            format!("remote:{}", m.sender)
                        };
                        items.push(out::room_message(&RoomMessage {
                            room: self.room_jid.clone(),
                            nick: m.sender_nick.clone(),
                            to: from.clone(),
                            id: m.xmpp_id.clone().unwrap_or_else(|| m.stanza_id.clone()),
                            stanza_id: m.stanza_id.clone(),
                            origin_id: m.origin_id.clone(),
                            body: m.body.unwrap_or_default(),
                            occupant_id: self.oid(&who),
                            delay: Some(m.sent_at),
                        }));
                    }
                }
                Err(e) => tracing::warn!(network = %self.net.id, "history not read: {e}"),
            }
        }
        // 4. subject
        items.push(out::room_subject(
            &self.room_jid,
            &from,
            self.row.topic.as_deref().unwrap_or(""),
        ));
        self.send(items).await;
    }

    async fn leave(&mut self, from: &str, codes: Vec<u16>) {
        let bare = xmpp::bare(from).to_string();
        let Some(o) = self.occ.xmpp.get_mut(&bare) else {
            return;
        };
        if !o.sessions.remove(from) {
            return;
        }
        let me = o.clone();
        let mut items = Vec::new();
        if codes.contains(&110) {
            let mut gone = me.clone();
            gone.sessions.insert(from.to_string());
            items.push(self.xmpp_presence(&gone, from, vec![110], true));
        }
        if me.sessions.is_empty() {
            self.occ.xmpp.remove(&bare);
            let others: Vec<u16> = codes.into_iter().filter(|c| *c != 110).collect();
            for to in self.occ.sessions() {
                items.push(self.xmpp_presence(&me, &to, others.clone(), true));
            }
        }
        self.send(items).await;
    }

    async fn groupchat(
        &mut self,
        from: String,
        id: Option<String>,
        origin_id: Option<String>,
        body: String,
    ) {
        let Some(me) = self.occ.by_session(&from).cloned() else {
            let e = self.error(
                "message",
                &from,
                None,
                id.as_deref(),
                Condition::NotAcceptable,
                Some("join the room before sending to it".into()),
            );
            return self.send(vec![e]).await;
        };
        let sent = match self
            .send_remote(&me.nick, &me.bare, &body, id.clone(), origin_id.clone())
            .await
        {
            Ok(s) if !s.ids.is_empty() => s,
            Ok(_) => return,
            Err(e) => return self.refused(&from, None, id.as_deref(), &e).await,
        };
        let stanza_id = sent.ids[0].to_string();
        let oid = self.oid(&format!("xmpp:{}", me.bare));
        let items = self
            .occ
            .sessions()
            .into_iter()
            .map(|to| {
                out::room_message(&RoomMessage {
                    room: self.room_jid.clone(),
                    nick: me.nick.clone(),
                    to,
                    id: id.clone().unwrap_or_else(|| stanza_id.clone()),
                    stanza_id: stanza_id.clone(),
                    origin_id: origin_id.clone(),
                    body: body.clone(),
                    occupant_id: oid.clone(),
                    delay: None,
                })
            })
            .collect();
        self.send(items).await;
        self.shared.metrics.inc(
            "causeway_messages_bridged_total",
            &[
                ("network", self.net.id.as_str()),
                ("direction", "to_remote"),
            ],
        );
    }

    /// Send an XMPP user's text to the network (as a Persona of the relay login) and store
    /// one row per remote part; every part maps to the first part's stanza-id.
    async fn send_remote(
        &mut self,
        nick: &str,
        bare: &str,
        body: &str,
        xmpp_id: Option<String>,
        origin_id: Option<String>,
    ) -> Result<Sent, NetworkError> {
        let txn = TxnId::new(format!("cw{:016x}", rand::random::<u64>()));
        self.remember_txn(txn.clone());
        let msg = OutgoingMessage {
            room: self.row.key.clone(),
            txn,
            content: Content::text(body),
            reply_to: None,
            persona: Some(Persona {
                nick: nick.to_string(),
                avatar_url: None,
                xmpp_user: bare.to_string(),
            }),
        };
        let sent = self.net.relay.send_message(msg).await?;
        let Some(first) = sent.ids.first() else {
            return Ok(sent);
        };
        let rows: Vec<MessageRow> = sent
            .ids
            .iter()
            .enumerate()
            .map(|(part, rid)| MessageRow {
                portal_id: self.row.id,
                remote_id: rid.clone(),
                part: part as i64,
                stanza_id: first.to_string(),
                origin_id: origin_id.clone(),
                xmpp_id: xmpp_id.clone(),
                sender: bare.to_string(),
                sender_nick: nick.to_string(),
                from_xmpp: true,
                body: (part == 0).then(|| body.to_string()),
                reply_to: None,
                sent_at: sent.at,
            })
            .collect();
        if let Err(e) = self.shared.store.insert_messages(&rows, true).await {
            // The network has it; without the row, later edits of it will not resolve.
            tracing::error!(network = %self.net.id, room = %self.row.key.room, "sent message not stored: {e}");
        }
        Ok(sent)
    }

    /// The network refused: the sender gets an error message (from `as_jid`, else the room).
    async fn refused(&self, from: &str, as_jid: Option<&str>, id: Option<&str>, e: &NetworkError) {
        tracing::warn!(network = %self.net.id, room = %self.row.key.room, kind = e.kind(), "the network refused a message: {e}");
        self.shared
            .metrics
            .inc("causeway_errors_total", &[("kind", e.kind())]);
        let err = self.error(
            "message",
            from,
            as_jid,
            id,
            Condition::from_network(e),
            Some(e.to_string()),
        );
        self.send(vec![err]).await;
    }

    async fn direct(&mut self, from: String, id: Option<String>, body: String, user: String) {
        let puppet = format!("{user}@{}", self.net.domain);
        let bare = xmpp::bare(&from).to_string();
        if self.row.xmpp_user.as_deref() != Some(bare.as_str()) {
            let e = self.error(
                "message",
                &from,
                Some(&puppet),
                id.as_deref(),
                Condition::Forbidden,
                None,
            );
            return self.send(vec![e]).await;
        }
        match self
            .send_remote(&bare, &bare, &body, id.clone(), None)
            .await
        {
            Ok(_) => {
                self.shared.metrics.inc(
                    "causeway_messages_bridged_total",
                    &[
                        ("network", self.net.id.as_str()),
                        ("direction", "to_remote"),
                    ],
                );
            }
            Err(e) => {
                // The error comes from the puppet the user wrote to.
                self.refused(&from, Some(&puppet), id.as_deref(), &e).await;
            }
        }
    }
}
