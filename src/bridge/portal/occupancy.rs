//! Who is in the room: joins in XEP-0045 order, nick changes, leaves, and the presences
//! of remote members (puppets).

use super::Portal;
use crate::bridge::occupants::{RemoteOccupant, XmppOccupant};
use crate::store::OccupantRow;
use crate::xmpp;
use crate::xmpp::outbound::{self as out, Condition, OccupantPresence, Outgoing};
use causeway_api::*;

impl Portal {
    /// A remote user seen for the first time: puppet upserted, occupant presence sent.
    pub(super) async fn add_member(&mut self, user: &UserInfo) -> String {
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
        let photo = self.photo_of(user).await;
        self.occ.remote.insert(
            user.id.clone(),
            RemoteOccupant {
                nick: nick.clone(),
                photo,
            },
        );
        let presences = self
            .occ
            .sessions()
            .into_iter()
            .map(|to| self.member_presence(&nick, &jid, &user.id, &to, false))
            .collect();
        self.send(presences).await;
        nick
    }

    pub(super) fn member_presence(
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
            photo: self.occ.remote.get(user).and_then(|m| m.photo.clone()),
            ..Default::default()
        })
    }

    pub(super) fn xmpp_presence(
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

    pub(super) async fn join(
        &mut self,
        from: String,
        nick: String,
        id: Option<String>,
        history: Option<usize>,
    ) {
        let refusal = if self.row.kind == RoomKind::Direct {
            Some(None)
        } else if self.occ.by_session(&from).is_none() && !self.space_linked().await {
            Some(Some(
                "this room's space is not linked to the gateway".to_string(),
            ))
        } else {
            None
        };
        if let Some(text) = refusal {
            let e = self.error(
                "presence",
                &from,
                None,
                id.as_deref(),
                Condition::ItemNotFound,
                text,
            );
            return self.send(vec![e]).await;
        }
        self.load_members().await;
        let bare = xmpp::bare(&from).to_string();
        self.shared.personas.refresh(
            &bare,
            self.net.domain.clone(),
            self.net.link.clone(),
            self.shared.media.clone(),
        );
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
                self.persist_sessions(&bare).await;
                return self.send(items).await;
            }
            if o.sessions.contains(&from) {
                // A presence update from a joined session: answer with its self-presence.
                let mut p = self.xmpp_presence(&o, &from, vec![110], false);
                if let Some(i) = &id {
                    p.set_id(i);
                }
                return self.send(vec![p]).await;
            }
        }
        let is_new_occupant = !self.occ.xmpp.contains_key(&bare);
        if is_new_occupant
            && !self
                .shared
                .quotas
                .join(&bare, (self.net.id.as_str(), self.row.id))
        {
            let e = self.error(
                "presence",
                &from,
                Some(&room_nick),
                id.as_deref(),
                Condition::ResourceConstraint,
                Some("you are in as many rooms as this gateway allows".into()),
            );
            return self.send(vec![e]).await;
        }
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
        self.persist_sessions(&bare).await;

        let mut items = Vec::new();
        // 1. every other occupant's presence, to the joining session
        for (user, m) in &self.occ.remote {
            let jid = self.puppet_jid(user);
            items.push(self.member_presence(&m.nick, &jid, user, &from, false));
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
            own.set_id(i);
        }
        items.push(own);
        // 3. history
        let want = history
            .unwrap_or(self.shared.config.history_on_join)
            .min(self.shared.config.history_on_join);
        if want > 0 {
            // Messages of this room still on their way into the store must be in the history
            // (the joiner was not among their recipients).
            if let Err(e) = self.net.link.flush().await {
                tracing::warn!(network = %self.net.id, "history may miss the newest messages: {e}");
            }
            match self
                .shared
                .store
                .recent_messages(self.row.id, want as i64)
                .await
            {
                Ok(rows) => {
                    for m in rows {
                        items.push(self.stored_message(&m, &from, Some(m.sent_at), None).await);
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
        if is_new_occupant {
            self.membership(&me, true).await;
        }
    }

    /// Keep a user's joined sessions in the store, so a restart of Causeway does not drop
    /// them from the room (their clients still think they are in it).
    /// A room outside any space, or in one an admin linked.
    async fn space_linked(&self) -> bool {
        match &self.row.space {
            None => true,
            Some(s) => matches!(self.shared.store.space(&self.net.id, s).await, Ok(Some(_))),
        }
    }

    async fn persist_sessions(&self, bare: &str) {
        let Some(o) = self.occ.xmpp.get(bare) else {
            return;
        };
        for session in &o.sessions {
            let row = OccupantRow {
                session: session.clone(),
                bare: o.bare.clone(),
                nick: o.nick.clone(),
            };
            if let Err(e) = self.shared.store.save_occupant(self.row.id, &row).await {
                tracing::warn!(network = %self.net.id, "occupant not stored: {e}");
            }
        }
    }

    /// The sessions that were joined when Causeway last stopped.
    pub(super) async fn load_occupants(&mut self) {
        let rows = match self.shared.store.occupants(self.row.id).await {
            Ok(r) => r,
            Err(e) => {
                return tracing::warn!(network = %self.net.id, "joined sessions not read: {e}")
            }
        };
        for r in rows {
            let o = self
                .occ
                .xmpp
                .entry(r.bare.clone())
                .or_insert_with(|| XmppOccupant {
                    bare: r.bare.clone(),
                    nick: r.nick.clone(),
                    sessions: Default::default(),
                });
            o.sessions.insert(r.session);
            self.shared
                .quotas
                .rejoined(&r.bare, (self.net.id.as_str(), self.row.id));
        }
    }

    pub(super) async fn leave(&mut self, from: &str, codes: Vec<u16>) {
        let bare = xmpp::bare(from).to_string();
        let Some(o) = self.occ.xmpp.get_mut(&bare) else {
            return;
        };
        if !o.sessions.remove(from) {
            return;
        }
        let me = o.clone();
        if let Err(e) = self.shared.store.remove_occupant(self.row.id, from).await {
            tracing::warn!(network = %self.net.id, "occupant not forgotten: {e}");
        }
        let mut items = Vec::new();
        if codes.contains(&110) {
            let mut gone = me.clone();
            gone.sessions.insert(from.to_string());
            items.push(self.xmpp_presence(&gone, from, vec![110], true));
        }
        let last = me.sessions.is_empty();
        if last {
            self.occ.xmpp.remove(&bare);
            self.shared
                .quotas
                .leave(&bare, (self.net.id.as_str(), self.row.id));
            let others: Vec<u16> = codes.into_iter().filter(|c| *c != 110).collect();
            for to in self.occ.sessions() {
                items.push(self.xmpp_presence(&me, &to, others.clone(), true));
            }
        }
        self.send(items).await;
        if last {
            self.membership(&me, false).await;
        }
    }

    /// Tell the network an XMPP user is in the room now, or not any more (a Matrix puppet
    /// joins or leaves); a failure is logged, the XMPP side is not held up by it.
    async fn membership(&self, o: &XmppOccupant, joined: bool) {
        let action = Action {
            room: self.row.key.clone(),
            persona: Some(self.shared.personas.persona(&o.bare, &o.nick)),
            kind: ActionKind::Membership { joined },
        };
        if let Err(e) = self.net.relay.apply(action).await {
            tracing::info!(network = %self.net.id, joined, "membership not passed on: {e}");
        }
    }
}
