//! An in-memory remote network: users, rooms, a bot that answers. It is the core's test
//! double and what the demo runs. Tests hold a [`DemoHandle`] to inject remote events and to
//! read what the bridge sent.

mod files;
mod state;

use async_trait::async_trait;
use causeway_api::*;
use serde::Deserialize;
use state::State;
use std::sync::{Arc, Mutex, MutexGuard};

/// The `[networks.demo]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemoConfig {
    /// Room ids to create at start (each becomes a MUC).
    pub rooms: Vec<String>,
    /// Display name of the bot that answers every message.
    pub bot_name: String,
    /// Whether the bot answers messages sent from XMPP.
    pub bot_answers: bool,
    /// Whether its answer replies to the message (XEP-0461 reply with a quote) or is plain
    /// text, as a trivial echo's would be (the bridge-cost bench compares with one).
    pub bot_replies: bool,
    /// Where the demo network serves its users' avatars and the files its bot shares
    /// ("127.0.0.1:0" picks a free port); empty: no files, no avatars.
    pub files_listen: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            rooms: vec!["lobby".into(), "random".into()],
            bot_name: "Demo Bot".into(),
            bot_answers: true,
            bot_replies: true,
            files_listen: String::new(),
        }
    }
}

pub const BOT: &str = "bot";

#[derive(Clone)]
pub struct DemoNetwork {
    shared: Arc<Mutex<State>>,
    files_listen: String,
    caps: Capabilities,
    flows: Vec<LoginFlow>,
    /// Logins wait while a test holds this (a network that does not answer).
    logins: Arc<tokio::sync::RwLock<()>>,
}

/// The test's side of the demo network.
#[derive(Clone)]
pub struct DemoHandle {
    shared: Arc<Mutex<State>>,
    logins: Arc<tokio::sync::RwLock<()>>,
}

/// Logins to the demo network hang while this is held (`DemoHandle::hold_logins`).
pub struct LoginsHeld(#[allow(dead_code)] tokio::sync::OwnedRwLockWriteGuard<()>);

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave State half-updated in a way that matters to
    // a test double; recover instead of cascading the panic.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DemoNetwork {
    pub fn new(config: DemoConfig) -> (Self, DemoHandle) {
        let shared = Arc::new(Mutex::new(State::new(&config)));
        let caps = Capabilities {
            display_name: "Demo".into(),
            edits: true,
            retractions: true,
            reactions: true,
            replies: true,
            typing: true,
            direct_messages: true,
            max_text_len: 4000,
            max_reactions_per_user: None,
        };
        let flows = vec![LoginFlow {
            id: "password".into(),
            name: "Demo account".into(),
            fields: vec![
                LoginField {
                    var: "username".into(),
                    label: "Username".into(),
                    secret: false,
                },
                LoginField {
                    var: "password".into(),
                    label: "Password".into(),
                    secret: true,
                },
            ],
        }];
        let logins = Arc::new(tokio::sync::RwLock::new(()));
        (
            Self {
                shared: shared.clone(),
                files_listen: config.files_listen.clone(),
                caps,
                flows,
                logins: logins.clone(),
            },
            DemoHandle { shared, logins },
        )
    }
}

impl DemoNetwork {
    /// The demo's file server, started once (on first connect, inside the runtime).
    async fn start_files(&self) -> Result<(), NetworkError> {
        if self.files_listen.is_empty() || lock(&self.shared).files_base.is_some() {
            return Ok(());
        }
        let listener = tokio::net::TcpListener::bind(&self.files_listen)
            .await
            .map_err(|e| {
                NetworkError::Other(format!("demo file server on {}: {e}", self.files_listen))
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| NetworkError::Other(e.to_string()))?;
        tokio::spawn(files::serve(listener));
        lock(&self.shared).set_files_base(format!("http://{addr}"));
        Ok(())
    }
}

#[async_trait]
impl Network for DemoNetwork {
    fn id(&self) -> NetworkId {
        NetworkId::new("demo")
    }
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }
    fn login_flows(&self) -> &[LoginFlow] {
        &self.flows
    }
    fn relay_login(&self) -> Option<LoginRecord> {
        Some(LoginRecord {
            login: LoginId::new("relay"),
            xmpp_user: None,
            remote_name: "demo relay".into(),
            secrets: Secret::new("demo-relay-token"),
        })
    }
    /// The demo's own file server, once it runs.
    fn origins(&self) -> Vec<String> {
        lock(&self.shared)
            .files_base
            .as_deref()
            .and_then(origin_of)
            .into_iter()
            .collect()
    }
    async fn login(&self, flow: &str, input: LoginInput) -> Result<LoginRecord, NetworkError> {
        if flow != "password" {
            return Err(NetworkError::Unsupported(format!("login flow {flow}")));
        }
        drop(self.logins.read().await);
        let user = input.get("username").filter(|u| !u.is_empty());
        let pass = input.get("password").filter(|p| !p.is_empty());
        match (user, pass) {
            (Some(u), Some(p)) if p.as_str() != "wrong" => Ok(LoginRecord {
                login: LoginId::new(format!("user:{u}")),
                xmpp_user: None,
                remote_name: u.clone(),
                secrets: Secret::new(p.clone()),
            }),
            _ => Err(NetworkError::Forbidden("bad username or password".into())),
        }
    }
    async fn connect(
        &self,
        login: &LoginRecord,
        events: EventSink,
    ) -> Result<Arc<dyn Session>, NetworkError> {
        self.start_files().await?;
        let mut state = lock(&self.shared);
        state.sinks.push(events);
        if state.pump.is_none() {
            // Like a real network, events reach sessions on their own schedule, not inside
            // the call that caused them.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RemoteEvent>();
            state.pump = Some(tx);
            let shared = self.shared.clone();
            tokio::spawn(async move {
                while let Some(event) = rx.recv().await {
                    // Like a real network, each login hears its own conversations: shared
                    // rooms reach the relay login, private ones their receiver.
                    let relay = LoginId::new("relay");
                    let to = event.room.receiver.as_ref().unwrap_or(&relay).clone();
                    let sinks: Vec<EventSink> = lock(&shared)
                        .sinks
                        .iter()
                        .filter(|s| *s.login() == to)
                        .cloned()
                        .collect();
                    for sink in &sinks {
                        // A sink closes only when the core shuts down; the event stays in history.
                        let _ = sink.send(event.clone()).await;
                    }
                }
            });
        }
        drop(state);
        Ok(Arc::new(DemoSession {
            shared: self.shared.clone(),
            login: login.login.clone(),
        }))
    }
}

struct DemoSession {
    shared: Arc<Mutex<State>>,
    login: LoginId,
}

#[async_trait]
impl Session for DemoSession {
    async fn send_message(&self, msg: OutgoingMessage) -> Result<Sent, NetworkError> {
        let (sent, pushes) = lock(&self.shared).accept_message(msg)?;
        deliver(&self.shared, pushes).await;
        Ok(sent)
    }
    async fn apply(&self, action: Action) -> Result<(), NetworkError> {
        lock(&self.shared).apply(action)
    }
    async fn rooms(&self) -> Result<Vec<RoomInfo>, NetworkError> {
        Ok(lock(&self.shared)
            .rooms
            .values()
            .map(|r| r.info.clone())
            .collect())
    }
    async fn room_info(&self, room: &RoomKey) -> Result<RoomInfo, NetworkError> {
        lock(&self.shared).room(room).map(|r| r.info.clone())
    }
    async fn user_info(&self, user: &RemoteUserId) -> Result<UserInfo, NetworkError> {
        lock(&self.shared)
            .users
            .get(user)
            .cloned()
            .ok_or_else(|| NetworkError::NotFound(format!("user {user}")))
    }
    async fn direct_room(
        &self,
        user: &RemoteUserId,
        persona: Option<&Persona>,
    ) -> Result<RoomKey, NetworkError> {
        let who = persona.map(|p| p.xmpp_user.as_str()).unwrap_or("");
        lock(&self.shared).open_direct(user, who, &self.login)
    }
    async fn history(
        &self,
        room: &RoomKey,
        after: Option<&RemoteMessageId>,
        limit: usize,
    ) -> Result<Vec<RemoteEvent>, NetworkError> {
        let state = lock(&self.shared);
        let r = state.room(room)?;
        let start = match after {
            Some(id) => r
                .history
                .iter()
                .position(|e| state::event_id(e) == Some(id))
                .map_or(0, |p| p + 1),
            None => r.history.len().saturating_sub(limit),
        };
        Ok(r.history.iter().skip(start).take(limit).cloned().collect())
    }
    async fn disconnect(&self) {
        lock(&self.shared)
            .sinks
            .retain(|s| s.login() != &self.login);
    }
    async fn spaces(&self) -> Result<Vec<SpaceInfo>, NetworkError> {
        Ok(lock(&self.shared).spaces.values().cloned().collect())
    }
    async fn space_info(&self, space: &RemoteSpaceId) -> Result<SpaceInfo, NetworkError> {
        lock(&self.shared)
            .spaces
            .get(space)
            .cloned()
            .ok_or_else(|| NetworkError::NotFound(format!("space {space}")))
    }
    async fn resolve(&self, address: &str) -> Result<Resolved, NetworkError> {
        lock(&self.shared).resolve(address)
    }
}

/// Queue events for every connected session, in order.
async fn deliver(shared: &Arc<Mutex<State>>, events: Vec<RemoteEvent>) {
    let state = lock(shared);
    if let Some(pump) = &state.pump {
        for event in events {
            let _ = pump.send(event);
        }
    }
}

impl DemoHandle {
    /// A remote user posts in a room. The message is kept in the room's history even while
    /// no session is connected (so catch-up can find it). Returns its remote id.
    pub async fn inject_message(&self, room: &str, user: &str, text: &str) -> RemoteMessageId {
        let event = lock(&self.shared).post(
            &RoomKey::shared(room),
            user,
            Content::text(text),
            None,
            None,
        );
        let id = state::event_id(&event).cloned().unwrap_or_default();
        deliver(&self.shared, vec![event]).await;
        id
    }
    /// A remote user posts any content (styled text, files). Returns its remote id.
    pub async fn inject_content(
        &self,
        room: &str,
        user: &str,
        content: Content,
    ) -> RemoteMessageId {
        let event = lock(&self.shared).post(&RoomKey::shared(room), user, content, None, None);
        let id = state::event_id(&event).cloned().unwrap_or_default();
        deliver(&self.shared, vec![event]).await;
        id
    }
    /// Any remote event (edit, retract, typing, membership ...), delivered live.
    pub async fn inject(&self, event: RemoteEvent) {
        lock(&self.shared).record(event.clone());
        deliver(&self.shared, vec![event]).await;
    }
    /// Actions the bridge applied (edits, deletions, reactions, typing, read markers), oldest first.
    pub fn actions(&self) -> Vec<Action> {
        lock(&self.shared).actions.iter().cloned().collect()
    }
    /// Messages the bridge sent, oldest first.
    pub fn sent(&self) -> Vec<OutgoingMessage> {
        lock(&self.shared).sent.iter().cloned().collect()
    }
    /// Logins hang until the returned guard is dropped (a network that does not answer).
    pub async fn hold_logins(&self) -> LoginsHeld {
        LoginsHeld(self.logins.clone().write_owned().await)
    }
    /// The next `send_message` fails with this error.
    pub fn fail_next_send(&self, error: NetworkError) {
        lock(&self.shared).fail_next = Some(error);
    }
    pub fn add_room(&self, id: &str, name: &str) {
        lock(&self.shared).add_room(id, name);
    }
    /// A room created in a space on the network: announced live (RoomChanged).
    pub async fn add_room_in_space(&self, space: &str, id: &str, name: &str) {
        let info = lock(&self.shared).add_room_in_space(space, id, name);
        let event = RemoteEvent {
            room: info.key.clone(),
            sender: RemoteUserId::new(BOT),
            at: state::now_ms(),
            kind: RemoteEventKind::RoomChanged(info),
        };
        deliver(&self.shared, vec![event]).await;
    }
    /// A room deleted on the network: announced live (RoomRemoved).
    pub async fn remove_room(&self, id: &str) {
        if lock(&self.shared).remove_room(id) {
            let event = RemoteEvent {
                room: RoomKey::shared(id),
                sender: RemoteUserId::new(BOT),
                at: state::now_ms(),
                kind: RemoteEventKind::RoomRemoved,
            };
            deliver(&self.shared, vec![event]).await;
        }
    }
    pub fn add_user(&self, id: &str, name: &str) {
        lock(&self.shared).add_user(id, name);
    }
    /// A user with a picture at `avatar_url`; returns their info (for a Membership event).
    pub fn add_user_with_avatar(&self, id: &str, name: &str, avatar_url: &str) -> UserInfo {
        let mut state = lock(&self.shared);
        state.add_user(id, name);
        let user = RemoteUserId::new(id);
        match state.users.get_mut(&user) {
            Some(u) => {
                u.avatar_url = Some(avatar_url.to_string());
                u.clone()
            }
            None => UserInfo::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    causeway_api::conformance_tests!(async {
        let (net, _h) = DemoNetwork::new(DemoConfig::default());
        Arc::new(net) as Arc<dyn Network>
    });

    /// A demo left running keeps the last messages of a room, not all of them.
    #[tokio::test]
    async fn history_keeps_the_last_messages() {
        let (net, h) = DemoNetwork::new(DemoConfig {
            rooms: vec!["r".into()],
            ..DemoConfig::default()
        });
        let mut ids = Vec::new();
        for i in 0..state::KEPT + 3 {
            ids.push(h.inject_message("r", "alice", &format!("m{i}")).await);
        }
        let login = net.relay_login().expect("relay login");
        let (tx, _rx) = tokio::sync::mpsc::channel(16);
        let session = net
            .connect(&login, EventSink::new(login.login.clone(), tx))
            .await
            .expect("connect");
        let room = RoomKey::shared("r");
        let all = session
            .history(&room, None, usize::MAX)
            .await
            .expect("history");
        assert_eq!(all.len(), state::KEPT);
        assert_eq!(state::event_id(&all[0]), Some(&ids[3]));
        assert_eq!(state::event_id(&all[state::KEPT - 1]), ids.last());
        // after an id past the horizon: from the oldest kept
        let after = session
            .history(&room, Some(&ids[0]), 2)
            .await
            .expect("after");
        assert_eq!(state::event_id(&after[0]), Some(&ids[3]));
    }
}
