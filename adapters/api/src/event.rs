//! What flows between the core and an adapter: remote events in, actions out.

use crate::{
    Content, LoginId, Persona, RemoteMessageId, RemoteSpaceId, RemoteUserId, RoomKey, TxnId,
};
use serde::{Deserialize, Serialize};

/// Something that happened on the network, in one room.
/// Events of one room are handled in order by that room's portal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RemoteEvent {
    pub room: RoomKey,
    pub sender: RemoteUserId,
    /// Unix time in milliseconds, as the network stamped it.
    pub at: i64,
    pub kind: RemoteEventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RemoteEventKind {
    Message {
        id: RemoteMessageId,
        content: Content,
        reply_to: Option<RemoteMessageId>,
        /// Set when this is the echo of a message the core sent with this TxnId.
        txn: Option<TxnId>,
    },
    Edit {
        target: RemoteMessageId,
        content: Content,
    },
    /// A deletion. `by_author` is false when the network does not say who deleted it.
    Retract {
        target: RemoteMessageId,
        by_author: bool,
    },
    /// The sender's full current set of reactions on `target` (networks that keep sets).
    Reactions {
        target: RemoteMessageId,
        emojis: Vec<String>,
    },
    /// One reaction added or removed by the sender (networks that report changes); the core
    /// turns these into full sets against what it stored.
    ReactionChanged {
        target: RemoteMessageId,
        emoji: String,
        added: bool,
    },
    /// A moderator removed every reaction on `target` (or only those with `emoji`).
    ReactionsCleared {
        target: RemoteMessageId,
        emoji: Option<String>,
    },
    Typing {
        active: bool,
    },
    /// The sender's availability changed.
    Presence {
        availability: Availability,
        status: Option<String>,
    },
    /// The sender has read everything up to `up_to` (a read receipt).
    ReadUpTo {
        up_to: RemoteMessageId,
    },
    /// A room was created or changed (name, topic, space); its members need not be given.
    RoomChanged(RoomInfo),
    /// The room is gone (deleted, or the login lost access).
    RoomRemoved,
    Membership {
        user: UserInfo,
        joined: bool,
    },
    LoginState {
        state: LoginState,
    },
    /// The network's event stream has a gap: events may have been missed (a new session
    /// instead of a resumed one, a sync that could not continue). Every bridged room of
    /// the network catches up from its cursor (`Session::history`) before the events that
    /// follow this one are applied. `room` is not used.
    Gap,
}

/// What the core asks a session to do besides sending a message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub room: RoomKey,
    /// Who the action is for, when a shared relay login acts for an XMPP user.
    pub persona: Option<Persona>,
    pub kind: ActionKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ActionKind {
    Edit {
        target: RemoteMessageId,
        content: Content,
        txn: TxnId,
    },
    Retract {
        target: RemoteMessageId,
    },
    ReactionAdd {
        target: RemoteMessageId,
        emoji: String,
    },
    ReactionRemove {
        target: RemoteMessageId,
        emoji: String,
    },
    Typing {
        active: bool,
    },
    ReadMarker {
        up_to: RemoteMessageId,
    },
    /// The XMPP user's (the persona's) availability, as they told the remote user of this
    /// direct room.
    Presence {
        availability: Availability,
        status: Option<String>,
    },
    /// The XMPP user (the persona) joined or left the room (their first session came, their
    /// last went). Networks without memberships for relayed users answer Ok.
    Membership {
        joined: bool,
    },
}

impl ActionKind {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Edit { .. } => "edit",
            Self::Retract { .. } => "retract",
            Self::ReactionAdd { .. } | Self::ReactionRemove { .. } => "reaction",
            Self::Typing { .. } => "typing",
            Self::ReadMarker { .. } => "read_marker",
            Self::Membership { .. } => "membership",
            Self::Presence { .. } => "presence",
        }
    }
}

/// Whether someone is there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Availability {
    Online,
    Away,
    Offline,
}

/// A message the core sends into a room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutgoingMessage {
    pub room: RoomKey,
    pub txn: TxnId,
    pub content: Content,
    pub reply_to: Option<RemoteMessageId>,
    pub persona: Option<Persona>,
    /// The core sent this message before, with this `txn`, and stopped before it learned
    /// whether the network took it (its sender sent it again). An adapter that can find
    /// out (an idempotent transaction id, its own posts in the room's history) answers
    /// with what is there instead of posting it twice.
    #[serde(default)]
    pub maybe_sent: bool,
}

/// What the network made of a sent message: one id per part (long texts may be split).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub ids: Vec<RemoteMessageId>,
    pub at: i64,
    /// What did not go through as sent (a linked file that was not fetched): told to the
    /// sender, while the rest of the message went out.
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum RoomKind {
    /// A shared room or channel (an open MUC).
    #[default]
    Channel,
    /// A small private group.
    Group,
    /// A one-to-one conversation.
    Direct,
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RoomInfo {
    pub key: RoomKey,
    pub name: String,
    pub topic: Option<String>,
    pub kind: RoomKind,
    pub space: Option<RemoteSpaceId>,
    pub avatar_url: Option<String>,
    /// Known members at the time of the call (may be partial on large rooms).
    pub members: Vec<UserInfo>,
    /// For a direct room a remote user opened with an XMPP user (a Matrix invitation to a
    /// puppet): that XMPP user's bare JID. The first member is the remote user.
    #[serde(default)]
    pub xmpp_user: Option<String>,
    /// Not every member of the room's community may see it (a Discord channel hidden from
    /// @everyone): the core does not bridge it unless an admin opted it in, and then as a
    /// members-only room. `members` then lists only those who may see it.
    #[serde(default)]
    pub restricted: bool,
}

/// A group of rooms (a Discord guild, a Matrix space), shown on XMPP as a XEP-0503 space.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SpaceInfo {
    pub id: RemoteSpaceId,
    pub name: String,
    pub avatar_url: Option<String>,
    /// The rooms directly in this space.
    pub rooms: Vec<RoomKey>,
    /// Spaces nested in this one (Discord categories, Matrix sub-spaces).
    pub children: Vec<RemoteSpaceId>,
}

/// What a pasted address (URL, alias, id) names on the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolved {
    Room(RoomKey),
    User(RemoteUserId),
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: RemoteUserId,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub is_bot: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginState {
    Connected,
    /// Transient trouble; the adapter retries by itself.
    Reconnecting(String),
    /// The login is no longer valid; a user must log in again.
    LoggedOut(String),
}

/// A login as the store keeps it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRecord {
    pub login: LoginId,
    /// The XMPP user owning this login; None for the shared relay login from config.
    pub xmpp_user: Option<String>,
    pub remote_name: String,
    pub secrets: crate::Secret,
}

impl std::fmt::Debug for LoginRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRecord")
            .field("login", &self.login)
            .field("xmpp_user", &self.xmpp_user)
            .field("remote_name", &self.remote_name)
            .field("secrets", &self.secrets)
            .finish()
    }
}

/// Events pushed by a session, tagged by the login that saw them.
#[derive(Debug)]
pub struct Envelope {
    pub login: LoginId,
    pub event: RemoteEvent,
    /// Told when the core is done with the event (`EventSink::send_applied`).
    pub applied: Option<Applied>,
}

/// Dropped once the core is done with an event: what it means is stored (and on its way
/// to XMPP), or the core decided not to bridge it. A network that acknowledges what it
/// pushes (a Matrix transaction) waits for this before it answers.
#[derive(Debug)]
pub struct Applied(Option<tokio::sync::oneshot::Sender<()>>);

impl Applied {
    pub fn new() -> (Applied, tokio::sync::oneshot::Receiver<()>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (Applied(Some(tx)), rx)
    }
}

impl Applied {
    /// Not done after all (the core could not store it): the network is told nothing, and
    /// sends it again.
    pub fn abandon(mut self) {
        self.0.take();
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}
