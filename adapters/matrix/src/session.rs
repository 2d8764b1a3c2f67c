//! The appservice's session: direct rooms between XMPP users' puppets and Matrix users,
//! messages sent as the puppets.

use crate::client::seg;
use crate::{ids, Shared};
use async_trait::async_trait;
use causeway_api::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;

pub struct MatrixSession {
    shared: Arc<Shared>,
    login: LoginId,
}

/// What the adapter remembers of a room it opened.
pub(crate) fn room_record(xmpp: &str, with: &str) -> String {
    json!({"kind": "dm", "xmpp": xmpp, "with": with}).to_string()
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
        Ok(Self { shared, login })
    }

    /// The puppet of an XMPP user: registered on first use, named after their nick.
    async fn puppet(&self, persona: &Persona) -> Result<String, NetworkError> {
        let local = ids::puppet_localpart(&self.shared.cfg.user_prefix, &persona.xmpp_user);
        let user = format!("@{local}:{}", self.shared.cfg.server_name);
        let store = self.shared.store()?;
        let key = format!("puppet:{local}");
        let known = store.get(&key).await?;
        if known.is_none() {
            self.shared.register(&local).await?;
        }
        if known.as_deref() != Some(persona.nick.as_str()) {
            let path = format!("/_matrix/client/v3/profile/{}/displayname", seg(&user));
            self.shared
                .call(
                    Method::PUT,
                    &path,
                    Some(&user),
                    Some(json!({"displayname": persona.nick})),
                )
                .await?;
            store.put(&key, &persona.nick).await?;
        }
        Ok(user)
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
        let puppet = self.puppet(self.persona(msg.persona.as_ref())?).await?;
        let msgtype = match msg.content.kind {
            TextKind::Normal => "m.text",
            TextKind::Emote => "m.emote",
            TextKind::Notice => "m.notice",
        };
        let body = json!({"msgtype": msgtype, "body": msg.content.text});
        let room = msg.room.room.as_str();
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            seg(room),
            seg(msg.txn.as_str())
        );
        // The same transaction id makes a retried send a no-op on the homeserver.
        let sent = match self
            .shared
            .call(Method::PUT, &path, Some(&puppet), Some(body.clone()))
            .await
        {
            Err(NetworkError::Forbidden(_)) => {
                let join = format!("/_matrix/client/v3/rooms/{}/join", seg(room));
                self.shared
                    .call(Method::POST, &join, Some(&puppet), Some(json!({})))
                    .await?;
                self.shared
                    .call(Method::PUT, &path, Some(&puppet), Some(body))
                    .await?
            }
            other => other?,
        };
        let id = sent["event_id"]
            .as_str()
            .ok_or_else(|| NetworkError::Other("the homeserver gave no event id".into()))?;
        Ok(Sent {
            ids: vec![RemoteMessageId::new(id)],
            at: crate::appservice::now_ms(),
        })
    }

    async fn apply(&self, action: Action) -> Result<(), NetworkError> {
        Err(NetworkError::Unsupported(format!(
            "{} is not bridged to Matrix yet",
            action.kind.name()
        )))
    }

    async fn rooms(&self) -> Result<Vec<RoomInfo>, NetworkError> {
        Ok(Vec::new())
    }

    async fn room_info(&self, room: &RoomKey) -> Result<RoomInfo, NetworkError> {
        let store = self.shared.store()?;
        let record = store
            .get(&format!("room:{}", room.room))
            .await?
            .and_then(|r| serde_json::from_str::<Value>(&r).ok())
            .ok_or_else(|| NetworkError::NotFound(format!("Matrix room {}", room.room)))?;
        let with = record["with"].as_str().unwrap_or_default().to_string();
        let user = self
            .user_info(&ids::remote_user(&with).unwrap_or_default())
            .await?;
        Ok(RoomInfo {
            key: self.key(room.room.as_str()),
            name: user.display_name.clone(),
            topic: None,
            kind: RoomKind::Direct,
            space: None,
            avatar_url: None,
            members: vec![user],
        })
    }

    async fn user_info(&self, user: &RemoteUserId) -> Result<UserInfo, NetworkError> {
        let mx = ids::mxid(user.as_str()).ok_or_else(|| {
            NetworkError::NotFound(format!("{user} is not a Matrix user address"))
        })?;
        let p = self.profile(&mx).await?;
        Ok(UserInfo {
            id: user.clone(),
            display_name: p["displayname"].as_str().unwrap_or(&mx).to_string(),
            avatar_url: None,
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
        let puppet = self.puppet(persona).await?;
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
        store
            .put(
                &format!("room:{room}"),
                &room_record(&persona.xmpp_user, &mx),
            )
            .await?;
        store.put(&key, room).await?;
        tracing::info!(room, "direct room opened on Matrix");
        Ok(self.key(room))
    }

    async fn history(
        &self,
        _room: &RoomKey,
        _after: Option<&RemoteMessageId>,
        _limit: usize,
    ) -> Result<Vec<RemoteEvent>, NetworkError> {
        // What the homeserver could not deliver while Causeway was down, it pushes again.
        Ok(Vec::new())
    }

    async fn disconnect(&self) {
        *self.shared.sink.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    async fn resolve(&self, address: &str) -> Result<Resolved, NetworkError> {
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
