//! Typed identifiers. Every id that crosses a module boundary is a newtype, never a bare String.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_type!(
    /// A network's id: "discord", "matrix", "demo". Used as JID label and store key.
    NetworkId
);
id_type!(
    /// A remote room (channel, Matrix room) as the network names it.
    RemoteRoomId
);
id_type!(
    /// A remote user as the network names it.
    RemoteUserId
);
id_type!(
    /// A remote message (snowflake, event id).
    RemoteMessageId
);
id_type!(
    /// A remote grouping (guild, Matrix space).
    RemoteSpaceId
);
id_type!(
    /// One login on a network (a bot, an appservice, a user's own account).
    LoginId
);
id_type!(
    /// A transaction id the core attaches to an outgoing message, so that the adapter can
    /// recognise its own echo.
    TxnId
);

/// The key of a portal: a remote room, plus the login that receives it for a DM
/// (a direct conversation is per login; a shared room has no receiver).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoomKey {
    pub room: RemoteRoomId,
    pub receiver: Option<LoginId>,
}

impl RoomKey {
    pub fn shared(room: impl Into<String>) -> Self {
        Self {
            room: RemoteRoomId(room.into()),
            receiver: None,
        }
    }
}

impl TxnId {
    /// The transaction of a message an adapter recognises as posted by this gateway's relay
    /// (a Discord webhook of ours) without knowing which transaction it was: the core treats
    /// it as its own echo, never as a remote user's post.
    pub fn own_post() -> TxnId {
        TxnId::new("causeway:own-post")
    }

    pub fn is_own_post(&self) -> bool {
        self.0 == "causeway:own-post"
    }
}
