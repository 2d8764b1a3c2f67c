//! Network-neutral message content.

use serde::{Deserialize, Serialize};

/// The kind of a text message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum TextKind {
    #[default]
    Normal,
    /// "/me does something"
    Emote,
    /// An automated notice (bots, system messages).
    Notice,
}

/// The body of a message, as the core and every adapter see it.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Content {
    /// Plain text; the fallback every side can show.
    pub text: String,
    pub kind: TextKind,
}

impl Content {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            kind: TextKind::Normal,
        }
    }
}

/// How an XMPP user is shown on the remote side when a shared relay login posts for them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persona {
    pub nick: String,
    pub avatar_url: Option<String>,
    /// A stable, opaque id for the XMPP user (never the real JID unless configured).
    pub xmpp_user: String,
}
