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

/// The body of a message, as the core and every adapter see it: plain text without markup
/// characters, with styled ranges over it. Each side writes and reads its own markup
/// (XEP-0393 on XMPP, Markdown on Discord, HTML on Matrix).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Content {
    /// Plain text; the fallback every side can show.
    pub text: String,
    pub kind: TextKind,
    /// Styled ranges of `text`, by byte offsets on character boundaries; they nest but do
    /// not cross.
    #[serde(default)]
    pub spans: Vec<Span>,
    /// Files shared with the message.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

impl Content {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    /// The text of one span.
    pub fn span_text(&self, span: &Span) -> &str {
        self.text.get(span.start..span.end).unwrap_or("")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
    pub style: Style,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Style {
    Bold,
    Italic,
    Strike,
    /// Inline code.
    Code,
    /// A preformatted block, with the language when known.
    Pre(Option<String>),
    Quote,
    Link(String),
    /// A remote user mentioned by name.
    Mention(crate::RemoteUserId),
}

/// A file shared with a message, as a URL anyone with the link can fetch (the core re-hosts
/// remote files that need tokens or expire).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub url: String,
    pub name: String,
    pub content_type: Option<String>,
    pub size: Option<u64>,
}

/// How an XMPP user is shown on the remote side when a shared relay login posts for them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persona {
    pub nick: String,
    pub avatar_url: Option<String>,
    /// A stable, opaque id for the XMPP user (never the real JID unless configured).
    pub xmpp_user: String,
}
