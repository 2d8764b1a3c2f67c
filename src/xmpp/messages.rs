//! Room and 1:1 messages, the stanzas Causeway sends most: written as text directly
//! (render.rs's writer, with its escaping and mending), not built as elements and then
//! serialized. Everything else is built as an element (outbound.rs).

use super::ns;
use super::outbound::{rfc3339, Outgoing, Stanza};
use super::payload::{self, ChatState};
use super::render::{attr, close, empty, escape, open, text_element};
use std::borrow::Cow;

/// A groupchat message from an occupant (live, reflected, or history with a delay).
#[derive(Clone, Debug, Default)]
pub struct RoomMessage {
    pub room: String,
    pub nick: String,
    pub to: String,
    /// The client's id for its own reflected messages; the remote id otherwise.
    pub id: String,
    pub stanza_id: String,
    pub origin_id: Option<String>,
    pub body: String,
    pub occupant_id: String,
    /// Unix ms, for history.
    pub delay: Option<i64>,
    pub extras: Extras,
}

/// A reference to the message answered (XEP-0461).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplyRef {
    /// The author's occupant JID (groupchat) or bare JID (chat).
    pub to: String,
    pub id: String,
    /// Nick and text of the message answered, for the quoted fallback.
    pub nick: String,
    pub quoted: String,
}

/// What a message carries besides its body.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// XEP-0308: this corrects the message with this id.
    pub replace: Option<String>,
    pub reply: Option<ReplyRef>,
    /// XEP-0424: retract the message with this id.
    pub retract: Option<String>,
    /// XEP-0444: the sender's full reaction set on a message.
    pub reactions: Option<(String, Vec<String>)>,
    pub chat_state: Option<ChatState>,
    /// XEP-0066: the body is this URL.
    pub oob: Option<String>,
    /// Archive tombstone: the message was retracted at this time (Unix ms).
    pub retracted_at: Option<i64>,
    /// XEP-0393: the body is not to be shown styled.
    pub unstyled: bool,
    /// XEP-0333: the sender displayed everything up to this message.
    pub displayed: Option<String>,
}

impl Extras {
    /// Only a chat state: not archived, not replayed.
    pub(crate) fn transient(&self) -> bool {
        self.chat_state.is_some() && self.retract.is_none() && self.reactions.is_none()
    }
}

/// The body and payload elements of a message, after its head.
fn decorate(out: &mut String, body: &str, x: &Extras) {
    let mut body = Cow::Borrowed(body);
    if let Some(r) = &x.reply {
        open(out, "reply", Some(ns::REPLY));
        attr(out, "to", &r.to);
        attr(out, "id", &r.id);
        empty(out);
        if !body.is_empty() {
            let (quote, end) = payload::quote_fallback(&r.nick, &r.quoted);
            body = Cow::Owned(format!("{quote}{body}"));
            open(out, "fallback", Some(ns::FALLBACK));
            attr(out, "for", ns::REPLY);
            out.push('>');
            open(out, "body", None);
            attr(out, "start", "0");
            attr(out, "end", &end.to_string());
            empty(out);
            close(out, "fallback");
        }
    }
    if let Some(id) = &x.retract {
        open(out, "retract", Some(ns::RETRACT));
        attr(out, "id", id);
        empty(out);
        open(out, "fallback", Some(ns::FALLBACK));
        attr(out, "for", ns::RETRACT);
        empty(out);
        body = Cow::Borrowed("/me retracted a message, which your client does not show.");
    }
    if let Some(stamp) = x.retracted_at {
        open(out, "retracted", Some(ns::RETRACT));
        attr(out, "stamp", &rfc3339(stamp));
        empty(out);
        body = Cow::Borrowed("");
    }
    if let Some((id, emojis)) = &x.reactions {
        open(out, "reactions", Some(ns::REACTIONS));
        attr(out, "id", id);
        if emojis.is_empty() {
            empty(out);
        } else {
            out.push('>');
            for e in emojis {
                text_element(out, "reaction", e);
            }
            close(out, "reactions");
        }
    }
    if let Some(id) = &x.replace {
        open(out, "replace", Some(ns::CORRECT));
        attr(out, "id", id);
        empty(out);
    }
    if let Some(url) = &x.oob {
        open(out, "x", Some(ns::OOB));
        out.push('>');
        text_element(out, "url", url);
        close(out, "x");
    }
    if let Some(id) = &x.displayed {
        open(out, "displayed", Some(ns::MARKERS));
        attr(out, "id", id);
        empty(out);
    }
    if let Some(cs) = x.chat_state {
        open(out, cs.name(), Some(ns::CHATSTATES));
        empty(out);
        hint(out, "no-store");
    } else if body.is_empty() {
        hint(out, "store");
    }
    if !body.is_empty() {
        text_element(out, "body", &body);
        if x.unstyled {
            open(out, "unstyled", Some(ns::STYLING));
            empty(out);
        }
    }
}

/// A XEP-0334 hint.
fn hint(out: &mut String, name: &str) {
    open(out, name, Some(ns::HINTS));
    empty(out);
}

/// `<message from=... to=... type=... id=...>`, the head every message starts with.
fn head(out: &mut String, from: (&str, Option<&str>), to: &str, kind: &str, id: &str) {
    open(out, "message", None);
    out.push_str(" from='");
    escape(from.0, true, out);
    if let Some(resource) = from.1 {
        out.push('/');
        escape(resource, true, out);
    }
    out.push('\'');
    attr(out, "to", to);
    attr(out, "type", kind);
    attr(out, "id", id);
    out.push('>');
}

pub fn room_message(m: &RoomMessage) -> Outgoing {
    let mut out = String::with_capacity(320 + m.body.len());
    head(
        &mut out,
        (&m.room, Some(&m.nick)),
        &m.to,
        "groupchat",
        &m.id,
    );
    decorate(&mut out, &m.body, &m.extras);
    if !m.stanza_id.is_empty() {
        open(&mut out, "stanza-id", Some(ns::SID));
        attr(&mut out, "id", &m.stanza_id);
        attr(&mut out, "by", &m.room);
        empty(&mut out);
    }
    if let Some(o) = &m.origin_id {
        open(&mut out, "origin-id", Some(ns::SID));
        attr(&mut out, "id", o);
        empty(&mut out);
    }
    open(&mut out, "occupant-id", Some(ns::OCCUPANT_ID));
    attr(&mut out, "id", &m.occupant_id);
    empty(&mut out);
    if let Some(ms) = m.delay {
        open(&mut out, "delay", Some(ns::DELAY));
        attr(&mut out, "from", &m.room);
        attr(&mut out, "stamp", &rfc3339(ms));
        empty(&mut out);
    }
    close(&mut out, "message");
    Outgoing {
        stanza: Stanza::Text(out),
        durable: m.delay.is_none() && !m.extras.transient(),
    }
}

pub fn chat_message(from: &str, to: &str, id: &str, body: &str, extras: &Extras) -> Outgoing {
    let mut out = String::with_capacity(256 + body.len());
    head(&mut out, (from, None), to, "chat", id);
    decorate(&mut out, body, extras);
    if !extras.transient() {
        if !body.is_empty() {
            hint(&mut out, "store");
        }
        open(&mut out, "markable", Some(ns::MARKERS));
        empty(&mut out);
    }
    close(&mut out, "message");
    Outgoing {
        stanza: Stanza::Text(out),
        durable: !extras.transient(),
    }
}

/// A word from the gateway to one session, about what it sent (`kind` "groupchat" from a
/// room's bare JID, as XEP-0045 rooms speak; "chat" from a puppet). Not archived.
pub fn notice(from: &str, to: &str, kind: &str, id: &str, body: &str) -> Outgoing {
    let mut out = String::with_capacity(256 + body.len());
    head(&mut out, (from, None), to, kind, id);
    decorate(&mut out, body, &Extras::default());
    hint(&mut out, "no-store");
    close(&mut out, "message");
    Outgoing {
        stanza: Stanza::Text(out),
        durable: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_xmpp::minidom::Element;

    fn el(xml: &str) -> Element {
        xml.parse().expect("test xml")
    }

    fn room(body: &str, extras: Extras) -> RoomMessage {
        RoomMessage {
            room: "r@gw".into(),
            nick: "N<ick>".into(),
            to: "u@h/res".into(),
            id: "i'd".into(),
            stanza_id: "s1".into(),
            origin_id: None,
            body: body.into(),
            occupant_id: "o1".into(),
            delay: None,
            extras,
        }
    }

    const HEAD: &str = "<message xmlns='jabber:component:accept' from='r@gw/N&lt;ick&gt;' to='u@h/res' type='groupchat' id='i&apos;d'>";
    const IDS: &str = "<stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='r@gw'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='o1'/></message>";

    /// Each message as a client reads it: (message, the payload between head and ids).
    #[test]
    fn room_messages_read_as_the_xeps_say() {
        let reply = ReplyRef {
            to: "r@gw/A".into(),
            id: "m0".into(),
            nick: "A".into(),
            quoted: "q".into(),
        };
        let cases: Vec<(RoomMessage, &str)> = vec![
            (room("hi & bye", Extras::default()), "<body>hi &amp; bye</body>"),
            (
                room("ans", Extras { reply: Some(reply), ..Extras::default() }),
                "<reply xmlns='urn:xmpp:reply:0' to='r@gw/A' id='m0'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='9'/></fallback><body>&gt; A:\n&gt; q\nans</body>",
            ),
            (
                room("", Extras { retract: Some("m1".into()), ..Extras::default() }),
                "<retract xmlns='urn:xmpp:message-retract:1' id='m1'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/><body>/me retracted a message, which your client does not show.</body>",
            ),
            (
                room("gone", Extras { retracted_at: Some(0), ..Extras::default() }),
                "<retracted xmlns='urn:xmpp:message-retract:1' stamp='1970-01-01T00:00:00.000Z'/><store xmlns='urn:xmpp:hints'/>",
            ),
            (
                room("", Extras { reactions: Some(("m2".into(), vec!["👍".into(), "<3".into()])), ..Extras::default() }),
                "<reactions xmlns='urn:xmpp:reactions:0' id='m2'><reaction>👍</reaction><reaction>&lt;3</reaction></reactions><store xmlns='urn:xmpp:hints'/>",
            ),
            (
                room("", Extras { reactions: Some(("m2".into(), vec![])), ..Extras::default() }),
                "<reactions xmlns='urn:xmpp:reactions:0' id='m2'/><store xmlns='urn:xmpp:hints'/>",
            ),
            (
                room("fixed", Extras { replace: Some("m3".into()), unstyled: true, ..Extras::default() }),
                "<replace xmlns='urn:xmpp:message-correct:0' id='m3'/><body>fixed</body><unstyled xmlns='urn:xmpp:styling:0'/>",
            ),
            (
                room("https://x/y?a&b", Extras { oob: Some("https://x/y?a&b".into()), ..Extras::default() }),
                "<x xmlns='jabber:x:oob'><url>https://x/y?a&amp;b</url></x><body>https://x/y?a&amp;b</body>",
            ),
            (
                room("", Extras { displayed: Some("m4".into()), ..Extras::default() }),
                "<displayed xmlns='urn:xmpp:chat-markers:0' id='m4'/><store xmlns='urn:xmpp:hints'/>",
            ),
            (
                room("", Extras { chat_state: Some(ChatState::Composing), ..Extras::default() }),
                "<composing xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/>",
            ),
        ];
        for (m, payload) in cases {
            let got = room_message(&m).to_element().expect("well-formed");
            let want = el(&format!("{HEAD}{payload}{IDS}"));
            assert_eq!(got, want, "{payload}");
        }
        // history: with the origin id and a delay, not replayed
        let mut m = room("old", Extras::default());
        m.origin_id = Some("or".into());
        m.delay = Some(1_000);
        let o = room_message(&m);
        assert!(!o.durable);
        assert_eq!(
            o.to_element().expect("well-formed"),
            el(&format!("{HEAD}<body>old</body><stanza-id xmlns='urn:xmpp:sid:0' id='s1' by='r@gw'/><origin-id xmlns='urn:xmpp:sid:0' id='or'/><occupant-id xmlns='urn:xmpp:occupant-id:0' id='o1'/><delay xmlns='urn:xmpp:delay' from='r@gw' stamp='1970-01-01T00:00:01.000Z'/></message>"))
        );
    }

    #[test]
    fn chat_messages_are_stored_and_markable_unless_only_a_state() {
        let head =
            "<message xmlns='jabber:component:accept' from='p@gw' to='u@h' type='chat' id='c1'>";
        let cases = [
            (Extras::default(), "hi", true, "<body>hi</body><store xmlns='urn:xmpp:hints'/><markable xmlns='urn:xmpp:chat-markers:0'/>"),
            (
                Extras { chat_state: Some(ChatState::Active), ..Extras::default() },
                "",
                false,
                "<active xmlns='http://jabber.org/protocol/chatstates'/><no-store xmlns='urn:xmpp:hints'/>",
            ),
        ];
        for (extras, body, durable, payload) in cases {
            let o = chat_message("p@gw", "u@h", "c1", body, &extras);
            assert_eq!(o.durable, durable);
            assert_eq!(
                o.to_element().expect("well-formed"),
                el(&format!("{head}{payload}</message>"))
            );
        }
    }
}
