//! What XMPP users do, as plain data: produced by inbound.rs, consumed by the bridge.

use super::mam::MamQuery;
use super::payload::Payload;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XmppEvent {
    /// Available presence to room/nick: a join, a nick change, or a presence update.
    Join {
        room: String,
        from: String,
        nick: String,
        id: Option<String>,
        history: Option<usize>,
    },
    Leave {
        room: String,
        from: String,
        id: Option<String>,
    },
    Groupchat {
        room: String,
        from: String,
        id: Option<String>,
        origin_id: Option<String>,
        payload: Payload,
    },
    /// A 1:1 message to a puppet JID.
    Direct {
        user: String,
        from: String,
        id: Option<String>,
        payload: Payload,
    },
    /// XEP-0425: a moderator asks the room to retract someone's message.
    Moderate {
        room: String,
        from: String,
        id: String,
        target: String,
        reason: Option<String>,
    },
    /// XEP-0054: the vCard of an occupant (room/nick), for its avatar.
    OccupantVCard {
        room: String,
        nick: String,
        from: String,
        id: String,
    },
    /// XEP-0313: a query of the room's archive.
    Archive {
        room: String,
        from: String,
        id: String,
        query: MamQuery,
    },
    /// XEP-0410: an occupant pings its own occupant JID.
    SelfPing {
        room: String,
        nick: String,
        from: String,
        id: String,
    },
    /// An error bounced back from an occupant's session: it is gone.
    OccupantError { room: String, from: String },
    /// disco#info on a room JID.
    RoomInfo {
        room: String,
        from: String,
        id: String,
    },
}

impl XmppEvent {
    /// The localpart the event is addressed to (room or puppet).
    pub fn target(&self) -> &str {
        match self {
            Self::Join { room, .. }
            | Self::Leave { room, .. }
            | Self::Groupchat { room, .. }
            | Self::SelfPing { room, .. }
            | Self::OccupantError { room, .. }
            | Self::RoomInfo { room, .. }
            | Self::Moderate { room, .. }
            | Self::OccupantVCard { room, .. }
            | Self::Archive { room, .. } => room,
            Self::Direct { user, .. } => user,
        }
    }

    /// The full JID of the XMPP user behind the event.
    pub fn from(&self) -> &str {
        match self {
            Self::Join { from, .. }
            | Self::Leave { from, .. }
            | Self::Groupchat { from, .. }
            | Self::Direct { from, .. }
            | Self::SelfPing { from, .. }
            | Self::OccupantError { from, .. }
            | Self::RoomInfo { from, .. }
            | Self::Moderate { from, .. }
            | Self::OccupantVCard { from, .. }
            | Self::Archive { from, .. } => from,
        }
    }

    /// What the stanza was, and its id, for an error answer when the target does not exist.
    pub fn stanza_kind(&self) -> (&'static str, Option<&str>) {
        match self {
            Self::Join { id, .. } | Self::Leave { id, .. } => ("presence", id.as_deref()),
            Self::Groupchat { id, .. } | Self::Direct { id, .. } => ("message", id.as_deref()),
            Self::SelfPing { id, .. }
            | Self::RoomInfo { id, .. }
            | Self::Moderate { id, .. }
            | Self::OccupantVCard { id, .. }
            | Self::Archive { id, .. } => ("iq", Some(id)),
            Self::OccupantError { .. } => ("error", None),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Addressed {
    pub domain: Arc<str>,
    pub event: XmppEvent,
}

/// Split "node@domain/resource" (already normalised by the server).
pub fn split_jid(jid: &str) -> (Option<&str>, &str, Option<&str>) {
    let (bare, resource) = match jid.split_once('/') {
        Some((b, r)) => (b, Some(r)),
        None => (jid, None),
    };
    match bare.split_once('@') {
        Some((n, d)) => (Some(n), d, resource),
        None => (None, bare, resource),
    }
}

pub fn bare(jid: &str) -> &str {
    jid.split_once('/').map_or(jid, |(b, _)| b)
}
