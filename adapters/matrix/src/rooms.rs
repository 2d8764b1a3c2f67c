//! Rooms the appservice bridges: direct rooms it opened for XMPP users, and shared rooms
//! (any public room, or one the appservice was invited to) its bot joined. Each is
//! remembered in the state store as `room:<id>`.

use crate::client::seg;
use crate::{ids, Shared};
use causeway_api::*;
use reqwest::Method;
use serde_json::{json, Value};

/// What the adapter remembers of a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// A direct room between an XMPP user (bare JID) and a Matrix user.
    Direct { xmpp: String, with: String },
    /// A shared room (or a space) the bot joined.
    Shared,
}

impl Record {
    pub fn to_json(&self) -> String {
        match self {
            Record::Direct { xmpp, with } => json!({"kind": "dm", "xmpp": xmpp, "with": with}),
            Record::Shared => json!({"kind": "room"}),
        }
        .to_string()
    }

    fn parse(s: &str) -> Option<Record> {
        let v: Value = serde_json::from_str(s).ok()?;
        match v["kind"].as_str()? {
            "dm" => Some(Record::Direct {
                xmpp: v["xmpp"].as_str()?.to_string(),
                with: v["with"].as_str()?.to_string(),
            }),
            "room" => Some(Record::Shared),
            _ => None,
        }
    }
}

/// A room's state, as far as the bridge shows it.
#[derive(Default)]
pub struct State {
    pub name: Option<String>,
    pub topic: Option<String>,
    pub alias: Option<String>,
    pub is_space: bool,
    /// m.space.child: (room id, order), children with content (removed ones are empty).
    pub children: Vec<(String, String)>,
}

impl Shared {
    pub async fn record(&self, room: &str) -> Result<Option<Record>, NetworkError> {
        if let Some(r) = self
            .records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(room)
        {
            return Ok(Some(r.clone()));
        }
        let found = self
            .store()?
            .get(&format!("room:{room}"))
            .await?
            .and_then(|s| Record::parse(&s));
        if let Some(r) = &found {
            let mut all = self.records.lock().unwrap_or_else(|p| p.into_inner());
            all.insert(room.to_string(), r.clone());
        }
        Ok(found)
    }

    pub async fn remember(&self, room: &str, r: &Record) -> Result<(), NetworkError> {
        if let Record::Direct { with, .. } = r {
            // the direct rooms of a Matrix user, for their presence
            let mut rooms = self.direct_rooms_of(with).await?;
            if !rooms.iter().any(|x| x == room) {
                rooms.push(room.to_string());
                self.store()?
                    .put(&format!("dm-of:{with}"), &json!(rooms).to_string())
                    .await?;
            }
        }
        self.store()?
            .put(&format!("room:{room}"), &r.to_json())
            .await?;
        let mut all = self.records.lock().unwrap_or_else(|p| p.into_inner());
        all.insert(room.to_string(), r.clone());
        Ok(())
    }

    pub async fn direct_rooms_of(&self, mxid: &str) -> Result<Vec<String>, NetworkError> {
        Ok(self
            .store()?
            .get(&format!("dm-of:{mxid}"))
            .await?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_default())
    }

    /// The bot joins a room (by id or alias) and remembers it; returns the room id.
    pub async fn join_shared(&self, room: &str) -> Result<String, NetworkError> {
        let path = format!("/_matrix/client/v3/join/{}", seg(room));
        let joined = match self.call(Method::POST, &path, None, Some(json!({}))).await {
            Ok(v) => v,
            Err(NetworkError::Forbidden(e)) | Err(NetworkError::NotFound(e)) => {
                return Err(NetworkError::NotFound(format!(
                    "the bridge cannot join {room} (not public, and not invited): {e}"
                )))
            }
            Err(e) => return Err(e),
        };
        let id = joined["room_id"].as_str().unwrap_or(room).to_string();
        if self.record(&id).await?.is_none() {
            self.remember(&id, &Record::Shared).await?;
            tracing::info!(room = %id, "the appservice joined a Matrix room");
        }
        Ok(id)
    }

    /// A room id for a pasted address: `!id`, `#alias:server`, or a matrix.to link to either.
    pub async fn room_id(&self, address: &str) -> Result<Option<String>, NetworkError> {
        let a = address.trim();
        let a = a.strip_prefix("https://matrix.to/#/").unwrap_or(a);
        let a = a.split('?').next().unwrap_or(a);
        if a.starts_with('!') {
            return Ok(Some(a.to_string()));
        }
        if a.starts_with('#') && a.contains(':') {
            let path = format!("/_matrix/client/v3/directory/room/{}", seg(a));
            return match self.call(Method::GET, &path, None, None).await {
                Ok(v) => Ok(v["room_id"].as_str().map(str::to_string)),
                Err(NetworkError::NotFound(_)) => {
                    Err(NetworkError::NotFound(format!("no Matrix room {a}")))
                }
                Err(e) => Err(e),
            };
        }
        Ok(None)
    }

    pub async fn state(&self, room: &str) -> Result<State, NetworkError> {
        let path = format!("/_matrix/client/v3/rooms/{}/state", seg(room));
        let events = self.call(Method::GET, &path, None, None).await?;
        let mut st = State::default();
        for e in events.as_array().into_iter().flatten() {
            let c = &e["content"];
            match e["type"].as_str() {
                Some("m.room.name") => {
                    st.name = c["name"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                }
                Some("m.room.topic") => {
                    st.topic = c["topic"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                }
                Some("m.room.canonical_alias") => {
                    st.alias = c["alias"].as_str().map(str::to_string)
                }
                Some("m.room.create") => st.is_space = c["type"] == "m.space",
                Some("m.space.child") if c["via"].as_array().is_some_and(|v| !v.is_empty()) => {
                    let order = c["order"].as_str().unwrap_or("").to_string();
                    if let Some(child) = e["state_key"].as_str() {
                        st.children.push((child.to_string(), order));
                    }
                }
                _ => {}
            }
        }
        // The spec's order: `order`, then room id (timestamps are not in the state).
        st.children
            .sort_by(|a, b| (a.1.is_empty(), &a.1, &a.0).cmp(&(b.1.is_empty(), &b.1, &b.0)));
        Ok(st)
    }

    /// Joined members other than the appservice's own users.
    pub async fn members(&self, room: &str) -> Result<Vec<UserInfo>, NetworkError> {
        let path = format!("/_matrix/client/v3/rooms/{}/joined_members", seg(room));
        let v = self.call(Method::GET, &path, None, None).await?;
        let mut out: Vec<UserInfo> = v["joined"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(id, _)| !self.is_ours(id))
            .filter_map(|(id, m)| {
                Some(UserInfo {
                    id: ids::remote_user(id)?,
                    display_name: m["display_name"].as_str().unwrap_or(id).to_string(),
                    avatar_url: m["avatar_url"].as_str().and_then(|u| self.media_url(u)),
                    is_bot: false,
                })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        let names = out
            .iter()
            .filter_map(|u| Some((u.display_name.clone(), ids::mxid(u.id.as_str())?)))
            .collect();
        self.set_names(room, names);
        Ok(out)
    }

    fn set_names(&self, room: &str, mut names: Vec<(String, String)>) {
        names.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let mut all = self.names.lock().unwrap_or_else(|p| p.into_inner());
        all.insert(room.to_string(), names);
    }

    /// A member joined, left or was renamed: the names `@Name` is matched against follow.
    pub fn member_changed(&self, room: &str, mxid: &str, name: Option<&str>) {
        let mut names = {
            let all = self.names.lock().unwrap_or_else(|p| p.into_inner());
            match all.get(room) {
                Some(n) => n.clone(),
                None => return, // read in full when first needed
            }
        };
        names.retain(|(_, id)| id != mxid);
        if let Some(n) = name {
            names.push((n.to_string(), mxid.to_string()));
        }
        self.set_names(room, names);
    }

    /// Members' names in a room (read once, then kept current by membership events).
    pub async fn names(&self, room: &str) -> Vec<(String, String)> {
        let known = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(room)
            .cloned();
        match known {
            Some(n) => n,
            None => {
                let _ = self.members(room).await;
                self.names
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(room)
                    .cloned()
                    .unwrap_or_default()
            }
        }
    }

    /// A shared room as the core shows it; its members only when asked (`room_info`).
    pub async fn shared_info(
        &self,
        room: &str,
        with_members: bool,
    ) -> Result<RoomInfo, NetworkError> {
        let st = self.state(room).await?;
        if st.is_space {
            return Err(NetworkError::NotFound(format!(
                "{room} is a space, not a room"
            )));
        }
        Ok(RoomInfo {
            key: RoomKey::shared(room),
            name: st.name.or(st.alias).unwrap_or_else(|| room.to_string()),
            topic: st.topic,
            kind: RoomKind::Channel,
            space: None,
            avatar_url: None,
            members: if with_members {
                self.members(room).await?
            } else {
                Vec::new()
            },
            xmpp_user: None,
            restricted: false,
        })
    }

    /// The appservice's own users: its bot and the puppets of XMPP users.
    pub fn is_ours(&self, user: &str) -> bool {
        let server = format!(":{}", self.cfg.server_name);
        user.ends_with(&server)
            && (user.starts_with(&format!("@{}", self.cfg.user_prefix)) || user == self.bot_user())
    }

    /// A space as the core shows it: its rooms and nested spaces, in the space's order.
    pub async fn space_info(&self, space: &str) -> Result<SpaceInfo, NetworkError> {
        let id = match self.record(space).await? {
            Some(_) => space.to_string(),
            None => self.join_shared(space).await?,
        };
        let st = self.state(&id).await?;
        if !st.is_space {
            return Err(NetworkError::NotFound(format!(
                "{space} is a room, not a space"
            )));
        }
        let (mut rooms, mut children) = (Vec::new(), Vec::new());
        for (child, _) in &st.children {
            let joined = match self.join_shared(child).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::warn!(space = %id, child = %child, "child not joined: {e}");
                    continue;
                }
            };
            match self.state(&joined).await {
                Ok(s) if s.is_space => children.push(RemoteSpaceId::new(joined)),
                Ok(_) => rooms.push(RoomKey::shared(joined)),
                Err(e) => tracing::warn!(child = %joined, "child not read: {e}"),
            }
        }
        Ok(SpaceInfo {
            id: RemoteSpaceId::new(&id),
            name: st.name.or(st.alias).unwrap_or_else(|| id.clone()),
            avatar_url: None,
            rooms,
            children,
        })
    }
    /// Messages of a room, oldest first: those after `after`, or the latest ones.
    pub async fn history(
        &self,
        room: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RemoteEvent>, NetworkError> {
        // What the homeserver could not deliver while Causeway was down it pushes again, so
        // this serves backfill and catch-up of rooms joined later.
        let id = room;
        let record = self
            .record(id)
            .await?
            .ok_or_else(|| NetworkError::NotFound(format!("Matrix room {id}")))?;
        // The bot reads shared rooms; a direct room is read by the XMPP user's puppet.
        let reader = match &record {
            Record::Direct { xmpp, .. } => Some(format!(
                "@{}:{}",
                ids::puppet_localpart(&self.cfg.user_prefix, xmpp),
                self.cfg.server_name
            )),
            Record::Shared => None,
        };
        let reader = reader.as_deref();
        let base = format!("/_matrix/client/v3/rooms/{}", seg(id));
        let (dir, mut from) = match after {
            Some(ev) => {
                let ctx = format!("{base}/context/{}?limit=0", seg(ev));
                let v = self.call(Method::GET, &ctx, reader, None).await?;
                ("f", v["end"].as_str().map(str::to_string))
            }
            None => ("b", None),
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let want = (limit - out.len()).min(100);
            let token = from
                .as_ref()
                .map(|t| format!("&from={}", seg(t)))
                .unwrap_or_default();
            let path = format!("{base}/messages?dir={dir}&limit={want}{token}");
            let v = self.call(Method::GET, &path, reader, None).await?;
            let chunk = v["chunk"].as_array().cloned().unwrap_or_default();
            out.extend(
                chunk
                    .iter()
                    .filter_map(|e| self.history_event(id, &record, e)),
            );
            from = v["end"].as_str().map(str::to_string);
            if chunk.is_empty() || from.is_none() {
                break;
            }
        }
        out.truncate(limit);
        if dir == "b" {
            out.reverse();
        }
        Ok(out)
    }
}
