//! A fake Discord for Causeway's tests: the REST API (`/api/v10/...`), a CDN for avatars and
//! attachments, and the gateway over ws:// with JSON text frames, written from Discord's
//! documented payloads. Tests drive it as Discord users would (post, edit, delete, react,
//! type, create channels and threads), read every REST call it received, make it answer 429
//! with `retry_after`, drop the websocket to force a RESUME, and end sessions so that they
//! cannot be resumed (op 9 Invalid Session, close code 4009): the client must IDENTIFY anew,
//! and what was posted in between is only in REST history, as on Discord.
//!
//! The bot is in every guild of the fake (and owns it unless [`FakeDiscord::set_owner`] says
//! otherwise); the application has the privileged intents given in
//! [`Options::privileged_intents`] enabled. Roles carry permissions and channels permission
//! overwrites ([`permissions`]): who may see a channel is computed as Discord does
//! ([`FakeDiscord::can_view`]), and the bot is refused (403) and sent no message events where
//! it may not.

mod gateway;
mod members;
mod model;
pub mod permissions;
mod rest;

pub use model::{iso, snowflake_ms, DISCORD_EPOCH_MS};
pub use permissions::Overwrite;

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
    /// Close the connection with this close code and reason.
    Close(u16, &'static str),
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
    /// The owner's user id (the bot unless a test says otherwise).
    owner: String,
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
    /// IDENTIFYs wait until then ([`FakeDiscord::invalidate_and_hold`]).
    hold_until: Option<std::time::Instant>,
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
            hold_until: None,
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
            owner: bot["id"].as_str().unwrap_or_default().to_string(),
            roles: vec![everyone],
            members,
        });
        s.announce_guild(&id);
        id
    }

    /// A role with the fake's default permissions ([`permissions::DEFAULT`]).
    pub fn add_role(&self, guild: &str, name: &str) -> String {
        self.add_role_with(guild, name, permissions::DEFAULT)
    }

    /// A role with these permissions (GUILD_ROLE_CREATE).
    pub fn add_role_with(&self, guild: &str, name: &str, permissions: u64) -> String {
        let mut s = self.lock();
        let id = s.ids.next();
        let Some(g) = s.guilds.iter_mut().find(|g| g.id == guild) else {
            return id;
        };
        let pos = g.roles.len() as i64;
        let mut role = model::role(&id, name, pos);
        role["permissions"] = json!(permissions.to_string());
        g.roles.push(role.clone());
        s.dispatch(
            "GUILD_ROLE_CREATE",
            json!({"guild_id": guild, "role": role}),
        );
        id
    }

    /// Change a role's permissions (GUILD_ROLE_UPDATE); @everyone's role id is the guild id.
    pub fn set_role_permissions(&self, guild: &str, role: &str, permissions: u64) {
        let mut s = self.lock();
        let Some(r) = s
            .guilds
            .iter_mut()
            .find(|g| g.id == guild)
            .and_then(|g| g.roles.iter_mut().find(|r| r["id"].as_str() == Some(role)))
        else {
            return;
        };
        r["permissions"] = json!(permissions.to_string());
        let role = r.clone();
        s.dispatch(
            "GUILD_ROLE_UPDATE",
            json!({"guild_id": guild, "role": role}),
        );
    }

    /// Give a member exactly these roles (GUILD_MEMBER_UPDATE). @everyone is not listed in a
    /// member's roles: every member has it.
    pub fn set_member_roles(&self, guild: &str, user: &str, roles: &[impl AsRef<str>]) {
        let mut s = self.lock();
        let Some(m) = s
            .guilds
            .iter_mut()
            .find(|g| g.id == guild)
            .and_then(|g| g.members.get_mut(user))
        else {
            return;
        };
        m["roles"] = json!(roles.iter().map(|r| r.as_ref()).collect::<Vec<_>>());
        let mut ev = m.clone();
        ev["guild_id"] = json!(guild);
        s.dispatch("GUILD_MEMBER_UPDATE", ev);
    }

    /// Hand the guild to another member (GUILD_UPDATE). The owner has every permission.
    pub fn set_owner(&self, guild: &str, user: &str) {
        let mut s = self.lock();
        let Some(i) = s.guilds.iter().position(|g| g.id == guild) else {
            return;
        };
        s.guilds[i].owner = user.to_string();
        let v = s.guild_object(&s.guilds[i]);
        s.dispatch("GUILD_UPDATE", v);
    }

    /// Replace a channel's permission overwrites (CHANNEL_UPDATE). Changing a category's
    /// changes those of its channels that were synced with it (had the same overwrites), each
    /// with its CHANNEL_UPDATE, as Discord's "Permission Syncing" says. Threads have none.
    pub fn set_overwrites(&self, channel: &str, overwrites: Vec<Overwrite>) {
        let mut s = self.lock();
        let Some(c) = s.channels.get(channel) else {
            return;
        };
        if c["thread_metadata"].is_object() {
            return;
        }
        let old = State::overwrites_of(c);
        let synced: Vec<String> = if c["type"].as_u64() == Some(4) {
            s.channels
                .values()
                .filter(|x| x["parent_id"].as_str() == Some(channel))
                .filter(|x| !x["thread_metadata"].is_object())
                .filter(|x| permissions::same(&State::overwrites_of(x), &old))
                .filter_map(|x| x["id"].as_str().map(str::to_string))
                .collect()
        } else {
            Vec::new()
        };
        let list: Vec<Value> = overwrites.iter().map(Overwrite::to_json).collect();
        for id in std::iter::once(channel.to_string()).chain(synced) {
            if let Some(x) = s.channels.get_mut(&id) {
                x["permission_overwrites"] = json!(list);
                let x = x.clone();
                s.dispatch("CHANNEL_UPDATE", x);
            }
        }
    }

    /// A channel's permission overwrites.
    pub fn overwrites(&self, channel: &str) -> Vec<Overwrite> {
        let s = self.lock();
        s.channels
            .get(channel)
            .map(State::overwrites_of)
            .unwrap_or_default()
    }

    /// Whether `user` may see `channel` of `guild`, computed as Discord does (base permissions
    /// from roles, the channel's overwrites; a thread as its parent; a private thread only
    /// for its creator and those who may manage threads). False for non-members.
    pub fn can_view(&self, guild: &str, channel: &str, user: &str) -> bool {
        let s = self.lock();
        s.guild_of(channel).as_str() == Some(guild) && s.can_view(channel, user)
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
    /// 15 forum, 2 voice). A channel made in a category starts synced with it: with the
    /// category's overwrites.
    pub fn add_channel(&self, guild: &str, name: &str, kind: u8, parent: Option<&str>) -> String {
        let mut s = self.lock();
        let id = s.ids.next();
        let pos = s.channels.len() as i64;
        let mut c = model::channel(&id, guild, name, kind, parent, pos);
        let category = parent
            .and_then(|p| s.channels.get(p))
            .filter(|p| p["type"].as_u64() == Some(4));
        if let Some(p) = category {
            c["permission_overwrites"] = p["permission_overwrites"].clone();
        }
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
        self.lock().add_thread(parent, name, owner, 11)
    }

    /// A private thread in `parent`, started by `owner`: seen by its creator and by those who
    /// may manage threads (the fake keeps no other thread members).
    pub fn add_private_thread(&self, parent: &str, name: &str, owner: &str) -> String {
        self.lock().add_thread(parent, name, owner, 12)
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

    /// Discord invalidates every session (op 9 Invalid Session with `d: false`): live
    /// connections get op 9 and stay open for a new IDENTIFY; the sessions and the dispatches
    /// kept for their RESUME are gone, so a RESUME of one is answered with op 9 `d: false`
    /// too, and a new IDENTIFY makes a new session (a new `session_id`) that gets only what
    /// happens from then on. What is posted before it is READY is dispatched to no one: REST
    /// history (`GET /channels/{id}/messages?after=`) is the only way to it, as on Discord.
    /// Returns how many sessions ended.
    pub fn invalidate_session(&self) -> usize {
        let mut s = self.lock();
        s.end_sessions(|| WsOut::Frame(json!({"op": 9, "d": false}).to_string()))
    }

    /// [`invalidate_session`](Self::invalidate_session), and IDENTIFYs are answered only once
    /// `hold` has passed: whatever a test posts meanwhile happens while the bot has no session
    /// at all, however quickly the client identifies again.
    pub fn invalidate_and_hold(&self, hold: std::time::Duration) -> usize {
        let mut s = self.lock();
        s.hold_until = Some(std::time::Instant::now() + hold);
        s.end_sessions(|| WsOut::Frame(json!({"op": 9, "d": false}).to_string()))
    }

    /// Every session times out: live connections are closed with 4009 ("Session timed out",
    /// which Discord documents as "reconnect and start a new one"), and the sessions cannot be
    /// resumed ([`invalidate_session`](Self::invalidate_session) says what that means).
    pub fn expire_session(&self) -> usize {
        let mut s = self.lock();
        s.end_sessions(|| WsOut::Close(4009, "Session timed out."))
    }

    /// Gateway sessions that exist (live or resumable).
    pub fn sessions(&self) -> usize {
        self.lock().sessions.len()
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
    /// End every gateway session, telling each live connection `how`; returns how many ended.
    fn end_sessions(&mut self, how: impl Fn() -> WsOut) -> usize {
        let ended = std::mem::take(&mut self.sessions);
        for sess in ended.values() {
            if let Some((_, tx)) = &sess.tx {
                let _ = tx.send(how());
            }
        }
        ended.len()
    }

    /// How long an IDENTIFY received now still waits ([`FakeDiscord::invalidate_and_hold`]).
    pub(crate) fn identify_hold(&self) -> Option<std::time::Duration> {
        self.hold_until
            .and_then(|t| t.checked_duration_since(std::time::Instant::now()))
    }

    /// A thread of `kind` (11 public, 12 private) in `parent` (THREAD_CREATE).
    fn add_thread(&mut self, parent: &str, name: &str, owner: &str, kind: u8) -> String {
        let id = self.ids.next();
        let guild = self
            .guild_of(parent)
            .as_str()
            .unwrap_or_default()
            .to_string();
        let parts = model::ThreadParts {
            id: &id,
            guild: &guild,
            parent,
            name,
            owner,
        };
        let mut t = model::thread(parts, kind, model::now_ms());
        self.channels.insert(id.clone(), t.clone());
        t["newly_created"] = json!(true);
        self.dispatch("THREAD_CREATE", t);
        id
    }

    /// A channel's `permission_overwrites`, read.
    fn overwrites_of(c: &Value) -> Vec<Overwrite> {
        c["permission_overwrites"]
            .as_array()
            .map(|l| l.iter().filter_map(Overwrite::from_json).collect())
            .unwrap_or_default()
    }

    /// What `user` may do in `channel` (0 when either is unknown or the user is no member).
    pub(crate) fn permissions(&self, channel: &str, user: &str) -> u64 {
        let Some(c) = self.channels.get(channel) else {
            return 0;
        };
        let gid = c["guild_id"].as_str().unwrap_or_default();
        let Some(g) = self.guilds.iter().find(|g| g.id == gid) else {
            return 0;
        };
        let Some(member) = g.members.get(user) else {
            return 0;
        };
        let roles: Vec<String> = member["roles"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let who = permissions::Member {
            user,
            roles: &roles,
            owner: g.owner == user,
        };
        let role_perms = |id: &str| {
            g.roles
                .iter()
                .find(|r| r["id"].as_str() == Some(id))
                .map(|r| permissions::bits(&r["permissions"]))
        };
        let base = permissions::base(gid, &who, role_perms);
        // Threads have no overwrites of their own: their parent's apply.
        let thread = c["thread_metadata"].is_object();
        let holder = match c["parent_id"].as_str() {
            Some(p) if thread => self.channels.get(p).unwrap_or(c),
            _ => c,
        };
        let p = permissions::in_channel(base, gid, &who, &State::overwrites_of(holder));
        let private = c["type"].as_u64() == Some(12);
        if private && p & permissions::MANAGE_THREADS == 0 && c["owner_id"].as_str() != Some(user) {
            return p & !permissions::VIEW_CHANNEL;
        }
        p
    }

    pub(crate) fn can_view(&self, channel: &str, user: &str) -> bool {
        self.permissions(channel, user) & permissions::VIEW_CHANNEL != 0
    }

    /// Whether the bot may see `channel` (owning the guild, it sees all: checked first, it is
    /// the common case and dispatches ask it often).
    pub(crate) fn bot_can_view(&self, channel: &str) -> bool {
        let bot = self.bot["id"].as_str().unwrap_or_default();
        let gid = self.guild_of(channel);
        let owns = self
            .guilds
            .iter()
            .any(|g| Some(g.id.as_str()) == gid.as_str() && g.owner == bot);
        owns || self.can_view(channel, bot)
    }

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
    /// Events of a channel the bot may not see are not sent.
    pub(crate) fn dispatch(&mut self, t: &str, d: Value) {
        let needs = gateway::intent_of(t, &d);
        let channel_event = t.starts_with("MESSAGE_") || t == "TYPING_START";
        if let (true, Some(c)) = (channel_event, d["channel_id"].as_str()) {
            if self.channels.contains_key(c) && !self.bot_can_view(c) {
                return;
            }
        }
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
        let mut v = model::guild(&g.id, &g.name, &g.owner, &g.roles);
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

#[cfg(test)]
mod tests {
    use super::permissions::{ADMINISTRATOR, MANAGE_THREADS, VIEW_CHANNEL};
    use super::*;

    /// A guild with a private category (hidden from @everyone, shown to a role), a channel in
    /// it, an open channel, and members: one with the role, one without, one admin.
    struct World {
        fake: FakeDiscord,
        guild: String,
        staff: String,
        category: String,
        inside: String,
        open: String,
        /// (with the role, without, admin)
        people: (String, String, String),
    }

    async fn world() -> World {
        let fake = FakeDiscord::start(Options::default()).await.expect("fake");
        let guild = fake.add_guild("G");
        let staff = fake.add_role_with(&guild, "staff", 0);
        let admins = fake.add_role_with(&guild, "admins", ADMINISTRATOR);
        let category = fake.add_channel(&guild, "Staff", 4, None);
        fake.set_overwrites(
            &category,
            vec![
                Overwrite::role(&guild, 0, VIEW_CHANNEL),
                Overwrite::role(&staff, VIEW_CHANNEL, 0),
            ],
        );
        let inside = fake.add_channel(&guild, "staff-room", 0, Some(&category));
        let open = fake.add_channel(&guild, "general", 0, None);
        let names = ["ann", "bob", "cy"];
        let ids: Vec<String> = names.iter().map(|n| fake.add_user(n, None)).collect();
        for id in &ids {
            fake.add_member(&guild, id, None);
        }
        fake.set_member_roles(&guild, &ids[0], &[&staff]);
        fake.set_member_roles(&guild, &ids[2], &[&admins]);
        World {
            fake,
            guild,
            staff,
            category,
            inside,
            open,
            people: (ids[0].clone(), ids[1].clone(), ids[2].clone()),
        }
    }

    #[tokio::test]
    async fn a_channel_made_in_a_private_category_is_private() {
        let w = world().await;
        let (ann, bob, cy) = &w.people;
        assert_eq!(w.fake.overwrites(&w.inside), w.fake.overwrites(&w.category));
        let seen = |c: &str| {
            [ann, bob, cy]
                .map(|u| w.fake.can_view(&w.guild, c, u))
                .to_vec()
        };
        assert_eq!(seen(&w.inside), [true, false, true]);
        assert_eq!(seen(&w.open), [true, true, true]);
        // a thread is seen as its parent; a private one by its creator and thread managers
        let thread = w.fake.add_thread(&w.inside, "plans", ann);
        assert_eq!(seen(&thread), [true, false, true]);
        let secret = w.fake.add_private_thread(&w.open, "secret", bob);
        assert_eq!(seen(&secret), [false, true, true]);
        w.fake
            .set_role_permissions(&w.guild, &w.staff, MANAGE_THREADS);
        assert_eq!(seen(&secret), [true, true, true]);
        // not a member, or another guild: no
        let stranger = w.fake.add_user("dee", None);
        assert!(!w.fake.can_view(&w.guild, &w.open, &stranger));
        let other = w.fake.add_guild("H");
        assert!(!w.fake.can_view(&other, &w.open, ann));
    }

    #[tokio::test]
    async fn a_category_change_reaches_the_channels_synced_with_it() {
        let w = world().await;
        let (_, bob, _) = &w.people;
        let own = w.fake.add_channel(&w.guild, "own", 0, Some(&w.category));
        w.fake
            .set_overwrites(&own, vec![Overwrite::member(bob, VIEW_CHANNEL, 0)]);
        let open_up = vec![Overwrite::role(&w.staff, VIEW_CHANNEL, 0)];
        w.fake.set_overwrites(&w.category, open_up.clone());
        assert_eq!(w.fake.overwrites(&w.inside), open_up, "synced: follows");
        assert_eq!(
            w.fake.overwrites(&own),
            vec![Overwrite::member(bob, VIEW_CHANNEL, 0)],
            "not synced: kept its own"
        );
        assert!(w.fake.can_view(&w.guild, &w.inside, bob));
    }

    #[tokio::test]
    async fn the_bot_sees_what_its_permissions_let_it_see() {
        let w = world().await;
        let (ann, _, _) = &w.people;
        let bot = w.fake.bot_id();
        assert!(w.fake.can_view(&w.guild, &w.inside, &bot), "the owner");
        w.fake.set_owner(&w.guild, ann);
        assert!(!w.fake.can_view(&w.guild, &w.inside, &bot));
        assert!(w.fake.can_view(&w.guild, &w.open, &bot));
        {
            let s = w.fake.lock();
            assert!(!s.bot_can_view(&w.inside) && s.bot_can_view(&w.open));
        }
        w.fake.set_member_roles(&w.guild, &bot, &[&w.staff]);
        assert!(w.fake.can_view(&w.guild, &w.inside, &bot));
        // @everyone losing VIEW_CHANNEL hides even the open channel from a role-less member
        w.fake.set_member_roles(&w.guild, &bot, &[] as &[&str]);
        w.fake.set_role_permissions(&w.guild, &w.guild, 0);
        assert!(!w.fake.can_view(&w.guild, &w.open, &bot));
    }
}
