//! A fake Discord for Causeway's tests: the REST API (`/api/v10/...`), a CDN for avatars and
//! attachments, and the gateway over ws:// with JSON text frames, written from Discord's
//! documented payloads. Tests drive it as Discord users would (post, edit, delete, react,
//! type, create channels and threads), read every REST call it received, make it answer 429
//! with `retry_after`, and drop the websocket to force a RESUME.
//!
//! The bot is in every guild of the fake; the application has the privileged intents given
//! in [`Options::privileged_intents`] enabled.

mod gateway;
mod members;
mod model;
mod rest;

pub use model::{iso, snowflake_ms, DISCORD_EPOCH_MS};

use model::Snowflakes;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

pub const INTENT_GUILD_MEMBERS: u64 = 1 << 1;
pub const INTENT_GUILD_PRESENCES: u64 = 1 << 8;
pub const INTENT_MESSAGE_CONTENT: u64 = 1 << 15;

pub struct Options {
    pub token: String,
    /// Privileged intents enabled for the application (others close the gateway with 4014).
    pub privileged_intents: u64,
    pub heartbeat_interval_ms: u64,
    /// How often one session may ask for a guild's whole member list (Discord: 30 s);
    /// sooner gets RATE_LIMITED.
    pub member_request_window: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            token: "fake-bot-token.Xy12".into(),
            privileged_intents: INTENT_MESSAGE_CONTENT | INTENT_GUILD_MEMBERS,
            heartbeat_interval_ms: 41_250,
            member_request_window: std::time::Duration::from_secs(30),
        }
    }
}

/// One REST request as the fake received it.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    /// The path under /api/v10, e.g. `/channels/1/messages`.
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// The JSON body (for multipart: `payload_json`).
    pub body: Value,
    /// Uploaded files: (field name, filename, size).
    pub files: Vec<(String, String, usize)>,
    pub authorized: bool,
    /// Answered with 429.
    pub limited: bool,
}

pub(crate) struct Limit {
    path_contains: String,
    times: u32,
    retry_after: f64,
}

pub(crate) enum WsOut {
    Frame(String),
    /// Drop the TCP connection without a close frame.
    Drop,
}

pub(crate) struct GwSession {
    seq: u64,
    /// What IDENTIFY asked for: the intents and large threshold member lists follow.
    view: members::View,
    /// When this session last asked for each guild's whole member list.
    full_requests: BTreeMap<String, std::time::Instant>,
    log: Vec<(u64, String)>,
    tx: Option<(u64, mpsc::UnboundedSender<WsOut>)>,
}

pub(crate) struct GuildState {
    id: String,
    name: String,
    roles: Vec<Value>,
    members: BTreeMap<String, Value>,
}

pub(crate) struct State {
    opts: Options,
    base: String,
    ids: Snowflakes,
    bot: Value,
    users: BTreeMap<String, Value>,
    guilds: Vec<GuildState>,
    /// Channels and threads by id.
    channels: BTreeMap<String, Value>,
    /// Messages of each channel, oldest first.
    messages: BTreeMap<String, Vec<Value>>,
    /// message id -> [(emoji key, emoji object, users)]
    reactions: BTreeMap<String, Vec<(String, Value, Vec<String>)>>,
    webhooks: BTreeMap<String, Value>,
    files: BTreeMap<String, (String, Vec<u8>)>,
    calls: Vec<Call>,
    limits: Vec<Limit>,
    sessions: BTreeMap<String, GwSession>,
    connections: u64,
    identifies: u32,
    resumes: u32,
    /// REQUEST_GUILD_MEMBERS answered, and answered with RATE_LIMITED.
    member_requests: u32,
    member_requests_limited: u32,
}

/// What a test posts as a Discord user.
#[derive(Default, Clone)]
pub struct Post {
    pub content: String,
    pub reply_to: Option<String>,
    /// (filename, content type, bytes)
    pub files: Vec<(String, String, Vec<u8>)>,
    pub embeds: Vec<Value>,
}

impl Post {
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            ..Self::default()
        }
    }
}

/// A running fake; clones share it. Stops with the test's runtime.
#[derive(Clone)]
pub struct FakeDiscord {
    pub(crate) state: Arc<Mutex<State>>,
    /// `http://127.0.0.1:PORT`: REST under /api/v10, the CDN under /cdn, the gateway at /gateway.
    pub base: String,
}

impl FakeDiscord {
    pub async fn start(opts: Options) -> std::io::Result<FakeDiscord> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let mut ids = Snowflakes::default();
        let bot_id = ids.next();
        let bot = model::user(&bot_id, "Causeway Bridge", None, true);
        let state = State {
            opts,
            base: base.clone(),
            ids,
            bot,
            users: BTreeMap::new(),
            guilds: Vec::new(),
            channels: BTreeMap::new(),
            messages: BTreeMap::new(),
            reactions: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            files: BTreeMap::new(),
            calls: Vec::new(),
            limits: Vec::new(),
            sessions: BTreeMap::new(),
            connections: 0,
            identifies: 0,
            resumes: 0,
            member_requests: 0,
            member_requests_limited: 0,
        };
        let fake = FakeDiscord {
            state: Arc::new(Mutex::new(state)),
            base,
        };
        let app = rest::router(fake.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("fake discord stopped: {e}");
            }
        });
        Ok(fake)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn api_url(&self) -> String {
        format!("{}/api/v10", self.base)
    }

    pub fn cdn_url(&self) -> String {
        format!("{}/cdn", self.base)
    }

    pub fn token(&self) -> String {
        self.lock().opts.token.clone()
    }

    pub fn bot_id(&self) -> String {
        self.lock().bot["id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub fn add_user(&self, username: &str, global_name: Option<&str>) -> String {
        let mut s = self.lock();
        let id = s.ids.next();
        let u = model::user(&id, username, global_name, false);
        s.users.insert(id.clone(), u);
        id
    }

    /// A guild the bot is in, with its @everyone role; announced with GUILD_CREATE to live
    /// gateway sessions.
    pub fn add_guild(&self, name: &str) -> String {
        let mut s = self.lock();
        let id = s.ids.next();
        let everyone = model::role(&id, "@everyone", 0);
        let bot = s.bot.clone();
        let bot_id = bot["id"].as_str().unwrap_or_default().to_string();
        let mut members = BTreeMap::new();
        members.insert(bot_id, model::member(&bot, None, model::now_ms()));
        s.guilds.push(GuildState {
            id: id.clone(),
            name: name.into(),
            roles: vec![everyone],
            members,
        });
        s.announce_guild(&id);
        id
    }

    pub fn add_role(&self, guild: &str, name: &str) -> String {
        let mut s = self.lock();
        let id = s.ids.next();
        if let Some(g) = s.guilds.iter_mut().find(|g| g.id == guild) {
            let pos = g.roles.len() as i64;
            g.roles.push(model::role(&id, name, pos));
        }
        id
    }

    pub fn add_member(&self, guild: &str, user: &str, nick: Option<&str>) {
        let mut s = self.lock();
        let Some(u) = s.users.get(user).cloned() else {
            return;
        };
        let m = model::member(&u, nick, model::now_ms());
        if let Some(g) = s.guilds.iter_mut().find(|g| g.id == guild) {
            g.members.insert(user.to_string(), m.clone());
        }
        let mut ev = m;
        ev["guild_id"] = json!(guild);
        s.dispatch("GUILD_MEMBER_ADD", ev);
    }

    /// A guild channel; `kind` is Discord's channel type (0 text, 4 category, 5 announcement,
    /// 15 forum, 2 voice).
    pub fn add_channel(&self, guild: &str, name: &str, kind: u8, parent: Option<&str>) -> String {
        let mut s = self.lock();
        let id = s.ids.next();
        let pos = s.channels.len() as i64;
        let c = model::channel(&id, guild, name, kind, parent, pos);
        s.channels.insert(id.clone(), c.clone());
        s.dispatch("CHANNEL_CREATE", c);
        id
    }

    pub fn rename_channel(&self, channel: &str, name: &str) {
        let mut s = self.lock();
        let Some(c) = s.channels.get_mut(channel) else {
            return;
        };
        c["name"] = json!(name);
        let c = c.clone();
        let event = if c["thread_metadata"].is_object() {
            "THREAD_UPDATE"
        } else {
            "CHANNEL_UPDATE"
        };
        s.dispatch(event, c);
    }

    pub fn delete_channel(&self, channel: &str) {
        let mut s = self.lock();
        let Some(c) = s.channels.remove(channel) else {
            return;
        };
        s.messages.remove(channel);
        if c["thread_metadata"].is_object() {
            let d = json!({"id": c["id"], "guild_id": c["guild_id"], "parent_id": c["parent_id"], "type": c["type"]});
            s.dispatch("THREAD_DELETE", d);
        } else {
            s.dispatch("CHANNEL_DELETE", c);
        }
    }

    /// A public thread in `parent` (a forum post when the parent is a forum), started by `owner`.
    pub fn add_thread(&self, parent: &str, name: &str, owner: &str) -> String {
        let mut s = self.lock();
        let id = s.ids.next();
        let guild = s.channels.get(parent).map(|c| c["guild_id"].clone());
        let guild = guild
            .and_then(|g| g.as_str().map(str::to_string))
            .unwrap_or_default();
        let mut t = model::thread(&id, &guild, parent, name, owner, model::now_ms());
        s.channels.insert(id.clone(), t.clone());
        t["newly_created"] = json!(true);
        s.dispatch("THREAD_CREATE", t);
        id
    }

    /// A user posts in a channel (MESSAGE_CREATE); returns the message id.
    pub fn post(&self, channel: &str, user: &str, post: Post) -> String {
        let mut s = self.lock();
        let author = s.users.get(user).cloned().unwrap_or(Value::Null);
        let mut attachments = Vec::new();
        for (name, ctype, bytes) in post.files {
            attachments.push(s.store_file(channel, &name, &ctype, bytes));
        }
        s.create_message(
            channel,
            author,
            &post.content,
            None,
            attachments,
            post.embeds,
            post.reply_to.as_deref(),
            None,
        )
        .unwrap_or_default()
    }

    /// A user edits their message (MESSAGE_UPDATE with the full message).
    pub fn edit(&self, channel: &str, message: &str, content: &str) {
        let mut s = self.lock();
        s.update_message(channel, message, content);
    }

    pub fn delete(&self, channel: &str, message: &str) {
        let mut s = self.lock();
        s.delete_message(channel, message);
    }

    pub fn bulk_delete(&self, channel: &str, ids: &[&str]) {
        let mut s = self.lock();
        for id in ids {
            s.remove_message(channel, id);
        }
        let guild = s.guild_of(channel);
        s.dispatch(
            "MESSAGE_DELETE_BULK",
            json!({"ids": ids, "channel_id": channel, "guild_id": guild}),
        );
    }

    /// `emoji`: a unicode emoji, or `name:id` for a custom one.
    pub fn react(&self, user: &str, channel: &str, message: &str, emoji: &str) {
        self.lock().reaction(user, channel, message, emoji, true);
    }

    pub fn unreact(&self, user: &str, channel: &str, message: &str, emoji: &str) {
        self.lock().reaction(user, channel, message, emoji, false);
    }

    /// A moderator removes every reaction of a message (MESSAGE_REACTION_REMOVE_ALL).
    pub fn clear_reactions(&self, channel: &str, message: &str) {
        let mut s = self.lock();
        s.reactions.remove(message);
        let guild = s.guild_of(channel);
        s.dispatch(
            "MESSAGE_REACTION_REMOVE_ALL",
            json!({"channel_id": channel, "message_id": message, "guild_id": guild}),
        );
    }

    /// A moderator removes one emoji from a message (MESSAGE_REACTION_REMOVE_EMOJI).
    pub fn clear_emoji(&self, channel: &str, message: &str, emoji: &str) {
        let mut s = self.lock();
        let (key, obj) = model_emoji(emoji);
        if let Some(list) = s.reactions.get_mut(message) {
            list.retain(|(k, _, _)| *k != key);
        }
        let guild = s.guild_of(channel);
        s.dispatch(
            "MESSAGE_REACTION_REMOVE_EMOJI",
            json!({"channel_id": channel, "message_id": message, "guild_id": guild, "emoji": obj}),
        );
    }

    pub fn typing(&self, user: &str, channel: &str) {
        let mut s = self.lock();
        s.typing(user, channel);
    }

    /// Every REST call so far, in the order received.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The messages of a channel, oldest first.
    pub fn messages(&self, channel: &str) -> Vec<Value> {
        self.lock()
            .messages
            .get(channel)
            .cloned()
            .unwrap_or_default()
    }

    pub fn webhooks(&self) -> Vec<Value> {
        self.lock().webhooks.values().cloned().collect()
    }

    /// Someone deletes a webhook in Discord's settings.
    pub fn delete_webhook(&self, id: &str) {
        self.lock().webhooks.remove(id);
    }

    /// The users who reacted with `emoji` to `message`.
    pub fn reactors(&self, message: &str, emoji: &str) -> Vec<String> {
        let key = model_emoji(emoji).0;
        let s = self.lock();
        s.reactions
            .get(message)
            .and_then(|l| l.iter().find(|(k, _, _)| *k == key))
            .map(|(_, _, u)| u.clone())
            .unwrap_or_default()
    }

    /// The next `times` requests whose path contains `path_contains` get 429 with this
    /// `retry_after` (seconds).
    pub fn rate_limit(&self, path_contains: &str, times: u32, retry_after: f64) {
        self.lock().limits.push(Limit {
            path_contains: path_contains.into(),
            times,
            retry_after,
        });
    }

    /// Drop every gateway connection without a close frame (the client should RESUME).
    pub fn drop_gateway(&self) {
        let s = self.lock();
        for sess in s.sessions.values() {
            if let Some((_, tx)) = &sess.tx {
                let _ = tx.send(WsOut::Drop);
            }
        }
    }

    /// (IDENTIFYs, RESUMEs) received so far.
    pub fn gateway_counts(&self) -> (u32, u32) {
        let s = self.lock();
        (s.identifies, s.resumes)
    }

    /// REQUEST_GUILD_MEMBERS (op 8) the gateway answered with chunks, and with RATE_LIMITED.
    pub fn member_requests(&self) -> (u32, u32) {
        let s = self.lock();
        (s.member_requests, s.member_requests_limited)
    }

    /// A guild's outage ends: GUILD_DELETE with `unavailable`, then GUILD_CREATE again, to
    /// every live session (as Discord does when a guild comes back).
    pub fn guild_outage(&self, guild: &str) {
        let mut s = self.lock();
        s.dispatch("GUILD_DELETE", json!({"id": guild, "unavailable": true}));
        s.announce_guild(guild);
    }

    /// Gateway sessions with a live connection.
    pub fn connected(&self) -> usize {
        self.lock()
            .sessions
            .values()
            .filter(|s| s.tx.is_some())
            .count()
    }
}

/// (reaction key, emoji object) for a unicode emoji or `name:id`.
pub(crate) fn model_emoji(emoji: &str) -> (String, Value) {
    match emoji.split_once(':') {
        Some((name, id)) if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) => (
            format!("{name}:{id}"),
            json!({"id": id, "name": name, "animated": false}),
        ),
        _ => (emoji.to_string(), json!({"id": null, "name": emoji})),
    }
}

impl State {
    /// GUILD_CREATE to every session, each with the member list its intents allow.
    fn announce_guild(&mut self, guild: &str) {
        let created: Vec<(String, Value)> = self
            .sessions
            .iter()
            .map(|(sid, sess)| (sid.clone(), self.guild_create(guild, sess.view)))
            .collect();
        for (sid, d) in created {
            self.send_to(&sid, "GUILD_CREATE", d);
        }
    }

    /// A dispatch to one session.
    pub(crate) fn send_to(&mut self, session: &str, t: &str, d: Value) {
        let Some(sess) = self.sessions.get_mut(session) else {
            return;
        };
        sess.seq += 1;
        let frame = json!({"op": 0, "t": t, "s": sess.seq, "d": d}).to_string();
        sess.log.push((sess.seq, frame.clone()));
        if let Some((_, tx)) = &sess.tx {
            let _ = tx.send(WsOut::Frame(frame));
        }
    }

    /// An event to every session whose intents ask for it (`gateway::intent_of`).
    pub(crate) fn dispatch(&mut self, t: &str, d: Value) {
        let needs = gateway::intent_of(t, &d);
        for sess in self
            .sessions
            .values_mut()
            .filter(|s| needs.is_none_or(|i| s.view.intents & i != 0))
        {
            sess.seq += 1;
            let frame = json!({"op": 0, "t": t, "s": sess.seq, "d": d}).to_string();
            sess.log.push((sess.seq, frame.clone()));
            if let Some((_, tx)) = &sess.tx {
                let _ = tx.send(WsOut::Frame(frame));
            }
        }
    }

    pub(crate) fn guild_of(&self, channel: &str) -> Value {
        self.channels
            .get(channel)
            .map(|c| c["guild_id"].clone())
            .unwrap_or(Value::Null)
    }

    pub(crate) fn guild_object(&self, g: &GuildState) -> Value {
        let owner = self.bot["id"].as_str().unwrap_or_default();
        let mut v = model::guild(&g.id, &g.name, owner, &g.roles);
        v["name"] = json!(g.name);
        v
    }

    /// GUILD_CREATE as a session with `view` gets it (`members.rs`).
    pub(crate) fn guild_create(&self, id: &str, view: members::View) -> Value {
        let Some(g) = self.guilds.iter().find(|g| g.id == id) else {
            return Value::Null;
        };
        let mut v = self.guild_object(g);
        let in_guild = |c: &&Value| c["guild_id"].as_str() == Some(id);
        let (threads, channels): (Vec<Value>, Vec<Value>) = self
            .channels
            .values()
            .filter(in_guild)
            .cloned()
            .partition(|c| c["thread_metadata"].is_object());
        v["joined_at"] = json!(model::iso(model::snowflake_ms(id)));
        let bot = self.bot["id"].as_str().unwrap_or_default();
        let (large, members) = members::in_guild_create(g, bot, view);
        v["large"] = json!(large);
        v["unavailable"] = json!(false);
        v["member_count"] = json!(g.members.len());
        v["voice_states"] = json!([]);
        v["members"] = json!(members);
        v["channels"] = json!(channels);
        v["threads"] = json!(threads);
        v["presences"] = json!([]);
        v["stage_instances"] = json!([]);
        v["guild_scheduled_events"] = json!([]);
        v["soundboard_sounds"] = json!([]);
        v
    }

    /// The member object of `user` in the guild of `channel`, without its user.
    fn member_in(&self, channel: &str, user: &str) -> Option<Value> {
        let guild = self.guild_of(channel);
        let g = self
            .guilds
            .iter()
            .find(|g| Some(g.id.as_str()) == guild.as_str())?;
        let mut m = g.members.get(user)?.clone();
        if let Some(o) = m.as_object_mut() {
            o.remove("user");
        }
        Some(m)
    }

    /// The member object of `user` with its user (as reaction and typing events carry it).
    fn member_with_user(&self, channel: &str, user: &str) -> Option<Value> {
        let mut m = self.member_in(channel, user)?;
        m["user"] = self
            .users
            .get(user)
            .cloned()
            .unwrap_or_else(|| self.bot.clone());
        Some(m)
    }

    pub(crate) fn store_file(
        &mut self,
        channel: &str,
        name: &str,
        ctype: &str,
        bytes: Vec<u8>,
    ) -> Value {
        let id = self.ids.next();
        let ex = format!("{:x}", model::now_ms() / 1000 + 86_400);
        let url = format!(
            "{}/cdn/attachments/{channel}/{id}/{name}?ex={ex}&is={ex}&hm=0f{id}",
            self.base
        );
        let size = bytes.len();
        self.files.insert(
            format!("/cdn/attachments/{channel}/{id}/{name}"),
            (ctype.to_string(), bytes),
        );
        model::attachment(&id, name, size, &url, ctype)
    }

    /// Store a message and announce it; None when the channel does not exist.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_message(
        &mut self,
        channel: &str,
        author: Value,
        content: &str,
        webhook: Option<&str>,
        attachments: Vec<Value>,
        embeds: Vec<Value>,
        reply_to: Option<&str>,
        allowed_users: Option<Vec<String>>,
    ) -> Option<String> {
        if !self.channels.contains_key(channel) {
            return None;
        }
        let id = self.ids.next();
        let mentions = self.mentions(content, allowed_users);
        let guild = self.guild_of(channel);
        let reference = reply_to.and_then(|r| {
            let referenced = self.find_message(channel, r)?.clone();
            Some((
                json!({"type": 0, "message_id": r, "channel_id": channel, "guild_id": guild}),
                referenced,
            ))
        });
        let author_id = author["id"].as_str().unwrap_or_default().to_string();
        let m = model::message(model::MessageParts {
            id: &id,
            channel,
            author,
            content,
            ms: model::snowflake_ms(&id),
            mentions,
            attachments,
            embeds,
            webhook,
            reference,
        });
        self.messages
            .entry(channel.to_string())
            .or_default()
            .push(m.clone());
        if let Some(c) = self.channels.get_mut(channel) {
            c["last_message_id"] = json!(id);
        }
        let mut ev = m;
        ev["guild_id"] = guild;
        if webhook.is_none() {
            if let Some(member) = self.member_in(channel, &author_id) {
                ev["member"] = member;
            }
        }
        self.dispatch("MESSAGE_CREATE", ev);
        Some(id)
    }

    /// Users mentioned as `<@id>` / `<@!id>` that exist, limited to `allowed` when given.
    fn mentions(&self, content: &str, allowed: Option<Vec<String>>) -> Vec<Value> {
        let mut out = Vec::new();
        for piece in content.split("<@").skip(1) {
            let id: String = piece
                .trim_start_matches('!')
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            let ok = allowed.as_ref().is_none_or(|a| a.contains(&id));
            if let (true, Some(u)) = (ok, self.users.get(&id)) {
                if !out.contains(u) {
                    out.push(u.clone());
                }
            }
        }
        out
    }

    pub(crate) fn find_message(&self, channel: &str, id: &str) -> Option<&Value> {
        // Newest last: look from the end, where most look-ups land.
        self.messages
            .get(channel)?
            .iter()
            .rev()
            .find(|m| m["id"].as_str() == Some(id))
    }

    pub(crate) fn update_message(
        &mut self,
        channel: &str,
        id: &str,
        content: &str,
    ) -> Option<Value> {
        let guild = self.guild_of(channel);
        let m = self
            .messages
            .get_mut(channel)?
            .iter_mut()
            .find(|m| m["id"].as_str() == Some(id))?;
        m["content"] = json!(content);
        m["edited_timestamp"] = json!(model::iso(model::now_ms()));
        let mut ev = m.clone();
        ev["guild_id"] = guild;
        let out = m.clone();
        self.dispatch("MESSAGE_UPDATE", ev);
        Some(out)
    }

    fn remove_message(&mut self, channel: &str, id: &str) -> bool {
        let Some(list) = self.messages.get_mut(channel) else {
            return false;
        };
        let before = list.len();
        list.retain(|m| m["id"].as_str() != Some(id));
        self.reactions.remove(id);
        before != list.len()
    }

    pub(crate) fn delete_message(&mut self, channel: &str, id: &str) -> bool {
        if !self.remove_message(channel, id) {
            return false;
        }
        let guild = self.guild_of(channel);
        self.dispatch(
            "MESSAGE_DELETE",
            json!({"id": id, "channel_id": channel, "guild_id": guild}),
        );
        true
    }

    pub(crate) fn reaction(
        &mut self,
        user: &str,
        channel: &str,
        message: &str,
        emoji: &str,
        add: bool,
    ) -> bool {
        let author = match self.find_message(channel, message) {
            Some(m) => m["author"]["id"].clone(),
            None => return false,
        };
        let (key, obj) = model_emoji(emoji);
        let list = self.reactions.entry(message.to_string()).or_default();
        let pos = list.iter().position(|(k, _, _)| *k == key);
        let changed = match (pos, add) {
            (Some(i), true) if list[i].2.iter().any(|u| u == user) => false,
            (Some(i), true) => {
                list[i].2.push(user.to_string());
                true
            }
            (None, true) => {
                list.push((key, obj.clone(), vec![user.to_string()]));
                true
            }
            (Some(i), false) => {
                let before = list[i].2.len();
                list[i].2.retain(|u| u != user);
                let changed = before != list[i].2.len();
                if list[i].2.is_empty() {
                    list.remove(i);
                }
                changed
            }
            (None, false) => false,
        };
        if !changed {
            return true;
        }
        let guild = self.guild_of(channel);
        let mut d = json!({
            "user_id": user, "channel_id": channel, "message_id": message,
            "guild_id": guild, "emoji": obj, "burst": false, "type": 0
        });
        let name = if add {
            d["message_author_id"] = author;
            d["burst_colors"] = json!([]);
            if let Some(m) = self.member_with_user(channel, user) {
                d["member"] = m;
            }
            "MESSAGE_REACTION_ADD"
        } else {
            "MESSAGE_REACTION_REMOVE"
        };
        self.dispatch(name, d);
        true
    }

    pub(crate) fn typing(&mut self, user: &str, channel: &str) {
        let guild = self.guild_of(channel);
        let mut d = json!({
            "channel_id": channel, "guild_id": guild, "user_id": user,
            "timestamp": model::now_ms() / 1000
        });
        if let Some(m) = self.member_with_user(channel, user) {
            d["member"] = m;
        }
        self.dispatch("TYPING_START", d);
    }
}
