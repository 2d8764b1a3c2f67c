//! Typed descriptions of what Causeway says on XMPP, rendered to stanzas. The bridge builds
//! these structs and never touches XML; only this module (and disco.rs, vcard.rs, ...)
//! builds elements, and messages.rs writes messages as text.

pub use super::messages::{chat_message, notice, room_message, Extras, ReplyRef, RoomMessage};
use super::ns;
use super::render::render;
use super::{set_attr, Attrs};
use causeway_api::NetworkError;
use tokio_xmpp::minidom::Element;

/// A stanza ready for the component stream. Opaque outside `xmpp/`.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub(crate) stanza: Stanza,
    /// Kept in the outbox until the server acknowledged it (messages); presences and
    /// IQ answers are not replayed after a reconnect.
    pub(crate) durable: bool,
}

/// An element, or text written directly (messages, the hot path: messages.rs).
#[derive(Clone, Debug)]
pub(crate) enum Stanza {
    Element(Element),
    Text(String),
}

impl From<Element> for Stanza {
    fn from(el: Element) -> Self {
        Stanza::Element(el)
    }
}

impl Outgoing {
    /// The stanza's text, as the outbox keeps it and the link writes it.
    pub(crate) fn into_text(self) -> String {
        match self.stanza {
            Stanza::Element(el) => render(&el),
            Stanza::Text(t) => t,
        }
    }

    /// The stanza as an element (to wrap it, to inspect it in tests); None only if text
    /// written directly were not well-formed, which its writer rules out.
    pub(crate) fn to_element(&self) -> Option<Element> {
        match &self.stanza {
            Stanza::Element(el) => Some(el.clone()),
            Stanza::Text(t) => super::render::parse_stanza(t),
        }
    }

    /// Give the stanza this id (a presence answering a client's).
    pub(crate) fn set_id(&mut self, id: &str) {
        if let Stanza::Text(_) = &self.stanza {
            if let Some(el) = self.to_element() {
                self.stanza = Stanza::Element(el);
            }
        }
        if let Stanza::Element(el) = &mut self.stanza {
            set_attr(el, "id", id);
        }
    }
}

fn stanza(name: &str, from: &str, to: &str) -> Element {
    Element::builder(name, ns::STREAM)
        .at("from", from)
        .at("to", to)
        .build()
}

fn text(name: &str, ns: &str, body: &str) -> Element {
    Element::builder(name, ns).append(body).build()
}

/// An occupant's presence, sent to one of the room's XMPP sessions.
#[derive(Clone, Debug, Default)]
pub struct OccupantPresence {
    pub room: String,
    pub nick: String,
    pub to: String,
    pub id: Option<String>,
    pub unavailable: bool,
    pub affiliation: &'static str,
    pub role: &'static str,
    /// The occupant's real JID (non-anonymous room): a puppet JID or an XMPP user's JID.
    pub jid: Option<String>,
    /// New nick, with status 303.
    pub new_nick: Option<String>,
    pub statuses: Vec<u16>,
    pub occupant_id: String,
    /// XEP-0153 avatar hash (Some("") = no avatar).
    pub photo: Option<String>,
}

pub fn occupant_presence(p: &OccupantPresence) -> Outgoing {
    let mut el = stanza("presence", &format!("{}/{}", p.room, p.nick), &p.to);
    if let Some(id) = &p.id {
        set_attr(&mut el, "id", id.as_str());
    }
    if p.unavailable {
        set_attr(&mut el, "type", "unavailable");
    }
    let mut item = Element::builder("item", ns::MUC_USER)
        .at("affiliation", p.affiliation)
        .at("role", if p.unavailable { "none" } else { p.role })
        .build();
    if let Some(jid) = &p.jid {
        set_attr(&mut item, "jid", jid.as_str());
    }
    if let Some(n) = &p.new_nick {
        set_attr(&mut item, "nick", n.as_str());
    }
    let mut x = Element::builder("x", ns::MUC_USER).append(item).build();
    for code in &p.statuses {
        x.append_child(
            Element::builder("status", ns::MUC_USER)
                .at("code", code.to_string())
                .build(),
        );
    }
    el.append_child(x);
    if let (Some(hash), false) = (&p.photo, p.unavailable) {
        el.append_child(
            Element::builder("x", ns::VCARD_UPDATE)
                .append(text("photo", ns::VCARD_UPDATE, hash))
                .build(),
        );
    }
    el.append_child(
        Element::builder("occupant-id", ns::OCCUPANT_ID)
            .at("id", p.occupant_id.as_str())
            .build(),
    );
    Outgoing {
        stanza: el.into(),
        durable: false,
    }
}

/// A vCard-temp answer (XEP-0054): a name and, when known, a photo.
pub fn vcard(from: &str, to: &str, id: &str, name: &str, photo: Option<(&str, &[u8])>) -> Outgoing {
    let mut v = Element::builder("vCard", ns::VCARD)
        .append(text("FN", ns::VCARD, name))
        .append(text("NICKNAME", ns::VCARD, name))
        .build();
    if let Some((typ, bytes)) = photo {
        v.append_child(
            Element::builder("PHOTO", ns::VCARD)
                .append(text("TYPE", ns::VCARD, typ))
                .append(text("BINVAL", ns::VCARD, &base64_encode(bytes)))
                .build(),
        );
    }
    iq_result(from, to, id, Some(v))
}

/// Standard base64 with padding (RFC 4648), for vCard photos.
pub fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(A[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The room is gone (XEP-0045 10.9): the occupant's unavailable presence with `<destroy/>`.
pub fn room_destroyed(room: &str, nick: &str, to: &str) -> Outgoing {
    let mut el = stanza("presence", &format!("{room}/{nick}"), to);
    set_attr(&mut el, "type", "unavailable");
    let x = Element::builder("x", ns::MUC_USER)
        .append(
            Element::builder("item", ns::MUC_USER)
                .at("affiliation", "none")
                .at("role", "none")
                .build(),
        )
        .append(
            Element::builder("destroy", ns::MUC_USER)
                .append(text(
                    "reason",
                    ns::MUC_USER,
                    "The room was removed on the network.",
                ))
                .build(),
        )
        .append(
            Element::builder("status", ns::MUC_USER)
                .at("code", "110")
                .build(),
        )
        .build();
    el.append_child(x);
    Outgoing {
        stanza: el.into(),
        durable: false,
    }
}

/// XEP-0425: the room retracts a message (the remote side did not say who deleted it, or a
/// moderator did).
pub fn moderation(room: &str, to: &str, target: &str, reason: Option<&str>) -> Outgoing {
    let mut el = stanza("message", room, to);
    set_attr(&mut el, "type", "groupchat");
    set_attr(&mut el, "id", format!("mod-{:016x}", rand::random::<u64>()));
    let mut retract = Element::builder("retract", ns::RETRACT)
        .at("id", target)
        .append(
            Element::builder("moderated", ns::MODERATE)
                .at("by", room)
                .build(),
        )
        .build();
    if let Some(r) = reason {
        retract.append_child(text("reason", ns::RETRACT, r));
    }
    el.append_child(retract);
    el.append_child(
        Element::builder("fallback", ns::FALLBACK)
            .at("for", ns::RETRACT)
            .build(),
    );
    el.append_child(text(
        "body",
        ns::STREAM,
        "/me retracted a message, which your client does not show.",
    ));
    el.append_child(Element::builder("store", ns::HINTS).build());
    Outgoing {
        stanza: el.into(),
        durable: true,
    }
}

/// The room subject (sent last in the join sequence, empty when none).
pub fn room_subject(room: &str, to: &str, subject: &str) -> Outgoing {
    let mut el = stanza("message", room, to);
    set_attr(&mut el, "type", "groupchat");
    set_attr(&mut el, "id", format!("subject-{}", rand::random::<u32>()));
    el.append_child(text("subject", ns::STREAM, subject));
    Outgoing {
        stanza: el.into(),
        durable: false,
    }
}

/// A 1:1 message from a puppet.
/// RFC 6120 stanza error conditions Causeway uses, with their default error types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    RegistrationRequired,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    InternalServerError,
}

impl Condition {
    fn parts(self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest => ("bad-request", "modify"),
            Self::Conflict => ("conflict", "cancel"),
            Self::FeatureNotImplemented => ("feature-not-implemented", "cancel"),
            Self::Forbidden => ("forbidden", "auth"),
            Self::ItemNotFound => ("item-not-found", "cancel"),
            Self::JidMalformed => ("jid-malformed", "modify"),
            Self::NotAcceptable => ("not-acceptable", "modify"),
            Self::NotAllowed => ("not-allowed", "cancel"),
            Self::NotAuthorized => ("not-authorized", "auth"),
            Self::PolicyViolation => ("policy-violation", "modify"),
            Self::RecipientUnavailable => ("recipient-unavailable", "wait"),
            Self::RegistrationRequired => ("registration-required", "auth"),
            Self::RemoteServerTimeout => ("remote-server-timeout", "wait"),
            Self::ResourceConstraint => ("resource-constraint", "wait"),
            Self::ServiceUnavailable => ("service-unavailable", "cancel"),
            Self::InternalServerError => ("internal-server-error", "wait"),
        }
    }

    pub fn name(self) -> &'static str {
        self.parts().0
    }

    /// How a network failure is told to the XMPP sender.
    pub fn from_network(e: &NetworkError) -> Condition {
        match e {
            NetworkError::Unsupported(_) => Self::FeatureNotImplemented,
            NetworkError::NotFound(_) => Self::ItemNotFound,
            NetworkError::Forbidden(_) => Self::Forbidden,
            NetworkError::LoggedOut(_) => Self::NotAuthorized,
            NetworkError::RateLimited(_) => Self::ResourceConstraint,
            NetworkError::BadRequest(_) => Self::NotAcceptable,
            NetworkError::Other(_) => Self::RecipientUnavailable,
        }
    }
}

/// An error answer to a stanza: same name (message/presence/iq), from/to swapped, same id.
#[derive(Clone, Debug)]
pub struct ErrorReply {
    pub kind: &'static str,
    /// Who the erroring stanza was addressed to (becomes `from`).
    pub from: String,
    /// Who sent it (becomes `to`).
    pub to: String,
    pub id: Option<String>,
    pub condition: Condition,
    pub text: Option<String>,
}

pub fn error_reply(e: &ErrorReply) -> Outgoing {
    let (cond, typ) = e.condition.parts();
    let mut el = stanza(e.kind, &e.from, &e.to);
    set_attr(&mut el, "type", "error");
    if let Some(id) = &e.id {
        set_attr(&mut el, "id", id.as_str());
    }
    let mut err = Element::builder("error", ns::STREAM)
        .at("type", typ)
        .append(Element::builder(cond, ns::STANZAS).build())
        .build();
    if let Some(t) = &e.text {
        err.append_child(
            Element::builder("text", ns::STANZAS)
                .append(t.as_str())
                .build(),
        );
    }
    el.append_child(err);
    Outgoing {
        stanza: el.into(),
        durable: e.kind == "message",
    }
}

/// The error answer to the stanza behind an XmppEvent, from the JID it was addressed to;
/// None when that stanza was itself an error (errors are never answered).
pub fn error_for_event(
    domain: &str,
    ev: &super::XmppEvent,
    condition: Condition,
    text: Option<String>,
) -> Option<Outgoing> {
    let (kind, id) = ev.stanza_kind();
    (kind != "error").then(|| {
        error_reply(&ErrorReply {
            kind,
            from: format!("{}@{domain}", ev.target()),
            to: ev.from().to_string(),
            id: id.map(String::from),
            condition,
            text,
        })
    })
}

/// An IQ result carrying `payload` (or nothing).
pub fn iq_result(from: &str, to: &str, id: &str, payload: Option<Element>) -> Outgoing {
    let mut el = stanza("iq", from, to);
    set_attr(&mut el, "type", "result");
    set_attr(&mut el, "id", id);
    if let Some(p) = payload {
        el.append_child(p);
    }
    Outgoing {
        stanza: el.into(),
        durable: false,
    }
}

/// Unix milliseconds as an XEP-0082 UTC timestamp.
pub fn rfc3339(ms: i64) -> String {
    let c = causeway_api::time::civil(ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(raw.as_bytes()), enc);
        }
        assert_eq!(base64_encode(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn timestamps() {
        for (ms, s) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_795_000_000_000, "2026-11-18T11:06:40.000Z"),
        ] {
            assert_eq!(rfc3339(ms), s);
        }
    }

    #[test]
    fn error_reply_swaps_addresses_and_keeps_id() {
        let out = error_reply(&ErrorReply {
            kind: "iq",
            from: "gw.example".into(),
            to: "u@example/r".into(),
            id: Some("q1".into()),
            condition: Condition::FeatureNotImplemented,
            text: None,
        });
        let xml = out.into_text();
        for part in [
            "from='gw.example'",
            "to='u@example/r'",
            "id='q1'",
            "type='error'",
            "<feature-not-implemented",
            "type='cancel'",
        ] {
            assert!(xml.contains(part), "{part} missing in {xml}");
        }
    }
}
