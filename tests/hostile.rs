//! Hostile text end to end, through a real server with a real XMPP client: bodies built to
//! trip parsers (markup, entities, controls, every UTF-8 length; `causeway_api::hostile`)
//! go from XMPP to the network and from the network to XMPP. Each arrives once, in order,
//! with its text (mended where XML cannot carry it), and the link never drops.

mod common;
use common::*;
use tokio_xmpp::minidom::Element;

const TEXTS: usize = 150;

/// Whether XML 1.0 can carry the character (what a client can send at all).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || !(c < ' ' || c == '\u{fffe}' || c == '\u{ffff}')
}

/// A server, Causeway on it, and Juliet in the demo lobby.
async fn joined(kind: Kind) -> (Server, tempfile::TempDir, Gateway, XmppClient) {
    let server = Server::start(kind);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    let gw = Gateway::start(&server, &url).await;
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    juliet.join(&format!("lobby@{DOMAIN}"), "Juliet").await;
    (server, dir, gw, juliet)
}

/// The component link never dropped (no reconnect counted).
async fn assert_link_kept(gw: &Gateway) {
    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        !metrics.contains("causeway_reconnects_total{domain=\"demo.localhost\"} "),
        "{metrics}"
    );
}

async fn hostile_suite(kind: Kind) {
    let (_server, _dir, gw, mut juliet) = joined(kind).await;
    let room = format!("lobby@{DOMAIN}");
    let texts = causeway_api::hostile::texts(TEXTS);

    // XMPP -> network: every text a client can send is reflected as sent and reaches the
    // network, in order
    // (without what XML cannot carry: a client cannot send it; line ends as an XML parser
    // reads them, since the test client writes a carriage return as it is)
    let sendable: Vec<String> = texts
        .iter()
        .map(|t| {
            let t: String = t.chars().filter(|c| xml_char(*c)).collect();
            t.replace("\r\n", "\n").replace('\r', "\n")
        })
        .filter(|t| !t.trim().is_empty())
        .collect();
    assert!(sendable.len() > TEXTS * 9 / 10, "too few texts to send");
    let before = gw.demo.sent().len();
    for (i, t) in sendable.iter().enumerate() {
        let msg = Element::builder("message", "jabber:client")
            .attr("to".try_into().expect("name"), room.as_str())
            .attr("type".try_into().expect("name"), "groupchat")
            .attr("id".try_into().expect("name"), format!("h{i}"))
            .append(
                Element::builder("body", "jabber:client")
                    .append(t.as_str())
                    .build(),
            )
            .build();
        juliet.send_xml(&String::from(&msg)).await;
        if i % 8 == 0 {
            juliet.pump(std::time::Duration::from_millis(20)).await;
        }
    }
    for (i, t) in sendable.iter().enumerate() {
        let id = format!("h{i}");
        let m = juliet
            .expect(&format!("reflection {id}"), SEC, |e| {
                e.attr("id") == Some(id.as_str()) && e.attr("type") == Some("groupchat")
            })
            .await;
        assert_eq!(body(&m).as_deref(), Some(t.as_str()), "{id}: {t:?}");
    }
    let sent = until("every text at the network", || {
        let s = gw.demo.sent();
        (s.len() >= before + sendable.len()).then_some(s)
    })
    .await;
    assert_eq!(sent.len(), before + sendable.len(), "each text once");

    // network -> XMPP: every text, controls included, arrives mended, in order
    let mut ids = Vec::new();
    for t in &texts {
        ids.push(gw.demo.inject_message("lobby", "bob", t).await);
    }
    let from = format!("{room}/Bob");
    for (t, id) in texts.iter().zip(&ids) {
        // (the servers write a carriage return as it is, so the client reads line ends as
        // an XML parser normalizes them)
        let mended: String = t
            .chars()
            .map(|c| if xml_char(c) { c } else { '\u{fffd}' })
            .collect::<String>()
            .replace("\r\n", "\n")
            .replace('\r', "\n");
        let m = juliet
            .expect(&format!("remote message {id}"), SEC, |e| {
                e.attr("id") == Some(id.as_str()) && e.attr("from") == Some(from.as_str())
            })
            .await;
        assert_eq!(body(&m).as_deref(), Some(mended.as_str()), "{t:?}");
    }

    assert_link_kept(&gw).await;
    juliet.close().await;
    gw.stop().await;
}

/// Attribute-safe text (quotes and markup escaped) for building stanzas by hand.
fn esc(t: &str) -> String {
    t.chars()
        .filter(|c| xml_char(*c))
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '\'' => "&apos;".to_string(),
            '"' => "&quot;".to_string(),
            '\r' => "&#xD;".to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// Payloads a client may put in a stanza, well-formed but wrong in every other way: `{t}`
/// is replaced by hostile text, `{n}` by a hostile number.
const PAYLOADS: &[&str] = &[
    "",
    "<body>{t}</body>",
    "<body/><body xml:lang='{t}'>{t}</body>",
    "<reply xmlns='urn:xmpp:reply:0' to='{t}' id='{t}'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='{n}' end='{n}'/></fallback><body>{t}</body>",
    "<replace xmlns='urn:xmpp:message-correct:0' id='{t}'/><body>{t}</body>",
    "<retract xmlns='urn:xmpp:message-retract:1' id='{t}'/>",
    "<retract xmlns='urn:xmpp:message-retract:1'/>",
    "<reactions xmlns='urn:xmpp:reactions:0' id='{t}'><reaction>{t}</reaction><reaction/></reactions>",
    "<reactions xmlns='urn:xmpp:reactions:0'/>",
    "<composing xmlns='http://jabber.org/protocol/chatstates'/><paused xmlns='http://jabber.org/protocol/chatstates'/>",
    "<displayed xmlns='urn:xmpp:chat-markers:0' id='{t}'/>",
    "<x xmlns='jabber:x:oob'><url>{t}</url></x><body>{t}</body>",
    "<x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='{n}' seconds='{n}' since='{t}'/><password>{t}</password></x>",
    "<x xmlns='http://jabber.org/protocol/muc#user'><invite to='{t}'><reason>{t}</reason></invite></x>",
    "<subject>{t}</subject>",
    "<query xmlns='http://jabber.org/protocol/disco#info' node='{t}'/>",
    "<query xmlns='http://jabber.org/protocol/disco#items' node='{t}'><set xmlns='http://jabber.org/protocol/rsm'><max>{n}</max><after>{t}</after></set></query>",
    "<query xmlns='urn:xmpp:mam:2' queryid='{t}'><x xmlns='jabber:x:data' type='submit'><field var='start'><value>{t}</value></field><field var='with'><value>{t}</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>{n}</max><before>{t}</before></set></query>",
    "<query xmlns='http://jabber.org/protocol/muc#admin'><item nick='{t}' role='{t}' affiliation='{t}'/></query>",
    "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='{t}'><value>{t}</value></field></x></query>",
    "<query xmlns='jabber:iq:register'><username>{t}</username><password>{t}</password></query>",
    "<command xmlns='http://jabber.org/protocol/commands' node='{t}' action='{t}' sessionid='{t}'/>",
    "<vCard xmlns='vcard-temp'/>",
    "<ping xmlns='urn:xmpp:ping'/><ping xmlns='urn:xmpp:ping'/>",
    "<query xmlns='jabber:iq:version'/>",
    "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='{t}' max_items='{n}'/></pubsub>",
    // (a plain namespace: the test client's serializer writes namespaces unescaped)
    "<unknown xmlns='urn:example:x'><deep><deeper a='{t}'/></deep></unknown>",
    "<error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>",
    // longer than a parser's token limit (rxml's: 8 KiB)
    "<body a='{long}'>{long}</body>",
    "<{longname} xmlns='urn:example:x' b='c'/>",
    // deep (within ejabberd's 64 KiB stanza limit)
    "<x xmlns='urn:example:deep'>{deep}</x>",
];

const NUMBERS: &[&str] = &["0", "-1", "99999999999999999999", "", "1e3", "7", "x"];
const MESSAGE_TYPES: &[&str] = &["groupchat", "chat", "normal", "headline", "error", "{t}"];
const PRESENCE_TYPES: &[&str] = &["", "unavailable", "subscribe", "probe", "error", "{t}"];
const IQ_TYPES: &[&str] = &["get", "set"];

/// Stanzas of every kind, type, payload and addressee a client can reach the component
/// with: every IQ is answered (result or error, RFC 6120), nothing breaks the link, and the
/// room still works afterwards.
async fn hostile_stanzas(kind: Kind) {
    let (_server, _dir, gw, mut juliet) = joined(kind).await;
    let room = format!("lobby@{DOMAIN}");
    let texts = causeway_api::hostile::texts(64);
    let targets = [
        room.clone(),
        format!("{room}/Bob"),
        format!("{room}/{}", esc(&texts[0])),
        format!("nowhere@{DOMAIN}"),
        format!("bob@{DOMAIN}"),
        DOMAIN.to_string(),
        format!("spaces.{DOMAIN}"),
    ];
    let mut iqs = Vec::new();
    let mut n = 0;
    // (ejabberd answered none of the deep IQs and Causeway saw none: Prosody only)
    let payloads = PAYLOADS
        .iter()
        .filter(|p| kind == Kind::Prosody || !p.contains("{deep}"));
    for (p, payload) in payloads.enumerate() {
        for (k, to) in targets.iter().enumerate() {
            n += 1;
            let t = esc(&texts[n % texts.len()]);
            let fill = |x: &str| {
                x.replace("{t}", &t)
                    .replace("{n}", NUMBERS[n % NUMBERS.len()])
                    .replace("{longname}", &"n".repeat(9000))
                    .replace("{long}", &"é&amp;".repeat(2000))
                    .replace(
                        "{deep}",
                        &format!("{}{}", "<d>".repeat(7000), "</d>".repeat(7000)),
                    )
            };
            let body = fill(payload);
            let id = format!("x{n}");
            // (deep payloads in IQs only: Causeway answers without the payload, where a
            // server's bounce would carry it back to the test client, whose Python parser
            // stops at 1000 levels)
            let kind = if payload.contains("{deep}") {
                2
            } else {
                (p + k) % 3
            };
            let stanza = match kind {
                0 => {
                    let typ = fill(MESSAGE_TYPES[n % MESSAGE_TYPES.len()]);
                    format!("<message xmlns='jabber:client' to='{to}' type='{typ}' id='{id}'>{body}</message>")
                }
                1 => {
                    let typ = fill(PRESENCE_TYPES[n % PRESENCE_TYPES.len()]);
                    let typ = if typ.is_empty() {
                        String::new()
                    } else {
                        format!(" type='{typ}'")
                    };
                    // (never to the room itself under Juliet's nick: that would be a nick change)
                    format!("<presence xmlns='jabber:client' to='{to}'{typ} id='{id}'>{body}</presence>")
                }
                _ => {
                    let typ = IQ_TYPES[n % IQ_TYPES.len()];
                    let iq = format!(
                        "<iq xmlns='jabber:client' to='{to}' type='{typ}' id='{id}'>{body}</iq>"
                    );
                    iqs.push((id.clone(), iq.clone()));
                    iq
                }
            };
            juliet.send_xml(&stanza).await;
            // Read as it comes: the client blocks on a full output pipe, and would then stop
            // taking stanzas to send.
            if n % 8 == 0 {
                juliet.pump(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    // every IQ answered, once, as a result or an error
    let mut answers: Vec<Element> = Vec::new();
    let end = tokio::time::Instant::now() + SEC;
    let mut received = juliet.drain(std::time::Duration::ZERO).await;
    loop {
        answers.extend(received.drain(..).filter(|e| {
            // (not the roster pushes the user's server sends after a subscribe)
            e.name() == "iq" && iqs.iter().any(|(id, _)| e.attr("id") == Some(id.as_str()))
        }));
        if answers.len() >= iqs.len() || tokio::time::Instant::now() >= end {
            break;
        }
        received.extend(juliet.drain(std::time::Duration::from_millis(200)).await);
    }
    let unanswered: Vec<&str> = iqs
        .iter()
        .filter(|(id, _)| !answers.iter().any(|a| a.attr("id") == Some(id.as_str())))
        .map(|(_, iq)| iq.as_str())
        .collect();
    assert!(
        unanswered.is_empty(),
        "unanswered:\n{}",
        unanswered.join("\n")
    );
    for a in &answers {
        let typ = a.attr("type").unwrap_or_default();
        assert!(typ == "result" || typ == "error", "{}", String::from(a));
    }
    assert_eq!(answers.len(), iqs.len(), "each IQ answered once");
    // the room still works (joined again: some of those presences were leaves or nick
    // changes), and the link never dropped
    juliet
        .send_xml(&format!(
            "<presence xmlns='jabber:client' to='{room}/Juliet' type='unavailable'/>"
        ))
        .await;
    juliet.drain(std::time::Duration::from_millis(500)).await;
    juliet.join(&room, "Juliet").await;
    juliet
        .send_xml(&format!(
            "<message xmlns='jabber:client' to='{room}' type='groupchat' id='after'><body>still here</body></message>"
        ))
        .await;
    juliet
        .expect("the reflection after all that", SEC, |e| {
            e.attr("id") == Some("after") && body(e).as_deref() == Some("still here")
        })
        .await;
    let (status, _) = gw.http_get("/health").await;
    assert_eq!(status, 200);
    assert_link_kept(&gw).await;
    assert!(iqs.len() > 50, "{} IQs", iqs.len());
    juliet.close().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_stanzas_on_prosody() {
    hostile_stanzas(Kind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_stanzas_on_ejabberd() {
    hostile_stanzas(Kind::Ejabberd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_on_prosody() {
    hostile_suite(Kind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_on_ejabberd() {
    hostile_suite(Kind::Ejabberd).await;
}
