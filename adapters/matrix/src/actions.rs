//! Core -> Matrix, as the XMPP user's puppet: messages (HTML and mentions, replies, files
//! uploaded to the media repository), edits (`m.replace`, always on the original), deletions
//! (redactions), reactions (one `m.reaction` per key, taken back by redacting it), typing,
//! read receipts.

use crate::client::seg;
use crate::{convert, ids, Shared};
use causeway_api::*;
use reqwest::Method;
use serde_json::{json, Value};

/// The largest file an XMPP user's link is uploaded from (larger ones are posted as links).
const MAX_UPLOAD: u64 = 50 << 20;
/// The largest avatar copied to a puppet's profile.
const MAX_AVATAR: u64 = 5 << 20;

impl Shared {
    /// The puppet of an XMPP user: registered on first use, named after their nick.
    pub async fn puppet(&self, persona: &Persona) -> Result<String, NetworkError> {
        let local = ids::puppet_localpart(&self.cfg.user_prefix, &persona.xmpp_user);
        let user = format!("@{local}:{}", self.cfg.server_name);
        let (name_key, avatar_key) = (format!("puppet:{local}"), format!("puppet-avatar:{local}"));
        let cached = self
            .puppets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&local)
            .cloned();
        let store = self.store()?;
        let (mut name, mut avatar) = match cached {
            Some(known) => known,
            None => (store.get(&name_key).await?, store.get(&avatar_key).await?),
        };
        if name.is_none() {
            self.register(&local).await?;
        }
        if name.as_deref() != Some(persona.nick.as_str()) {
            let path = format!("/_matrix/client/v3/profile/{}/displayname", seg(&user));
            self.call(
                Method::PUT,
                &path,
                Some(&user),
                Some(json!({"displayname": persona.nick})),
            )
            .await?;
            store.put(&name_key, &persona.nick).await?;
            name = Some(persona.nick.clone());
        }
        if let Some(url) = persona
            .avatar_url
            .as_ref()
            .filter(|u| avatar.as_ref() != Some(u))
        {
            match self.set_avatar(&user, url).await {
                Ok(()) => {
                    store.put(&avatar_key, url).await?;
                    avatar = Some(url.clone());
                }
                // The message matters more than the picture: tried again next time.
                Err(e) => tracing::info!("puppet avatar not set: {e}"),
            }
        }
        let mut all = self.puppets.lock().unwrap_or_else(|p| p.into_inner());
        all.insert(local, (name, avatar));
        Ok(user)
    }

    /// Copy an XMPP user's avatar (served by Causeway) to the puppet's profile.
    async fn set_avatar(&self, user: &str, url: &str) -> Result<(), NetworkError> {
        let got = self
            .fetcher()
            .fetch(url, MAX_AVATAR)
            .await
            .map_err(|e| NetworkError::Other(format!("avatar: {e}")))?;
        let ctype = got.content_type.unwrap_or_else(|| "image/png".into());
        let mxc = self.upload(user, "avatar", &ctype, got.bytes).await?;
        let path = format!("/_matrix/client/v3/profile/{}/avatar_url", seg(user));
        self.call(
            Method::PUT,
            &path,
            Some(user),
            Some(json!({"avatar_url": mxc})),
        )
        .await?;
        Ok(())
    }

    /// Send one event as `user`, joining the room first if the puppet is not in it yet.
    async fn send_event(
        &self,
        room: &str,
        user: &str,
        typ: &str,
        txn: &str,
        body: Value,
    ) -> Result<String, NetworkError> {
        let path = format!(
            "/_matrix/client/v3/rooms/{}/send/{typ}/{}",
            seg(room),
            seg(txn)
        );
        // The same transaction id makes a retried send a no-op on the homeserver.
        let sent = match self
            .call(Method::PUT, &path, Some(user), Some(body.clone()))
            .await
        {
            Err(NetworkError::Forbidden(_)) => {
                let join = format!("/_matrix/client/v3/rooms/{}/join", seg(room));
                self.call(Method::POST, &join, Some(user), Some(json!({})))
                    .await?;
                self.call(Method::PUT, &path, Some(user), Some(body))
                    .await?
            }
            other => other?,
        };
        sent["event_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| NetworkError::Other("the homeserver gave no event id".into()))
    }

    /// Text content as an `m.room.message` body (with HTML when there is markup).
    fn text_body(content: &Content) -> Value {
        let msgtype = match content.kind {
            TextKind::Normal => "m.text",
            TextKind::Emote => "m.emote",
            TextKind::Notice => "m.notice",
        };
        let mut body = json!({"msgtype": msgtype, "body": content.text, "m.mentions": {}});
        if let Some((html, mentions)) = convert::to_html(content) {
            body["format"] = json!("org.matrix.custom.html");
            body["formatted_body"] = json!(html);
            body["m.mentions"] = json!({"user_ids": mentions});
        }
        body
    }

    /// Upload an XMPP user's file; the message that shows it. A file that cannot be
    /// fetched (the egress policy refused it, or it is too big) is posted as its link, and
    /// the sender is told why.
    async fn file_body(
        &self,
        user: &str,
        a: &Attachment,
        warnings: &mut Vec<String>,
    ) -> Result<Option<Value>, NetworkError> {
        let got = match self.fetcher().fetch(&a.url, MAX_UPLOAD).await {
            Ok(got) => got,
            Err(e) => {
                tracing::info!("file linked instead of uploaded: {}: {e}", a.name);
                warnings.push(format!("{}: linked, not uploaded: {e}", a.name));
                return Ok(None);
            }
        };
        let ctype = a
            .content_type
            .clone()
            .or(got.content_type)
            .unwrap_or_else(|| "application/octet-stream".into());
        let bytes = got.bytes;
        let size = bytes.len();
        let mxc = self.upload(user, &a.name, &ctype, bytes).await?;
        let msgtype = match ctype.split('/').next() {
            Some("image") => "m.image",
            Some("video") => "m.video",
            Some("audio") => "m.audio",
            _ => "m.file",
        };
        Ok(Some(json!({
            "msgtype": msgtype, "body": a.name, "filename": a.name, "url": mxc,
            "info": {"mimetype": ctype, "size": size}
        })))
    }

    pub async fn send(&self, mut msg: OutgoingMessage) -> Result<Sent, NetworkError> {
        let persona = msg.persona.as_ref().ok_or_else(|| {
            NetworkError::BadRequest("the appservice posts for an XMPP user only".into())
        })?;
        let user = self.puppet(persona).await?;
        let room = msg.room.room.to_string();
        let room = room.as_str();
        if matches!(self.record(room).await?, Some(crate::rooms::Record::Shared)) {
            let names = self.names(room).await;
            convert::add_mentions(&mut msg.content, &names);
        }
        let mut bodies = Vec::new();
        let only_files = msg
            .content
            .attachments
            .iter()
            .any(|a| a.url == msg.content.text.trim());
        if !msg.content.text.is_empty() && !only_files {
            bodies.push(Self::text_body(&msg.content));
        }
        let mut warnings = Vec::new();
        let text_sent = !bodies.is_empty();
        for a in &msg.content.attachments {
            match self.file_body(&user, a, &mut warnings).await? {
                Some(file) => bodies.push(file),
                // the link instead, unless the text carries it
                None if text_sent && msg.content.text.contains(&a.url) => {}
                None => bodies.push(Self::text_body(&Content::text(&a.url))),
            }
        }
        if let (Some(reply), Some(first)) = (&msg.reply_to, bodies.first_mut()) {
            first["m.relates_to"] = json!({"m.in_reply_to": {"event_id": reply.as_str()}});
        }
        let mut ids = Vec::new();
        for (i, body) in bodies.into_iter().enumerate() {
            let txn = format!("{}.{i}", msg.txn.as_str());
            ids.push(RemoteMessageId::new(
                self.send_event(room, &user, "m.room.message", &txn, body)
                    .await?,
            ));
        }
        if ids.is_empty() {
            return Err(NetworkError::BadRequest("an empty message".into()));
        }
        Ok(Sent {
            ids,
            at: crate::events::now_ms(),
            warnings,
        })
    }

    pub async fn apply(&self, action: Action) -> Result<(), NetworkError> {
        // For an XMPP user, their puppet acts; without one (moderation), the bot.
        let user = match &action.persona {
            Some(p) => self.puppet(p).await?,
            None => self.bot_user(),
        };
        let room = action.room.room.as_str();
        let store = self.store()?;
        let txn = format!("a{}{}", crate::events::now_ms(), rand::random::<u32>());
        match action.kind {
            ActionKind::Edit {
                target,
                content,
                txn,
            } => {
                let mut new = Self::text_body(&content);
                let mut body = new.clone();
                body["body"] = json!(format!("* {}", content.text));
                if let Some(h) = body["formatted_body"].as_str().map(|h| format!("* {h}")) {
                    body["formatted_body"] = json!(h);
                }
                new.as_object_mut().map(|o| o.remove("m.relates_to"));
                body["m.new_content"] = new;
                body["m.relates_to"] =
                    json!({"rel_type": "m.replace", "event_id": target.as_str()});
                self.send_event(room, &user, "m.room.message", txn.as_str(), body)
                    .await?;
            }
            ActionKind::Retract { target } => {
                let path = format!(
                    "/_matrix/client/v3/rooms/{}/redact/{}/{}",
                    seg(room),
                    seg(target.as_str()),
                    seg(&txn)
                );
                match self
                    .call(Method::PUT, &path, Some(&user), Some(json!({})))
                    .await
                {
                    // The bot may not redact others; a puppet may redact its own message.
                    Err(NetworkError::Forbidden(e)) if action.persona.is_none() => {
                        let ev = format!(
                            "/_matrix/client/v3/rooms/{}/event/{}",
                            seg(room),
                            seg(target.as_str())
                        );
                        let sender = self.call(Method::GET, &ev, None, None).await?["sender"]
                            .as_str()
                            .map(str::to_string)
                            .filter(|s| self.is_ours(s))
                            .ok_or(NetworkError::Forbidden(e))?;
                        self.call(Method::PUT, &path, Some(&sender), Some(json!({})))
                            .await?;
                    }
                    other => {
                        other?;
                    }
                }
            }
            ActionKind::ReactionAdd { target, emoji } => {
                let body = json!({"m.relates_to": {"rel_type": "m.annotation", "event_id": target.as_str(), "key": emoji}});
                let id = self
                    .send_event(room, &user, "m.reaction", &txn, body)
                    .await?;
                store
                    .put_for(
                        &format!("my-reaction:{user}|{target}|{emoji}"),
                        &id,
                        crate::KEEP_REACTION,
                    )
                    .await?;
            }
            ActionKind::ReactionRemove { target, emoji } => {
                let key = format!("my-reaction:{user}|{target}|{emoji}");
                if let Some(id) = store.get(&key).await? {
                    let path = format!(
                        "/_matrix/client/v3/rooms/{}/redact/{}/{}",
                        seg(room),
                        seg(&id),
                        seg(&txn)
                    );
                    self.call(Method::PUT, &path, Some(&user), Some(json!({})))
                        .await?;
                    store.delete(&key).await?;
                }
            }
            ActionKind::Typing { active } => {
                let path = format!(
                    "/_matrix/client/v3/rooms/{}/typing/{}",
                    seg(room),
                    seg(&user)
                );
                let body = if active {
                    json!({"typing": true, "timeout": 30000})
                } else {
                    json!({"typing": false})
                };
                self.call(Method::PUT, &path, Some(&user), Some(body))
                    .await?;
            }
            ActionKind::Presence {
                availability,
                status,
            } => {
                let presence = match availability {
                    Availability::Online => "online",
                    Availability::Away => "unavailable",
                    Availability::Offline => "offline",
                };
                let mut body = json!({ "presence": presence });
                if let Some(s) = status {
                    body["status_msg"] = json!(s);
                }
                let path = format!("/_matrix/client/v3/presence/{}/status", seg(&user));
                self.call(Method::PUT, &path, Some(&user), Some(body))
                    .await?;
            }
            ActionKind::Membership { joined } => {
                if action.persona.is_none() {
                    return Ok(());
                }
                let verb = if joined { "join" } else { "leave" };
                let path = format!("/_matrix/client/v3/rooms/{}/{verb}", seg(room));
                self.call(Method::POST, &path, Some(&user), Some(json!({})))
                    .await?;
            }
            ActionKind::ReadMarker { up_to } => {
                let path = format!(
                    "/_matrix/client/v3/rooms/{}/receipt/m.read/{}",
                    seg(room),
                    seg(up_to.as_str())
                );
                self.call(Method::POST, &path, Some(&user), Some(json!({})))
                    .await?;
            }
        }
        Ok(())
    }
}
