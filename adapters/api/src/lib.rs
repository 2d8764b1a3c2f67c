//! The adapter contract of Causeway.
//!
//! A network adapter implements [`Network`] (built once at start-up from its own config
//! section) and [`Session`] (one live connection per login). It pushes what happens remotely
//! into an [`EventSink`] as [`RemoteEvent`]s and carries out what the core asks through
//! [`Session::send_message`] and [`Session::apply`].
//!
//! This crate knows no XML, no SQL and no SDK: it is the seam between the core and adapters.

#[doc(hidden)]
pub mod conformance;
mod content;
mod error;
mod event;
mod fetch;
#[doc(hidden)]
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod host;
pub mod hostile;
mod ids;
mod secret;
pub mod time;

pub use content::{outermost, sorted_spans, Attachment, Content, Persona, Span, Style, TextKind};
pub use error::NetworkError;
pub use event::*;
pub use fetch::{origin_of, Fetch, FetchError, Fetched, NoFetch};
pub use host::{Host, HttpEndpoint, HttpRequest, HttpResponse, KvStore};
pub use ids::*;
pub use secret::Secret;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// What a network can do. Drives disco#info and early refusal of unsupported actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// Shown as the gateway identity name ("Discord").
    pub display_name: String,
    pub edits: bool,
    pub retractions: bool,
    pub reactions: bool,
    pub replies: bool,
    pub typing: bool,
    pub direct_messages: bool,
    /// Longest text the network takes in one message (the core does not split; adapters may).
    pub max_text_len: usize,
    /// Reactions per user and message, if limited.
    pub max_reactions_per_user: Option<usize>,
}

impl Default for Capabilities {
    fn default() -> Self {
        Self {
            display_name: String::new(),
            edits: false,
            retractions: false,
            reactions: false,
            replies: false,
            typing: false,
            direct_messages: false,
            max_text_len: 4000,
            max_reactions_per_user: None,
        }
    }
}

/// One way of logging in (fields for a XEP-0077 or ad-hoc form).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFlow {
    pub id: String,
    pub name: String,
    pub fields: Vec<LoginField>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginField {
    pub var: String,
    pub label: String,
    pub secret: bool,
}

/// Form input for a login flow, by field var.
pub type LoginInput = BTreeMap<String, String>;

/// Where a session pushes remote events. Bounded: a slow core slows the adapter down
/// rather than letting memory grow.
#[derive(Clone, Debug)]
pub struct EventSink {
    login: LoginId,
    tx: mpsc::Sender<Envelope>,
}

impl EventSink {
    pub fn new(login: LoginId, tx: mpsc::Sender<Envelope>) -> Self {
        Self { login, tx }
    }

    /// Hand one event to the core. Fails only when the core is shutting down.
    pub async fn send(&self, event: RemoteEvent) -> Result<(), NetworkError> {
        self.tx
            .send(Envelope {
                login: self.login.clone(),
                event,
                applied: None,
            })
            .await
            .map_err(|_| NetworkError::Other("the bridge is shutting down".into()))
    }

    /// Hand one event to the core; the answer resolves once the core is done with it
    /// (stored, or deliberately not bridged): for networks that acknowledge only what is
    /// durable.
    pub async fn send_applied(
        &self,
        event: RemoteEvent,
    ) -> Result<tokio::sync::oneshot::Receiver<()>, NetworkError> {
        let (applied, done) = Applied::new();
        self.tx
            .send(Envelope {
                login: self.login.clone(),
                event,
                applied: Some(applied),
            })
            .await
            .map_err(|_| NetworkError::Other("the bridge is shutting down".into()))?;
        Ok(done)
    }

    pub fn login(&self) -> &LoginId {
        &self.login
    }
}

/// One remote network, built once at start-up from its own config section.
#[async_trait]
pub trait Network: Send + Sync + 'static {
    /// "discord", "matrix", "demo": the store key and the JID label.
    fn id(&self) -> NetworkId;
    fn capabilities(&self) -> &Capabilities;
    fn login_flows(&self) -> &[LoginFlow];
    /// The shared relay login configured for the whole community (a bot, an appservice).
    fn relay_login(&self) -> Option<LoginRecord>;
    /// Validate credentials and create a login.
    async fn login(&self, flow: &str, input: LoginInput) -> Result<LoginRecord, NetworkError>;
    /// Called once at start-up, before any `connect`: what the core offers the network.
    fn attach(&self, _host: Host) {}
    /// Requests on Causeway's HTTP listener this network answers (a Matrix appservice).
    fn http_endpoint(&self) -> Option<Arc<dyn HttpEndpoint>> {
        None
    }
    /// The network's own services as the operator configured them ("host:port": its API,
    /// its CDN, a homeserver): files this network hands over from there are copied even
    /// when those hosts are on internal addresses. Never used for URLs users supply.
    fn origins(&self) -> Vec<String> {
        Vec::new()
    }
    /// Start a live session for a login; it pushes events into `events` until disconnected.
    async fn connect(
        &self,
        login: &LoginRecord,
        events: EventSink,
    ) -> Result<Arc<dyn Session>, NetworkError>;
}

/// A live connection for one login.
#[async_trait]
pub trait Session: Send + Sync {
    async fn send_message(&self, msg: OutgoingMessage) -> Result<Sent, NetworkError>;
    async fn apply(&self, action: Action) -> Result<(), NetworkError>;
    /// The rooms this login can see (for listings and the first portals), without their
    /// members: `room_info` gives those, room by room.
    async fn rooms(&self) -> Result<Vec<RoomInfo>, NetworkError>;
    async fn room_info(&self, room: &RoomKey) -> Result<RoomInfo, NetworkError>;
    async fn user_info(&self, user: &RemoteUserId) -> Result<UserInfo, NetworkError>;
    /// The direct conversation between this login (acting for `persona`, in relay mode)
    /// and a remote user; opened if needed.
    async fn direct_room(
        &self,
        user: &RemoteUserId,
        persona: Option<&Persona>,
    ) -> Result<RoomKey, NetworkError>;
    /// Catch-up and backfill, oldest first, at most `limit`: with `after`, the messages that
    /// followed it; without, the room's latest messages.
    async fn history(
        &self,
        room: &RoomKey,
        after: Option<&RemoteMessageId>,
        limit: usize,
    ) -> Result<Vec<RemoteEvent>, NetworkError>;
    async fn disconnect(&self);
    /// The spaces this login sees.
    async fn spaces(&self) -> Result<Vec<SpaceInfo>, NetworkError> {
        Ok(Vec::new())
    }
    async fn space_info(&self, space: &RemoteSpaceId) -> Result<SpaceInfo, NetworkError> {
        Err(NetworkError::NotFound(format!("space {space}")))
    }
    /// Turn a pasted address (a URL, an alias, an id) into the room or user it names
    /// (XEP-0100 jabber:iq:gateway, the join command).
    async fn resolve(&self, address: &str) -> Result<Resolved, NetworkError> {
        Err(NetworkError::Unsupported(format!(
            "addresses like {address:?} are not understood here"
        )))
    }
}
