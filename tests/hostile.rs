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

async fn hostile_suite(kind: Kind) {
    let server = Server::start(kind);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    let gw = Gateway::start(&server, &url).await;
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    let room = format!("lobby@{DOMAIN}");
    juliet.join(&room, "Juliet").await;
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

    // the link never dropped
    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        !metrics.contains("causeway_reconnects_total{domain=\"demo.localhost\"}")
            || metrics.contains("causeway_reconnects_total{domain=\"demo.localhost\"} 0"),
        "{metrics}"
    );
    juliet.close().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_on_prosody() {
    hostile_suite(Kind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_text_on_ejabberd() {
    hostile_suite(Kind::Ejabberd).await;
}
