//! The appservice's session: direct rooms between XMPP users' puppets and Matrix users,
//! messages sent as the puppets.

use crate::client::seg;
use crate::rooms::Record;
use crate::{ids, Shared};
use async_trait::async_trait;
use causeway_api::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;

pub struct MatrixSession {
    shared: Arc<Shared>,
    login: LoginId,
    watcher: tokio::task::JoinHandle<()>,
}

impl MatrixSession {
    pub(crate) async fn connect(
        shared: Arc<Shared>,
        events: EventSink,
    ) -> Result<Self, NetworkError> {
        // The token works and the homeserver answers: said now, not at the first message.
        let who = shared
            .call(Method::GET, "/_matrix/client/v3/account/whoami", None, None)
            .await?;
        tracing::info!(
            user = who["user_id"].as_str().unwrap_or("?"),
            "Matrix appservice connected"
        );
        let login = events.login().clone();
        *shared.sink.write().unwrap_or_else(|p| p.into_inner()) = Some(events);
        let watcher = tokio::spawn(crate::resync::watch(shared.clone()));
        Ok(Self {
            shared,
            login,
            watcher,
        })
    }

    async fn profile(&self, mxid: &str) -> Result<Value, NetworkError> {
        let path = format!("/_matrix/client/v3/profile/{}", seg(mxid));
        match self.shared.call(Method::GET, &path, None, None).await {
            Err(NetworkError::NotFound(_)) => {
                Err(NetworkError::NotFound(format!("no Matrix user {mxid}")))
            }
            other => other,
        }
    }

    fn key(&self, room: &str) -> RoomKey {
        RoomKey {
            room: RemoteRoomId::new(room),
            receiver: Some(self.login.clone()),
        }
    }

    fn persona<'a>(&self, p: Option<&'a Persona>) -> Result<&'a Persona, NetworkError> {
        p.ok_or_else(|| {
            NetworkError::BadRequest("the appservice posts for an XMPP user only".into())
        })
    }
}

#[async_trait]
impl Session for MatrixSession {
    async fn send_message(&self, msg: OutgoingMessage) -> Result<Sent, NetworkError> {
        self.shared.send(msg).await
    }

    async fn apply(&self, action: Action) -> Result<(), NetworkError> {
        self.shared.apply(action).await
    }

    async fn rooms(&self) -> Result<Vec<RoomInfo>, NetworkError> {
        let joined = self
            .shared
            .call(Method::GET, "/_matrix/client/v3/joined_rooms", None, None)
            .await?;
        let mut out = Vec::new();
        for room in joined["joined_rooms"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str())
        {
            match self.shared.record(room).await? {
                Some(Record::Shared) => {}
                Some(Record::Direct { .. }) => continue,
                // joined by the bot outside Causeway (an invitation accepted by hand)
                None => self.shared.remember(room, &Record::Shared).await?,
            }
            match self.shared.shared_info(room, false).await {
                Ok(info) => out.push(info),
                Err(NetworkError::NotFound(_)) => {} // a space
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn room_info(&self, room: &RoomKey) -> Result<RoomInfo, NetworkError> {
        let id = room.room.as_str();
        match self.shared.record(id).await? {
            Some(Record::Direct { with, xmpp }) => {
                let user = self
                    .user_info(&ids::remote_user(&with).unwrap_or_default())
                    .await?;
                Ok(RoomInfo {
                    key: self.key(id),
                    name: user.display_name.clone(),
                    topic: None,
                    kind: RoomKind::Direct,
                    space: None,
                    avatar_url: None,
                    members: vec![user],
                    xmpp_user: Some(xmpp),
                    restricted: false,
                })
            }
            Some(Record::Shared) => self.shared.shared_info(id, true).await,
            // A room seen for the first time (a join, a link): the bot joins it.
            None if id.starts_with('!') && room.receiver.is_none() => {
                let id = self.shared.join_shared(id).await?;
                self.shared.shared_info(&id, true).await
            }
            None => Err(NetworkError::NotFound(format!("Matrix room {id}"))),
        }
    }

    async fn user_info(&self, user: &RemoteUserId) -> Result<UserInfo, NetworkError> {
        let mx = ids::mxid(user.as_str()).ok_or_else(|| {
            NetworkError::NotFound(format!("{user} is not a Matrix user address"))
        })?;
        let p = self.profile(&mx).await?;
        Ok(UserInfo {
            id: user.clone(),
            display_name: p["displayname"].as_str().unwrap_or(&mx).to_string(),
            avatar_url: p["avatar_url"]
                .as_str()
                .and_then(|u| self.shared.media_url(u)),
            is_bot: false,
        })
    }

    async fn direct_room(
        &self,
        user: &RemoteUserId,
        persona: Option<&Persona>,
    ) -> Result<RoomKey, NetworkError> {
        let persona = self.persona(persona)?;
        let mx = ids::mxid(user.as_str()).ok_or_else(|| {
            NetworkError::NotFound(format!("{user} is not a Matrix user address"))
        })?;
        let store = self.shared.store()?;
        let key = format!("dm:{}|{mx}", persona.xmpp_user);
        if let Some(room) = store.get(&key).await? {
            return Ok(self.key(&room));
        }
        self.profile(&mx).await?;
        let puppet = self.shared.puppet(persona).await?;
        let created = self
            .shared
            .call(
                Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(&puppet),
                Some(json!({"preset": "trusted_private_chat", "is_direct": true, "invite": [mx]})),
            )
            .await?;
        let room = created["room_id"]
            .as_str()
            .ok_or_else(|| NetworkError::Other("the homeserver gave no room id".into()))?;
        let record = Record::Direct {
            xmpp: persona.xmpp_user.clone(),
            with: mx.clone(),
        };
        self.shared.remember(room, &record).await?;
        store.put(&key, room).await?;
        tracing::info!(room, "direct room opened on Matrix");
        Ok(self.key(room))
    }

    async fn history(
        &self,
        room: &RoomKey,
        after: Option<&RemoteMessageId>,
        limit: usize,
    ) -> Result<Vec<RemoteEvent>, NetworkError> {
        self.shared
            .history(room.room.as_str(), after.map(|a| a.as_str()), limit)
            .await
    }

    async fn disconnect(&self) {
        self.watcher.abort();
        *self.shared.sink.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    async fn spaces(&self) -> Result<Vec<SpaceInfo>, NetworkError> {
        Ok(Vec::new())
    }

    async fn space_info(&self, space: &RemoteSpaceId) -> Result<SpaceInfo, NetworkError> {
        self.shared.space_info(space.as_str()).await
    }

    async fn resolve(&self, address: &str) -> Result<Resolved, NetworkError> {
        if let Some(room) = self.shared.room_id(address).await? {
            return Ok(Resolved::Room(RoomKey::shared(room)));
        }
        let a = address.trim();
        let a = a.strip_prefix("https://matrix.to/#/").unwrap_or(a);
        match ids::remote_user(a).or_else(|| ids::mxid(a).and_then(|m| ids::remote_user(&m))) {
            Some(u) => Ok(Resolved::User(u)),
            None => Err(NetworkError::NotFound(format!(
                "{address:?} names no Matrix user"
            ))),
        }
    }
}

impl Drop for MatrixSession {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}
