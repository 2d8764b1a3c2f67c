//! The bot's live session: the gateway task, the task that turns its events into remote
//! events (in order), and the [`Session`] calls of the core.

use crate::cache::{channel_of, Cache};
use crate::gateway::{Gateway, Item};
use crate::rest::{Body, Rest};
use crate::DiscordConfig;
use async_trait::async_trait;
use causeway_api::*;
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub(crate) struct Inner {
    pub cfg: DiscordConfig,
    pub rest: Arc<Rest>,
    pub cache: RwLock<Cache>,
    pub sink: EventSink,
    /// The core's egress policy: the only way to fetch a file an XMPP user links.
    pub fetch: Arc<dyn causeway_api::Fetch>,
    /// One webhook creation at a time.
    pub hook_lock: tokio::sync::Mutex<()>,
    /// How many XMPP users reacted with an emoji through the bot: (message, emoji) -> count.
    /// The bot's reaction is removed when the last of them takes theirs back.
    pub reactions: Mutex<HashMap<(u64, String), u32>>,
}

impl Inner {
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn channel(&self, room: &RoomKey) -> Result<u64, NetworkError> {
        channel_of(room)
            .filter(|c| self.read().channels.contains_key(c))
            .ok_or_else(|| NetworkError::NotFound(format!("Discord channel {}", room.room)))
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Readiness {
    Waiting,
    Ready,
}

pub struct DiscordSession {
    pub(crate) inner: Arc<Inner>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl DiscordSession {
    pub(crate) async fn connect(
        cfg: DiscordConfig,
        token: Secret,
        intents: u64,
        sink: EventSink,
        fetch: Arc<dyn causeway_api::Fetch>,
    ) -> Result<Self, NetworkError> {
        let rest = Arc::new(Rest::new(&cfg.api_url, token.clone())?);
        // Check the token before opening the gateway: a refusal is reported as such.
        let me = rest
            .bot(Method::GET, "/users/@me", Body::None, "the bot's own user")
            .await?;
        let bot: u64 = me["id"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut cache = Cache::new(&cfg.cdn_url);
        cache.bot = bot;
        let inner = Arc::new(Inner {
            cfg,
            rest: rest.clone(),
            cache: RwLock::new(cache),
            sink,
            fetch,
            hook_lock: tokio::sync::Mutex::new(()),
            reactions: Mutex::new(HashMap::new()),
        });
        let (tx, rx) = mpsc::channel(4096);
        let gw = Gateway {
            rest,
            token,
            intents,
        };
        let (ready_tx, mut ready_rx) = watch::channel(Ok(Readiness::Waiting));
        let gateway = tokio::spawn(gw.run(tx));
        let handler = tokio::spawn(handle(inner.clone(), rx, ready_tx));
        let session = DiscordSession {
            inner,
            tasks: Mutex::new(vec![gateway, handler]),
        };
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let now = ready_rx.borrow_and_update().clone();
                match now {
                    Ok(Readiness::Ready) => return Ok(()),
                    Err(e) => return Err(e),
                    Ok(Readiness::Waiting) => {}
                }
                if ready_rx.changed().await.is_err() {
                    return Err(NetworkError::Other("the Discord gateway task ended".into()));
                }
            }
        })
        .await;
        match waited {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                session.disconnect().await;
                return Err(e);
            }
            Err(_) => {
                session.disconnect().await;
                return Err(NetworkError::Other(
                    "the Discord gateway did not deliver READY and the guilds within 60 s".into(),
                ));
            }
        }
        session.load_webhooks().await;
        Ok(session)
    }

    /// Learn the webhooks we made in earlier runs, so their messages count as our echoes.
    async fn load_webhooks(&self) {
        let guilds: Vec<u64> = self.inner.read().guilds.keys().copied().collect();
        for g in guilds {
            let path = format!("/guilds/{g}/webhooks");
            match self
                .inner
                .rest
                .bot(Method::GET, &path, Body::None, "the guild's webhooks")
                .await
            {
                Ok(Value::Array(list)) => {
                    let mut c = self.inner.write();
                    for w in list {
                        crate::outbound::remember_hook(&mut c, &self.inner.cfg.webhook_name, &w);
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(
                    guild = g,
                    "webhooks not listed (does the bot have Manage Webhooks?): {e}"
                ),
            }
        }
    }
}

/// Turn gateway items into remote events, one at a time (so in order).
async fn handle(
    inner: Arc<Inner>,
    mut rx: mpsc::Receiver<Item>,
    ready: watch::Sender<Result<Readiness, NetworkError>>,
) {
    let mut first_ready = false;
    // Set once every guild has come: how long member chunks may still hold readiness back.
    let mut chunks_until: Option<Instant> = None;
    loop {
        let item = tokio::select! {
            item = rx.recv() => match item { Some(i) => i, None => return },
            _ = sleep_until_some(chunks_until), if !first_ready => {
                let missing = inner.read().chunks_awaited.len();
                tracing::warn!(
                    guilds = missing,
                    "member lists still incomplete after {CHUNK_WAIT:?}; going on without the rest"
                );
                first_ready = true;
                let _ = ready.send(Ok(Readiness::Ready));
                continue;
            }
        };
        match item {
            Item::Event(ev) => {
                let ready_now = crate::inbound::on_event(&inner, *ev).await;
                if ready_now && !first_ready {
                    let c = inner.read();
                    tracing::trace!(
                        pending = c.pending.len(),
                        chunks = c.chunks_awaited.len(),
                        "readiness event handled"
                    );
                    if c.pending.is_empty() && c.chunks_awaited.is_empty() {
                        first_ready = true;
                        let _ = ready.send(Ok(Readiness::Ready));
                    } else if c.pending.is_empty() && chunks_until.is_none() {
                        chunks_until = Some(Instant::now() + CHUNK_WAIT);
                    }
                }
            }
            Item::Connected { resumed } => {
                tracing::info!(resumed, "Discord gateway connected");
                login_state(&inner, LoginState::Connected).await;
            }
            Item::Reconnecting(why) => login_state(&inner, LoginState::Reconnecting(why)).await,
            // Handed to the core before the next item (the new session's READY and events)
            // is handled: the core has the rooms catch up before it applies what follows.
            Item::Gap => {
                let _ = inner
                    .sink
                    .send(RemoteEvent {
                        room: RoomKey::shared(""),
                        sender: RemoteUserId::new(""),
                        at: crate::inbound::now_ms(),
                        kind: RemoteEventKind::Gap,
                    })
                    .await;
            }
            Item::Fatal(e) => {
                let _ = ready.send(Err(e.clone()));
                login_state(&inner, LoginState::LoggedOut(e.to_string())).await;
            }
        }
    }
}

/// How long start-up waits for member chunks once every guild has come (a 100,000-member
/// guild is 100 chunks); past it the bridge starts with what it has, and later chunks still
/// fill the cache.
const CHUNK_WAIT: Duration = Duration::from_secs(15);

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn login_state(inner: &Inner, state: LoginState) {
    let _ = inner
        .sink
        .send(RemoteEvent {
            room: RoomKey::shared(""),
            sender: RemoteUserId::new(""),
            at: crate::inbound::now_ms(),
            kind: RemoteEventKind::LoginState { state },
        })
        .await;
}

#[async_trait]
impl Session for DiscordSession {
    async fn send_message(&self, msg: OutgoingMessage) -> Result<Sent, NetworkError> {
        crate::outbound::send(&self.inner, msg).await
    }

    async fn apply(&self, action: Action) -> Result<(), NetworkError> {
        crate::outbound::apply(&self.inner, action).await
    }

    async fn rooms(&self) -> Result<Vec<RoomInfo>, NetworkError> {
        Ok(self.inner.read().rooms())
    }

    async fn room_info(&self, room: &RoomKey) -> Result<RoomInfo, NetworkError> {
        channel_of(room)
            .and_then(|c| self.inner.read().room_info(c))
            .ok_or_else(|| NetworkError::NotFound(format!("Discord channel {}", room.room)))
    }

    async fn user_info(&self, user: &RemoteUserId) -> Result<UserInfo, NetworkError> {
        let id: u64 = user
            .as_str()
            .parse()
            .map_err(|_| NetworkError::NotFound(format!("Discord user {user}")))?;
        if let Some(u) = self.inner.read().user_info(None, id) {
            return Ok(u);
        }
        let v = self
            .inner
            .rest
            .bot(
                Method::GET,
                &format!("/users/{id}"),
                Body::None,
                "a user's profile",
            )
            .await?;
        let u: serenity::model::user::User = serde_json::from_value(v)
            .map_err(|e| NetworkError::Other(format!("a user's profile: {e}")))?;
        let mut c = self.inner.write();
        c.user(&u);
        c.user_info(None, id)
            .ok_or_else(|| NetworkError::NotFound(format!("Discord user {user}")))
    }

    async fn direct_room(
        &self,
        _user: &RemoteUserId,
        _persona: Option<&Persona>,
    ) -> Result<RoomKey, NetworkError> {
        Err(NetworkError::Unsupported(
            "direct messages are not bridged in community mode".into(),
        ))
    }

    async fn history(
        &self,
        room: &RoomKey,
        after: Option<&RemoteMessageId>,
        limit: usize,
    ) -> Result<Vec<RemoteEvent>, NetworkError> {
        let channel = self.inner.channel(room)?;
        crate::inbound::history(&self.inner, channel, after, limit).await
    }

    async fn disconnect(&self) {
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.abort();
        }
    }

    async fn spaces(&self) -> Result<Vec<SpaceInfo>, NetworkError> {
        let c = self.inner.read();
        let mut ids: Vec<u64> = c.guilds.keys().copied().collect();
        ids.sort();
        Ok(ids.into_iter().filter_map(|g| c.space(g)).collect())
    }

    async fn space_info(&self, space: &RemoteSpaceId) -> Result<SpaceInfo, NetworkError> {
        space
            .as_str()
            .parse()
            .ok()
            .and_then(|id| self.inner.read().space(id))
            .ok_or_else(|| NetworkError::NotFound(format!("Discord guild or category {space}")))
    }

    async fn resolve(&self, address: &str) -> Result<Resolved, NetworkError> {
        crate::inbound::resolve(&self.inner.read(), address)
    }
}

impl Drop for DiscordSession {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            t.abort();
        }
    }
}
