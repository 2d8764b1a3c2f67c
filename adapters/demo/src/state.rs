//! The demo network's in-memory world.

use crate::{DemoConfig, BOT};
use causeway_api::*;
use std::collections::{BTreeMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn event_id(e: &RemoteEvent) -> Option<&RemoteMessageId> {
    match &e.kind {
        RemoteEventKind::Message { id, .. } => Some(id),
        _ => None,
    }
}

pub struct Room {
    pub info: RoomInfo,
    /// The last `KEPT` messages, oldest first (older ones are past the network's horizon).
    pub history: VecDeque<RemoteEvent>,
}

/// How many messages a room keeps, and how many sent messages and applied actions are kept
/// for tests to read: a demo left running does not grow without end.
pub const KEPT: usize = 10_000;

/// Append, dropping the oldest beyond `KEPT`.
pub fn keep<T>(log: &mut VecDeque<T>, item: T) {
    if log.len() >= KEPT {
        log.pop_front();
    }
    log.push_back(item);
}

pub struct State {
    pub rooms: BTreeMap<RoomKey, Room>,
    pub spaces: BTreeMap<RemoteSpaceId, SpaceInfo>,
    pub users: BTreeMap<RemoteUserId, UserInfo>,
    pub sinks: Vec<EventSink>,
    pub sent: VecDeque<OutgoingMessage>,
    pub actions: VecDeque<Action>,
    pub fail_next: Option<NetworkError>,
    pub pump: Option<tokio::sync::mpsc::UnboundedSender<RemoteEvent>>,
    /// Base URL of the demo's file server, once started.
    pub files_base: Option<String>,
    bot_answers: bool,
    bot_replies: bool,
    seq: u64,
}

/// The longest burst the bot produces for "!burst N".
const MAX_BURST: usize = 10_000;

impl State {
    pub fn new(config: &DemoConfig) -> Self {
        let mut s = Self {
            rooms: BTreeMap::new(),
            spaces: BTreeMap::new(),
            users: BTreeMap::new(),
            sinks: Vec::new(),
            sent: VecDeque::new(),
            actions: VecDeque::new(),
            fail_next: None,
            pump: None,
            files_base: None,
            bot_answers: config.bot_answers,
            bot_replies: config.bot_replies,
            seq: 0,
        };
        s.users.insert(
            RemoteUserId::new(BOT),
            UserInfo {
                id: RemoteUserId::new(BOT),
                display_name: config.bot_name.clone(),
                avatar_url: None,
                is_bot: true,
            },
        );
        for (id, name) in [("alice", "Alice"), ("bob", "Bob")] {
            s.add_user(id, name);
        }
        for room in &config.rooms {
            s.add_room(room, room);
        }
        // A community with two rooms and a nested space (a category), to link as a space.
        s.add_space("community", "Demo Community", None);
        s.add_space("community-archive", "Archive", Some("community"));
        s.add_room_in_space("community", "general", "General");
        s.add_room_in_space("community", "offtopic", "Off topic");
        s.add_room_in_space("community-archive", "old-news", "Old news");
        s
    }

    pub fn add_space(&mut self, id: &str, name: &str, parent: Option<&str>) {
        let id = RemoteSpaceId::new(id);
        self.spaces.insert(
            id.clone(),
            SpaceInfo {
                id: id.clone(),
                name: name.into(),
                avatar_url: None,
                rooms: Vec::new(),
                children: Vec::new(),
            },
        );
        if let Some(p) = parent.and_then(|p| self.spaces.get_mut(&RemoteSpaceId::new(p))) {
            p.children.push(id);
        }
    }

    /// A room inside a space; returns its info (for a RoomChanged event).
    pub fn add_room_in_space(&mut self, space: &str, id: &str, name: &str) -> RoomInfo {
        self.add_room(id, name);
        let key = RoomKey::shared(id);
        let sid = RemoteSpaceId::new(space);
        if let Some(sp) = self.spaces.get_mut(&sid) {
            if !sp.rooms.contains(&key) {
                sp.rooms.push(key.clone());
            }
        }
        match self.rooms.get_mut(&key) {
            Some(r) => {
                r.info.space = Some(sid);
                r.info.clone()
            }
            None => RoomInfo::default(),
        }
    }

    /// A room deleted on the network.
    pub fn remove_room(&mut self, id: &str) -> bool {
        let key = RoomKey::shared(id);
        for sp in self.spaces.values_mut() {
            sp.rooms.retain(|k| *k != key);
        }
        self.rooms.remove(&key).is_some()
    }

    /// "#room", "@user", "demo:room/x", "demo:user/x", or a bare id (a room first).
    pub fn resolve(&self, address: &str) -> Result<Resolved, NetworkError> {
        let a = address.trim();
        let room = |id: &str| {
            let key = RoomKey::shared(id);
            self.rooms.contains_key(&key).then_some(Resolved::Room(key))
        };
        let user = |id: &str| {
            let u = RemoteUserId::new(id);
            self.users.contains_key(&u).then_some(Resolved::User(u))
        };
        let found = if let Some(r) = a.strip_prefix('#').or(a.strip_prefix("demo:room/")) {
            room(r)
        } else if let Some(u) = a.strip_prefix('@').or(a.strip_prefix("demo:user/")) {
            user(u)
        } else {
            room(a).or_else(|| user(a))
        };
        found.ok_or_else(|| {
            NetworkError::NotFound(format!("nothing called {a:?} on the demo network"))
        })
    }

    pub fn add_user(&mut self, id: &str, name: &str) {
        let info = UserInfo {
            id: RemoteUserId::new(id),
            display_name: name.into(),
            avatar_url: self
                .files_base
                .as_ref()
                .map(|b| format!("{b}/avatar/{id}.png")),
            is_bot: id == BOT,
        };
        self.users.insert(info.id.clone(), info);
    }

    /// The file server is up: every user gets an avatar there.
    pub fn set_files_base(&mut self, base: String) {
        for (id, u) in self.users.iter_mut() {
            u.avatar_url = Some(format!("{base}/avatar/{id}.png"));
        }
        let users: Vec<UserInfo> = self.users.values().cloned().collect();
        for r in self.rooms.values_mut() {
            for m in r.info.members.iter_mut() {
                if let Some(u) = users.iter().find(|u| u.id == m.id) {
                    m.avatar_url = u.avatar_url.clone();
                }
            }
        }
        self.files_base = Some(base);
    }

    pub fn add_room(&mut self, id: &str, name: &str) {
        let key = RoomKey::shared(id);
        let members = self.users.values().cloned().collect();
        let info = RoomInfo {
            key: key.clone(),
            name: name.into(),
            topic: Some(format!("The demo room {name}")),
            kind: RoomKind::Channel,
            space: None,
            avatar_url: None,
            members,
            xmpp_user: None,
            restricted: false,
        };
        self.rooms.entry(key).or_insert(Room {
            info,
            history: VecDeque::new(),
        });
    }

    pub fn room(&self, key: &RoomKey) -> Result<&Room, NetworkError> {
        self.rooms
            .get(key)
            .ok_or_else(|| NetworkError::NotFound(format!("room {}", key.room)))
    }

    /// Ids unique across restarts of the process (a network never reuses one): numbered on
    /// from the time the network started, in microseconds, so they also sort in order.
    fn next_id(&mut self) -> RemoteMessageId {
        if self.seq == 0 {
            self.seq = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
        }
        self.seq += 1;
        RemoteMessageId::new(format!("d{:020}", self.seq))
    }

    /// A message by `user` in `room`: kept in history, returned for delivery.
    pub fn post(
        &mut self,
        room: &RoomKey,
        user: &str,
        content: Content,
        reply_to: Option<RemoteMessageId>,
        txn: Option<TxnId>,
    ) -> RemoteEvent {
        let id = self.next_id();
        let event = RemoteEvent {
            room: room.clone(),
            sender: RemoteUserId::new(user),
            at: now_ms(),
            kind: RemoteEventKind::Message {
                id,
                content,
                reply_to,
                txn,
            },
        };
        self.record(event.clone());
        event
    }

    /// Keep what an event does to its room's history, as a network's message list shows it:
    /// messages are added, edits change them, deletions remove them; other events leave no
    /// trace (rooms unknown to the demo are ignored).
    pub fn record(&mut self, event: RemoteEvent) {
        let Some(room) = self.rooms.get_mut(&event.room) else {
            return;
        };
        match &event.kind {
            RemoteEventKind::Message { .. } => keep(&mut room.history, event),
            RemoteEventKind::Edit { target, content } => {
                if let Some(RemoteEventKind::Message { content: c, .. }) = room
                    .history
                    .iter_mut()
                    .find(|e| event_id(e) == Some(target))
                    .map(|e| &mut e.kind)
                {
                    *c = content.clone();
                }
            }
            RemoteEventKind::Retract { target, .. } => {
                room.history.retain(|e| event_id(e) != Some(target));
            }
            _ => {}
        }
    }

    fn has_message(&self, room: &RoomKey, id: &RemoteMessageId) -> Result<(), NetworkError> {
        let r = self.room(room)?;
        if r.history.iter().any(|e| event_id(e) == Some(id)) {
            Ok(())
        } else {
            Err(NetworkError::NotFound(format!("message {id}")))
        }
    }

    pub fn accept_message(
        &mut self,
        msg: OutgoingMessage,
    ) -> Result<(Sent, Vec<RemoteEvent>), NetworkError> {
        if let Some(e) = self.fail_next.take() {
            return Err(e);
        }
        self.room(&msg.room)?;
        // A transaction id is idempotent here (as Matrix's are): a message sent again with
        // the same one is the message already posted.
        if msg.maybe_sent {
            let posted = self.rooms.get(&msg.room).and_then(|r| {
                r.history.iter().find_map(|e| match &e.kind {
                    RemoteEventKind::Message {
                        id, txn: Some(t), ..
                    } if *t == msg.txn => Some(id.clone()),
                    _ => None,
                })
            });
            if let Some(id) = posted {
                return Ok((
                    Sent {
                        ids: vec![id],
                        at: now_ms(),
                        warnings: Vec::new(),
                    },
                    Vec::new(),
                ));
            }
        }
        if msg.content.text.chars().count() > 4000 {
            return Err(NetworkError::BadRequest(
                "text longer than 4000 characters".into(),
            ));
        }
        if let Some(r) = &msg.reply_to {
            self.has_message(&msg.room, r)?;
        }
        let sender = match &msg.persona {
            Some(p) => format!("relay:{}", p.nick),
            None => "relay".to_string(),
        };
        let text = msg.content.text.clone();
        let echo = self.post(
            &msg.room,
            &sender,
            msg.content.clone(),
            msg.reply_to.clone(),
            Some(msg.txn.clone()),
        );
        let id = event_id(&echo).cloned().unwrap_or_default();
        let mut pushes = vec![echo];
        if self.bot_answers {
            pushes.extend(self.bot_answer(&msg.room, &text, &id));
        }
        keep(&mut self.sent, msg);
        Ok((
            Sent {
                ids: vec![id],
                at: now_ms(),
                warnings: Vec::new(),
            },
            pushes,
        ))
    }

    fn bot_answer(&mut self, room: &RoomKey, text: &str, to: &RemoteMessageId) -> Vec<RemoteEvent> {
        if let Some(n) = text
            .strip_prefix("!burst ")
            .and_then(|n| n.trim().parse::<usize>().ok())
        {
            return (1..=n.min(MAX_BURST))
                .map(|i| {
                    self.post(
                        room,
                        BOT,
                        Content::text(format!("burst {i}/{n}")),
                        None,
                        None,
                    )
                })
                .collect();
        }
        if let Some(pushes) = self.bot_command(room, text.trim(), to) {
            return pushes;
        }
        let answer = Content {
            text: format!("echo: {text}"),
            kind: TextKind::Notice,
            ..Content::default()
        };
        // In a direct conversation the other party answers; in a room, the bot.
        let who = match self.rooms.get(room) {
            Some(r) if r.info.kind == RoomKind::Direct => {
                r.info.members.first().map(|m| m.id.to_string())
            }
            _ => None,
        }
        .unwrap_or_else(|| BOT.to_string());
        let reply_to = self.bot_replies.then(|| to.clone());
        vec![self.post(room, &who, answer, reply_to, None)]
    }

    /// The bot's commands, which show each rich feature from the remote side.
    fn bot_command(
        &mut self,
        room: &RoomKey,
        text: &str,
        to: &RemoteMessageId,
    ) -> Option<Vec<RemoteEvent>> {
        let event = |kind| RemoteEvent {
            room: room.clone(),
            sender: RemoteUserId::new(BOT),
            at: now_ms(),
            kind,
        };
        let mut out = Vec::new();
        match text {
            "!react" => out.push(event(RemoteEventKind::Reactions {
                target: to.clone(),
                emojis: vec!["👍".into()],
            })),
            "!edit" | "!delete" => {
                let draft = self.post(room, BOT, Content::text("a first draft"), None, None);
                let target = event_id(&draft).cloned().unwrap_or_default();
                let change = if text == "!edit" {
                    RemoteEventKind::Edit {
                        target,
                        content: Content::text("the final text"),
                    }
                } else {
                    RemoteEventKind::Retract {
                        target,
                        by_author: true,
                    }
                };
                out.push(draft);
                out.push(event(change.clone()));
                self.record(event(change));
            }
            "!moderate" => {
                let change = RemoteEventKind::Retract {
                    target: to.clone(),
                    by_author: false,
                };
                self.record(event(change.clone()));
                out.push(event(change));
            }
            "!file" => match &self.files_base {
                Some(base) => {
                    let file = |name: &str, ctype: &str| Attachment {
                        url: format!("{base}/files/{name}"),
                        name: name.into(),
                        content_type: Some(ctype.into()),
                        size: None,
                    };
                    let content = Content {
                        text: "Two files for you:".into(),
                        attachments: vec![
                            file("hello.txt", "text/plain"),
                            file("picture.png", "image/png"),
                        ],
                        ..Content::default()
                    };
                    out.push(self.post(room, BOT, content, Some(to.clone()), None));
                }
                None => out.push(self.post(
                    room,
                    BOT,
                    Content::text("This demo runs without its file server (files_listen)."),
                    Some(to.clone()),
                    None,
                )),
            },
            "!typing" => {
                out.push(event(RemoteEventKind::Typing { active: true }));
                out.push(event(RemoteEventKind::Typing { active: false }));
            }
            _ => return None,
        }
        Some(out)
    }

    /// Carry out an action of the bridge: checked against the world, recorded for tests, and
    /// reflected in the room's history as a network would (edits change the message, deletions
    /// remove it). Networks do not echo these back here.
    pub fn apply(&mut self, action: Action) -> Result<(), NetworkError> {
        match &action.kind {
            ActionKind::Edit { target, .. }
            | ActionKind::Retract { target }
            | ActionKind::ReactionAdd { target, .. }
            | ActionKind::ReactionRemove { target, .. }
            | ActionKind::ReadMarker { up_to: target } => self.has_message(&action.room, target)?,
            ActionKind::Typing { .. }
            | ActionKind::Membership { .. }
            | ActionKind::Presence { .. } => {
                self.room(&action.room)?;
            }
        }
        let sender = RemoteUserId::new("relay");
        let change = match &action.kind {
            ActionKind::Edit {
                target, content, ..
            } => Some(RemoteEventKind::Edit {
                target: target.clone(),
                content: content.clone(),
            }),
            ActionKind::Retract { target } => Some(RemoteEventKind::Retract {
                target: target.clone(),
                by_author: true,
            }),
            _ => None,
        };
        if let Some(kind) = change {
            self.record(RemoteEvent {
                room: action.room.clone(),
                sender,
                at: now_ms(),
                kind,
            });
        }
        keep(&mut self.actions, action);
        Ok(())
    }

    pub fn open_direct(
        &mut self,
        user: &RemoteUserId,
        who: &str,
        login: &LoginId,
    ) -> Result<RoomKey, NetworkError> {
        let info = self
            .users
            .get(user)
            .cloned()
            .ok_or_else(|| NetworkError::NotFound(format!("user {user}")))?;
        let key = RoomKey {
            room: RemoteRoomId::new(format!("dm:{user}:{who}")),
            receiver: Some(login.clone()),
        };
        let room = RoomInfo {
            key: key.clone(),
            name: info.display_name.clone(),
            topic: None,
            kind: RoomKind::Direct,
            space: None,
            avatar_url: None,
            members: vec![info],
            xmpp_user: None,
            restricted: false,
        };
        self.rooms.entry(key.clone()).or_insert(Room {
            info: room,
            history: VecDeque::new(),
        });
        Ok(key)
    }
}
