//! What a message stanza from an XMPP user carries besides its addressing: a body (reply
//! fallback stripped), a correction, a retraction, a reaction set, a reply reference, a chat
//! state, a displayed marker, an attached URL. Parsed once, as plain data.

use super::ns;
use causeway_api::{Attachment, Content, TextKind};
use tokio_xmpp::minidom::Element;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChatState {
    Active,
    Composing,
    Paused,
    Inactive,
    Gone,
}

impl ChatState {
    fn parse(name: &str) -> Option<ChatState> {
        Some(match name {
            "active" => Self::Active,
            "composing" => Self::Composing,
            "paused" => Self::Paused,
            "inactive" => Self::Inactive,
            "gone" => Self::Gone,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Composing => "composing",
            Self::Paused => "paused",
            Self::Inactive => "inactive",
            Self::Gone => "gone",
        }
    }
}

/// A XEP-0444 reaction set: the sender's full current set on one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReactionSet {
    pub id: String,
    pub emojis: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Payload {
    /// The text, with any XEP-0461 reply fallback removed.
    pub body: Option<String>,
    /// XEP-0308: the id of the message this one corrects.
    pub replace: Option<String>,
    /// XEP-0424: the id of the message retracted.
    pub retract: Option<String>,
    pub reactions: Option<ReactionSet>,
    /// XEP-0461: the id of the message answered.
    pub reply_to: Option<String>,
    pub chat_state: Option<ChatState>,
    /// XEP-0333: the id of the last message displayed.
    pub displayed: Option<String>,
    /// XEP-0066 out-of-band URL (an attachment shared by upload).
    pub oob_url: Option<String>,
    /// XEP-0393: the body must not be read as styled.
    pub unstyled: bool,
}

impl Payload {
    /// Nothing Causeway bridges.
    pub fn is_empty(&self) -> bool {
        Payload {
            unstyled: false,
            ..self.clone()
        } == Payload::default()
    }
}

/// A body as network-neutral Content: XEP-0393 styling read (unless the sender said
/// `<unstyled/>`), "/me " as an emote, a shared file (body == OOB URL) as an attachment.
pub fn content_of(body: &str, unstyled: bool, oob_url: Option<&str>) -> Content {
    if let Some(url) = oob_url.filter(|u| *u == body.trim()) {
        let name = url
            .split(['?', '#'])
            .next()
            .and_then(|p| p.rsplit('/').next())
            .filter(|n| !n.is_empty())
            .unwrap_or("file");
        return Content {
            attachments: vec![Attachment {
                url: url.to_string(),
                name: name.to_string(),
                content_type: None,
                size: None,
            }],
            ..Content::default()
        };
    }
    let (kind, body) = match body.strip_prefix("/me ") {
        Some(rest) => (TextKind::Emote, rest),
        None => (TextKind::Normal, body),
    };
    let mut c = if unstyled {
        Content::text(body)
    } else {
        super::styling::parse(body)
    };
    c.kind = kind;
    c
}

/// Content as an XMPP body, and whether it must be marked `<unstyled/>`.
pub fn body_of(content: &Content) -> (String, bool) {
    let (text, unstyled) = super::styling::write(content);
    match content.kind {
        TextKind::Emote => (format!("/me {text}"), unstyled),
        _ => (text, unstyled),
    }
}

/// Most reactions one set may carry, and the longest single reaction (bytes): an emoji with
/// modifiers is well under this; anything longer is not a reaction.
pub const MAX_REACTIONS: usize = 64;
pub const MAX_REACTION_LEN: usize = 64;

/// Why a payload is refused (becomes a not-acceptable error with this text).
pub type Refusal = String;

pub fn parse(el: &Element, max_body: usize) -> Result<Payload, Refusal> {
    let mut p = Payload::default();
    let mut fallbacks: Vec<(Option<usize>, Option<usize>)> = Vec::new();
    let mut reply_fallback = false;
    for c in el.children() {
        let cns = c.ns();
        match (c.name(), cns.as_str()) {
            ("body", ns::STREAM) if p.body.is_none() => p.body = Some(c.text()),
            ("replace", ns::CORRECT) => p.replace = c.attr("id").map(String::from),
            ("retract", ns::RETRACT) => p.retract = c.attr("id").map(String::from),
            ("reactions", ns::REACTIONS) => {
                let Some(id) = c.attr("id") else {
                    return Err("reactions without the id of a message".into());
                };
                let mut emojis: Vec<String> = Vec::new();
                for r in c.children().filter(|r| r.is("reaction", ns::REACTIONS)) {
                    let e = r.text().trim().to_string();
                    if e.is_empty() {
                        continue;
                    }
                    if e.len() > MAX_REACTION_LEN {
                        return Err("a reaction longer than an emoji".into());
                    }
                    if !emojis.contains(&e) {
                        emojis.push(e);
                    }
                    // (refused as soon as it is known: the look-ups stay bounded)
                    if emojis.len() > MAX_REACTIONS {
                        return Err(format!("more than {MAX_REACTIONS} reactions"));
                    }
                }
                p.reactions = Some(ReactionSet {
                    id: id.to_string(),
                    emojis,
                });
            }
            ("reply", ns::REPLY) => p.reply_to = c.attr("id").map(String::from),
            ("fallback", ns::FALLBACK) if c.attr("for") == Some(ns::REPLY) => {
                reply_fallback = true;
                for b in c.children().filter(|b| b.is("body", ns::FALLBACK)) {
                    let num = |a| b.attr(a).and_then(|v: &str| v.trim().parse().ok());
                    fallbacks.push((num("start"), num("end")));
                }
            }
            ("displayed", ns::MARKERS) => p.displayed = c.attr("id").map(String::from),
            ("x", ns::OOB) => {
                p.oob_url = c
                    .get_child("url", ns::OOB)
                    .map(|u| u.text().trim().to_string())
            }
            ("unstyled", ns::STYLING) => p.unstyled = true,
            (name, ns::CHATSTATES) => p.chat_state = ChatState::parse(name),
            _ => {}
        }
    }
    if let Some(b) = &p.body {
        if b.len() > max_body {
            return Err(format!("message body longer than {max_body} bytes"));
        }
    }
    if p.reply_to.is_some() && reply_fallback {
        p.body = p.body.map(|b| strip_fallback(&b, &fallbacks));
    }
    if p.retract.is_some() {
        p.body = None; // the body of a retraction is a fallback for old clients
    }
    if p.body.as_deref().is_some_and(|b| b.trim().is_empty()) {
        p.body = None;
    }
    Ok(p)
}

/// Remove XEP-0428 fallback ranges (in Unicode code points, `end` exclusive) from a body. A
/// fallback element with no range covers the whole body. Ranges out of bounds are clamped,
/// reversed or overlapping ones are tolerated; leading line breaks left over are trimmed.
pub fn strip_fallback(body: &str, ranges: &[(Option<usize>, Option<usize>)]) -> String {
    let chars: Vec<char> = body.chars().collect();
    let len = chars.len();
    if ranges.is_empty() {
        return String::new();
    }
    // how many ranges open (+1) and close (-1) at each position: linear in the body and the
    // number of ranges together, whatever they overlap
    let mut opens = vec![0i64; len + 1];
    for &(start, end) in ranges {
        let (s, e) = match (start, end) {
            (Some(s), Some(e)) => (s.min(len), e.min(len)),
            _ => (0, len),
        };
        if s < e {
            opens[s] += 1;
            opens[e] -= 1;
        }
    }
    let mut depth = 0i64;
    let kept: String = chars
        .into_iter()
        .zip(opens)
        .filter(|(_, o)| {
            depth += o;
            depth == 0
        })
        .map(|(c, _)| c)
        .collect();
    kept.trim_start_matches(['\n', '\r']).to_string()
}

/// The quoted fallback put before a reply's text for clients without XEP-0461: "> Nick:\n>
/// line...\n", and its length in code points (the fallback range's end).
pub fn quote_fallback(nick: &str, quoted: &str) -> (String, usize) {
    const MAX_QUOTED: usize = 200;
    let mut short: String = quoted.chars().take(MAX_QUOTED).collect();
    if quoted.chars().count() > MAX_QUOTED {
        short.push('…');
    }
    let mut out = format!("> {nick}:\n");
    for line in short.lines() {
        out.push_str("> ");
        out.push_str(line);
        out.push('\n');
    }
    let n = out.chars().count();
    (out, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(inner: &str) -> Element {
        format!("<message xmlns='jabber:component:accept' type='groupchat'>{inner}</message>")
            .parse()
            .expect("xml")
    }

    #[test]
    fn fallbacks_are_stripped_by_code_points() {
        type Case<'a> = (&'a str, &'a [(Option<usize>, Option<usize>)], &'a str);
        let cases: &[Case] = &[
            ("> Al:\n> hi\nyes", &[(Some(0), Some(11))], "yes"),
            ("> é😀:\n> x\nok", &[(Some(0), Some(10))], "ok"),
            ("quote then text", &[(Some(0), Some(6))], "then text"),
            // out of range, reversed, overlapping: clamped, nothing panics
            ("short", &[(Some(3), Some(999))], "sho"),
            ("short", &[(Some(999), Some(1000))], "short"),
            ("abcdef", &[(Some(4), Some(2))], "abcdef"),
            ("abcdef", &[(Some(0), Some(3)), (Some(2), Some(4))], "ef"),
            // no range: the whole body is fallback
            ("all fallback", &[(None, None)], ""),
            ("x", &[], ""),
        ];
        for (body, ranges, want) in cases {
            assert_eq!(strip_fallback(body, ranges), *want, "{body:?} {ranges:?}");
        }
        let huge = "é".repeat(100_000);
        assert_eq!(
            strip_fallback(&huge, &[(Some(1), Some(99_999))])
                .chars()
                .count(),
            2
        );
    }

    #[test]
    fn quoted_fallback_round_trips_through_the_stripper() {
        for (nick, text) in [
            ("Alice", "hello"),
            ("Bob", "two\nlines"),
            ("Zoë", &"long ".repeat(100)[..]),
            ("E", "😀 emoji"),
        ] {
            let (fb, end) = quote_fallback(nick, text);
            let body = format!("{fb}my answer");
            assert_eq!(strip_fallback(&body, &[(Some(0), Some(end))]), "my answer");
            assert!(fb.starts_with(&format!("> {nick}:\n")));
        }
    }

    #[test]
    fn bodies_become_content_and_back() {
        let c = content_of("/me waves *hard*", false, None);
        assert_eq!(
            (c.kind, c.text.as_str(), c.spans.len()),
            (TextKind::Emote, "waves hard", 1)
        );
        assert_eq!(body_of(&c), ("/me waves *hard*".to_string(), false));
        let c = content_of("*literal*", true, None);
        assert_eq!((c.text.as_str(), c.spans.len()), ("*literal*", 0));
        assert_eq!(body_of(&c), ("*literal*".to_string(), true));
        let c = content_of(
            "https://up.example/a/cat%20pic.png?x=1",
            false,
            Some("https://up.example/a/cat%20pic.png?x=1"),
        );
        assert_eq!(c.attachments[0].name, "cat%20pic.png");
        assert!(c.text.is_empty());
        let c = content_of(
            "see https://up.example/f",
            false,
            Some("https://up.example/f"),
        );
        assert!(
            c.attachments.is_empty(),
            "a body that is more than the URL is text"
        );
    }

    #[test]
    fn payloads_parse() {
        let p = parse(&msg("<body>> A:\n> q\nans</body><reply xmlns='urn:xmpp:reply:0' to='r@x/A' id='s1'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='9'/></fallback>"), 100).expect("reply");
        assert_eq!(p.body.as_deref(), Some("ans"));
        assert_eq!(p.reply_to.as_deref(), Some("s1"));

        let p = parse(
            &msg("<body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='m1'/>"),
            100,
        )
        .expect("edit");
        assert_eq!(
            (p.body.as_deref(), p.replace.as_deref()),
            (Some("fixed"), Some("m1"))
        );

        let p = parse(&msg("<body>/me retracted</body><retract xmlns='urn:xmpp:message-retract:1' id='s2'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:message-retract:1'/>"), 100).expect("retract");
        assert_eq!((p.body, p.retract.as_deref()), (None, Some("s2")));

        let p = parse(&msg("<reactions xmlns='urn:xmpp:reactions:0' id='s3'><reaction>👍</reaction><reaction>👍</reaction><reaction> </reaction><reaction>🎉</reaction></reactions>"), 100).expect("reactions");
        assert_eq!(
            p.reactions.map(|r| r.emojis),
            Some(vec!["👍".to_string(), "🎉".to_string()])
        );

        let p = parse(
            &msg("<composing xmlns='http://jabber.org/protocol/chatstates'/>"),
            100,
        )
        .expect("state");
        assert_eq!(p.chat_state, Some(ChatState::Composing));
        let p = parse(
            &msg("<displayed xmlns='urn:xmpp:chat-markers:0' id='s4'/>"),
            100,
        )
        .expect("marker");
        assert_eq!(p.displayed.as_deref(), Some("s4"));
        let p = parse(&msg("<body>https://x/f.png</body><x xmlns='jabber:x:oob'><url>https://x/f.png</url></x>"), 100).expect("oob");
        assert_eq!(p.oob_url.as_deref(), Some("https://x/f.png"));
        assert!(parse(&msg("<body>   </body>"), 100)
            .expect("blank")
            .is_empty());

        // hostile input is refused with a reason
        let many: String = (0..100)
            .map(|i| format!("<reaction>{i}</reaction>"))
            .collect();
        for bad in [
            format!("<reactions xmlns='urn:xmpp:reactions:0' id='s'>{many}</reactions>"),
            format!("<reactions xmlns='urn:xmpp:reactions:0' id='s'><reaction>{}</reaction></reactions>", "x".repeat(65)),
            "<reactions xmlns='urn:xmpp:reactions:0'><reaction>x</reaction></reactions>".to_string(),
            format!("<body>{}</body>", "b".repeat(101)),
        ] {
            assert!(parse(&msg(&bad), 100).is_err(), "{bad}");
        }
    }
}
