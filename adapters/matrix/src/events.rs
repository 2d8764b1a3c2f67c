//! Matrix events (pushed in transactions) as remote events: messages with their HTML, media,
//! replies and edits; reactions (remembered, so that redacting one takes it back);
//! redactions; membership; room and space changes; typing.

use crate::convert;
use crate::rooms::Record;
use crate::{ids, Shared, RELAY_LOGIN};
use causeway_api::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashSet;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where Causeway serves a Matrix file (fetched with the appservice's token, since Matrix
/// media needs authentication): a signed path on its own listener.
pub const MEDIA_PATH: &str = "/_matrix/app/causeway-media/";

impl Shared {
    pub fn media_sig(&self, server: &str, id: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.reg.hs_token.expose().as_bytes());
        h.update(b"|media|");
        h.update(server.as_bytes());
        h.update(b"/");
        h.update(id.as_bytes());
        h.finalize()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn media_url(&self, mxc: &str) -> Option<String> {
        let (server, id) = mxc.strip_prefix("mxc://")?.split_once('/')?;
        let safe = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        };
        if !safe(server) || !safe(id) {
            return None;
        }
        Some(format!(
            "{}{MEDIA_PATH}{server}/{id}/{}",
            self.reg.url,
            self.media_sig(server, id)
        ))
    }

    fn key(room: &str, record: &Record) -> RoomKey {
        match record {
            Record::Direct { .. } => RoomKey {
                room: RemoteRoomId::new(room),
                receiver: Some(LoginId::new(RELAY_LOGIN)),
            },
            Record::Shared => RoomKey::shared(room),
        }
    }

    /// The content of an `m.room.message` (or of its `m.new_content`).
    fn message_content(&self, c: &Value, is_reply: bool) -> Content {
        let body = c["body"].as_str().unwrap_or("");
        let html = (c["format"] == "org.matrix.custom.html")
            .then(|| c["formatted_body"].as_str())
            .flatten();
        // (HTML past what is read as HTML: the plain body, fallback stripped as without HTML)
        let html = html.filter(|h| convert::html_is_tame(h));
        let mut content = match html {
            Some(h) => convert::from_html(h),
            None if is_reply => Content::text(convert::strip_reply_fallback(body)),
            None => Content::text(body),
        };
        content.kind = match c["msgtype"].as_str() {
            Some("m.emote") => TextKind::Emote,
            Some("m.notice") => TextKind::Notice,
            _ => TextKind::Normal,
        };
        let media = matches!(
            c["msgtype"].as_str(),
            Some("m.image" | "m.file" | "m.video" | "m.audio")
        );
        if let (true, Some(url)) = (media, c["url"].as_str().and_then(|u| self.media_url(u))) {
            let filename = c["filename"].as_str().unwrap_or(body);
            content.attachments.push(Attachment {
                url,
                name: filename.to_string(),
                content_type: c["info"]["mimetype"].as_str().map(str::to_string),
                size: c["info"]["size"].as_u64(),
            });
            // The body is the file name, unless a caption was given beside `filename`.
            if c["filename"].as_str().is_none_or(|f| f == body) {
                content.text.clear();
                content.spans.clear();
            }
        }
        content
    }

    /// A message of a room's history (our puppets' too: the core knows their ids).
    pub fn history_event(&self, room: &str, record: &Record, e: &Value) -> Option<RemoteEvent> {
        if e["type"] != "m.room.message" || e["content"]["m.relates_to"]["rel_type"] == "m.replace"
        {
            return None;
        }
        let user = ids::remote_user(e["sender"].as_str()?)?;
        let c = &e["content"];
        let reply = c["m.relates_to"]["m.in_reply_to"]["event_id"].as_str();
        Some(RemoteEvent {
            room: Self::key(room, record),
            sender: user,
            at: e["origin_server_ts"].as_i64().unwrap_or_else(now_ms),
            kind: RemoteEventKind::Message {
                id: RemoteMessageId::new(e["event_id"].as_str()?),
                content: self.message_content(c, reply.is_some()),
                reply_to: reply.map(RemoteMessageId::new),
                txn: None,
            },
        })
    }

    /// A Matrix user invited an XMPP user's puppet to a direct room: the puppet joins, the
    /// room becomes that XMPP user's 1:1 conversation (what was said before comes along).
    async fn invited(&self, room: &str, e: &Value) -> Result<Vec<RemoteEvent>, NetworkError> {
        let target = e["state_key"].as_str().unwrap_or("");
        let sender = e["sender"].as_str().unwrap_or("");
        let local = target
            .strip_prefix('@')
            .and_then(|t| t.strip_suffix(&format!(":{}", self.cfg.server_name)))
            .unwrap_or("");
        let Some(xmpp) = ids::puppet_jid(&self.cfg.user_prefix, local) else {
            return Ok(Vec::new()); // not a puppet (the bot is invited through joins by admins)
        };
        if self.record(room).await?.is_some() || self.is_ours(sender) {
            return Ok(Vec::new());
        }
        if e["content"]["is_direct"] != true {
            tracing::info!(room, "a puppet was invited to a group room: not bridged");
            return Ok(Vec::new());
        }
        self.register(local).await?; // invited before it ever posted: it may not exist yet
        let join = format!("/_matrix/client/v3/rooms/{}/join", crate::client::seg(room));
        self.call(reqwest::Method::POST, &join, Some(target), Some(json!({})))
            .await?;
        // Later messages between the two, from either side, use this room.
        self.store()?
            .put_new(&format!("dm:{xmpp}|{sender}"), room)
            .await?;
        let record = Record::Direct {
            xmpp,
            with: sender.to_string(),
        };
        self.remember(room, &record).await?;
        tracing::info!(room, "a Matrix user opened a direct room with an XMPP user");
        self.history(room, None, 50).await
    }

    /// One timeline event as the remote events it means (none for rooms not bridged).
    pub async fn timeline_event(&self, e: &Value) -> Result<Vec<RemoteEvent>, NetworkError> {
        let sender = e["sender"].as_str().unwrap_or("");
        let Some(room) = e["room_id"].as_str() else {
            return Ok(Vec::new());
        };
        let invite = e["type"] == "m.room.member" && e["content"]["membership"] == "invite";
        let Some(record) = self.record(room).await? else {
            if invite {
                return self.invited(room, e).await;
            }
            return Ok(Vec::new());
        };
        let typ = e["type"].as_str().unwrap_or("");
        if typ == "m.space.child" {
            return self.space_child(room, e).await;
        }
        let Some(user) = ids::remote_user(sender).filter(|_| !self.is_ours(sender)) else {
            return Ok(Vec::new()); // our puppets' own events
        };
        let store = self.store()?;
        let c = &e["content"];
        let id = e["event_id"].as_str().unwrap_or("");
        let relates = &c["m.relates_to"];
        let kind = match typ {
            "m.room.message" if relates["rel_type"] == "m.replace" => RemoteEventKind::Edit {
                target: RemoteMessageId::new(relates["event_id"].as_str().unwrap_or("")),
                content: self.message_content(&c["m.new_content"], false),
            },
            "m.room.message" => {
                let reply = relates["m.in_reply_to"]["event_id"].as_str();
                RemoteEventKind::Message {
                    id: RemoteMessageId::new(id),
                    content: self.message_content(c, reply.is_some()),
                    reply_to: reply.map(RemoteMessageId::new),
                    txn: None,
                }
            }
            "m.reaction" if relates["rel_type"] == "m.annotation" => {
                let (Some(target), Some(key)) =
                    (relates["event_id"].as_str(), relates["key"].as_str())
                else {
                    return Ok(Vec::new());
                };
                let remembered = json!({"target": target, "key": key}).to_string();
                store
                    .put_for(&format!("reaction:{id}"), &remembered, crate::KEEP_REACTION)
                    .await?;
                RemoteEventKind::ReactionChanged {
                    target: RemoteMessageId::new(target),
                    emoji: key.to_string(),
                    added: true,
                }
            }
            "m.room.redaction" => {
                let redacts = e["redacts"]
                    .as_str()
                    .or(c["redacts"].as_str())
                    .unwrap_or("");
                let reaction_key = format!("reaction:{redacts}");
                match store
                    .get(&reaction_key)
                    .await?
                    .and_then(|r| serde_json::from_str::<Value>(&r).ok())
                {
                    Some(r) => {
                        store.delete(&reaction_key).await?;
                        RemoteEventKind::ReactionChanged {
                            target: RemoteMessageId::new(r["target"].as_str().unwrap_or("")),
                            emoji: r["key"].as_str().unwrap_or("").to_string(),
                            added: false,
                        }
                    }
                    None => RemoteEventKind::Retract {
                        target: RemoteMessageId::new(redacts),
                        by_author: true,
                    },
                }
            }
            "m.room.member" if record == Record::Shared => {
                let member = e["state_key"].as_str().unwrap_or("");
                let Some(who) = ids::remote_user(member).filter(|_| !self.is_ours(member)) else {
                    return Ok(Vec::new());
                };
                let joined = c["membership"] == "join";
                let name = c["displayname"].as_str().unwrap_or(member);
                self.member_changed(room, member, joined.then_some(name));
                RemoteEventKind::Membership {
                    user: UserInfo {
                        id: who,
                        display_name: c["displayname"].as_str().unwrap_or(member).to_string(),
                        avatar_url: None,
                        is_bot: false,
                    },
                    joined,
                }
            }
            "m.room.name" | "m.room.topic" if record == Record::Shared => {
                RemoteEventKind::RoomChanged(self.shared_info(room, false).await?)
            }
            _ => return Ok(Vec::new()),
        };
        Ok(vec![RemoteEvent {
            room: Self::key(room, &record),
            sender: user,
            at: e["origin_server_ts"].as_i64().unwrap_or_else(now_ms),
            kind,
        }])
    }

    /// A child added to (or removed from) a space the bridge follows.
    async fn space_child(&self, space: &str, e: &Value) -> Result<Vec<RemoteEvent>, NetworkError> {
        let Some(child) = e["state_key"].as_str() else {
            return Ok(Vec::new());
        };
        let added = e["content"]["via"]
            .as_array()
            .is_some_and(|v| !v.is_empty());
        let sender = ids::remote_user(e["sender"].as_str().unwrap_or("")).unwrap_or_default();
        let at = e["origin_server_ts"].as_i64().unwrap_or_else(now_ms);
        if !added {
            let mut info = RoomInfo {
                key: RoomKey::shared(child),
                ..RoomInfo::default()
            };
            if let Ok(i) = self.shared_info(child, false).await {
                info = i;
            }
            info.space = None;
            return Ok(vec![RemoteEvent {
                room: RoomKey::shared(child),
                sender,
                at,
                kind: RemoteEventKind::RoomChanged(info),
            }]);
        }
        let child = self.join_shared(child).await?;
        let mut info = match self.shared_info(&child, false).await {
            Ok(i) => i,
            Err(NetworkError::NotFound(_)) => return Ok(Vec::new()), // a nested space
            Err(e) => return Err(e),
        };
        info.space = Some(RemoteSpaceId::new(space));
        Ok(vec![RemoteEvent {
            room: RoomKey::shared(&child),
            sender,
            at,
            kind: RemoteEventKind::RoomChanged(info),
        }])
    }

    /// `m.presence` (ephemeral): a Matrix user's availability, for each XMPP user with a
    /// direct room with them.
    pub async fn presence_event(&self, e: &Value) -> Result<Vec<RemoteEvent>, NetworkError> {
        let sender = e["sender"].as_str().unwrap_or("");
        let Some(user) = ids::remote_user(sender).filter(|_| !self.is_ours(sender)) else {
            return Ok(Vec::new());
        };
        let availability = match e["content"]["presence"].as_str() {
            Some("online") => Availability::Online,
            Some("unavailable") => Availability::Away,
            _ => Availability::Offline,
        };
        let status = e["content"]["status_msg"]
            .as_str()
            .filter(|s| !s.is_empty());
        Ok(self
            .direct_rooms_of(sender)
            .await?
            .into_iter()
            .map(|room| RemoteEvent {
                room: RoomKey {
                    room: RemoteRoomId::new(room),
                    receiver: Some(LoginId::new(RELAY_LOGIN)),
                },
                sender: user.clone(),
                at: now_ms(),
                kind: RemoteEventKind::Presence {
                    availability,
                    status: status.map(str::to_string),
                },
            })
            .collect())
    }

    /// `m.receipt` (ephemeral): who read up to which event.
    pub async fn receipt_event(&self, e: &Value) -> Result<Vec<RemoteEvent>, NetworkError> {
        let Some(room) = e["room_id"].as_str() else {
            return Ok(Vec::new());
        };
        let Some(record) = self.record(room).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (event, kinds) in e["content"].as_object().into_iter().flatten() {
            for (user, _) in kinds["m.read"].as_object().into_iter().flatten() {
                if let (Some(u), false) = (ids::remote_user(user), self.is_ours(user)) {
                    out.push(RemoteEvent {
                        room: Self::key(room, &record),
                        sender: u,
                        at: now_ms(),
                        kind: RemoteEventKind::ReadUpTo {
                            up_to: RemoteMessageId::new(event),
                        },
                    });
                }
            }
        }
        Ok(out)
    }

    /// `m.typing` (ephemeral): who started or stopped typing since the last one.
    pub async fn typing_event(&self, e: &Value) -> Result<Vec<RemoteEvent>, NetworkError> {
        let Some(room) = e["room_id"].as_str() else {
            return Ok(Vec::new());
        };
        let Some(record) = self.record(room).await? else {
            return Ok(Vec::new());
        };
        let now: HashSet<String> = e["content"]["user_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str())
            .filter(|u| !self.is_ours(u))
            .map(str::to_string)
            .collect();
        let before = {
            let mut typing = self.typing.lock().unwrap_or_else(|p| p.into_inner());
            typing
                .insert(room.to_string(), now.clone())
                .unwrap_or_default()
        };
        let key = Self::key(room, &record);
        let mut out = Vec::new();
        for (users, active) in [
            (now.difference(&before), true),
            (before.difference(&now), false),
        ] {
            for u in users {
                if let Some(user) = ids::remote_user(u) {
                    out.push(RemoteEvent {
                        room: key.clone(),
                        sender: user,
                        at: now_ms(),
                        kind: RemoteEventKind::Typing { active },
                    });
                }
            }
        }
        Ok(out)
    }
}
