//! End to end, against real servers: a real XMPP client discovers the gateway, joins a demo
//! room, talks through it, and hits its error paths. The same suite runs on Prosody and ejabberd.

mod common;
use common::*;

const MUC_USER: &str = "http://jabber.org/protocol/muc#user";

async fn core_suite(kind: Kind) {
    let server = Server::start(kind);
    let dbdir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dbdir.path().display());
    let gw = Gateway::start(&server, &url).await;
    // a new account, registered in band, as a person would
    let mut juliet = XmppClient::register(&server, "capulet", "balcony").await;

    // discovery: the gateway's identities and features, then its rooms
    juliet.send_xml(&format!("<iq xmlns='jabber:client' type='get' id='d1' to='{DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")).await;
    let info = juliet
        .expect("disco#info", SEC, |e| e.attr("id") == Some("d1"))
        .await;
    let xml = String::from(&info);
    for needle in [
        "category='gateway'",
        "type='demo'",
        "category='conference'",
        "jid\\20escaping",
        "urn:xmpp:occupant-id:0",
    ] {
        assert!(xml.contains(needle), "disco#info lacks {needle}: {xml}");
    }
    juliet.send_xml(&format!("<iq xmlns='jabber:client' type='get' id='d2' to='{DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#items'><set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set></query></iq>")).await;
    let page = String::from(
        &juliet
            .expect("disco#items page 1", SEC, |e| e.attr("id") == Some("d2"))
            .await,
    );
    assert!(
        page.contains(&format!("lobby@{DOMAIN}")) && !page.contains("random@"),
        "first page: {page}"
    );
    assert!(page.contains("<count>3</count>"), "count: {page}");
    juliet.send_xml(&format!("<iq xmlns='jabber:client' type='get' id='d3' to='{DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#items'><set xmlns='http://jabber.org/protocol/rsm'><max>1</max><after>lobby</after></set></query></iq>")).await;
    let page2 = String::from(
        &juliet
            .expect("disco#items page 2", SEC, |e| e.attr("id") == Some("d3"))
            .await,
    );
    assert!(
        page2.contains(&format!("random@{DOMAIN}")),
        "second page: {page2}"
    );

    // a remote message before anyone joined, to come back as history
    let early = gw
        .demo
        .inject_message("lobby", "alice", "before you came")
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // join: other occupants first, then self-presence (110, with the join's id), history, subject
    let room = format!("lobby@{DOMAIN}");
    juliet.send_xml(&format!("<presence xmlns='jabber:client' id='join1' to='{room}/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
    let own = juliet
        .expect("self-presence", SEC, |e| {
            e.name() == "presence" && statuses(e).contains(&"110".to_string())
        })
        .await;
    assert_eq!(own.attr("id"), Some("join1"));
    assert!(
        statuses(&own).contains(&"100".to_string()) && statuses(&own).contains(&"170".to_string())
    );
    assert!(own
        .get_child("occupant-id", "urn:xmpp:occupant-id:0")
        .is_some());
    let before: Vec<String> = juliet
        .inbox
        .iter()
        .filter(|e| e.name() == "presence")
        .filter_map(|e| e.attr("from").map(String::from))
        .collect();
    for nick in ["Alice", "Bob", "Demo Bot"] {
        assert!(
            before.contains(&format!("{room}/{nick}")),
            "{nick} not announced before self-presence: {before:?}"
        );
    }
    let hist = juliet
        .expect("history", SEC, |e| {
            body(e).as_deref() == Some("before you came")
        })
        .await;
    assert!(
        hist.get_child("delay", "urn:xmpp:delay").is_some(),
        "history without delay"
    );
    assert_eq!(
        hist.get_child("stanza-id", "urn:xmpp:sid:0")
            .and_then(|s| s.attr("id")),
        Some(early.as_str())
    );
    juliet
        .expect("subject", SEC, |e| {
            e.get_child("subject", "jabber:client").is_some()
        })
        .await;

    // send: reflected with our id, a stanza-id and an occupant-id; then the bot answers
    juliet.send_xml(&format!("<message xmlns='jabber:client' type='groupchat' id='m1' to='{room}'><body>hello</body></message>")).await;
    let echo = juliet
        .expect("reflection", SEC, |e| {
            e.attr("id") == Some("m1") && body(e).is_some()
        })
        .await;
    assert_eq!(echo.attr("from"), Some(format!("{room}/Juliet").as_str()));
    let sid = echo
        .get_child("stanza-id", "urn:xmpp:sid:0")
        .expect("stanza-id");
    assert_eq!(sid.attr("by"), Some(room.as_str()));
    assert!(echo
        .get_child("occupant-id", "urn:xmpp:occupant-id:0")
        .is_some());
    let answer = juliet
        .expect("bot answer", SEC, |e| {
            body(e).is_some_and(|b| b.ends_with("\n> hello\necho: hello"))
        })
        .await;
    assert_eq!(
        answer.attr("from"),
        Some(format!("{room}/Demo Bot").as_str())
    );
    let sent = gw.demo.sent();
    assert_eq!(
        sent.last().map(|m| (
            m.content.text.as_str(),
            m.persona.as_ref().map(|p| p.nick.as_str())
        )),
        Some(("hello", Some("Juliet")))
    );

    // a second user: nick conflict, then a free nick; both see each other
    let mut romeo = XmppClient::connect(&server, "romeo", "street").await;
    romeo
        .send_xml(&format!(
            "<presence xmlns='jabber:client' id='j2' to='{room}/juliet'/>"
        ))
        .await;
    let conflict = romeo
        .expect("nick conflict", SEC, |e| e.attr("id") == Some("j2"))
        .await;
    assert_eq!(error_condition(&conflict).as_deref(), Some("conflict"));
    romeo.send_xml(&format!("<presence xmlns='jabber:client' id='j3' to='{room}/Romeo'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>")).await;
    romeo
        .expect("romeo self-presence", SEC, |e| e.attr("id") == Some("j3"))
        .await;
    assert!(
        !romeo
            .drain(std::time::Duration::from_millis(500))
            .await
            .iter()
            .any(|e| body(e).is_some()),
        "history sent despite maxstanzas=0"
    );
    juliet
        .expect("romeo joined", SEC, |e| {
            e.attr("from") == Some(format!("{room}/Romeo").as_str())
        })
        .await;

    // a remote message reaches every occupant
    let rid = gw
        .demo
        .inject_message("lobby", "bob", "from the remote side")
        .await;
    for c in [&mut juliet, &mut romeo] {
        let m = c
            .expect("remote message", SEC, |e| {
                body(e).as_deref() == Some("from the remote side")
            })
            .await;
        assert_eq!(m.attr("id"), Some(rid.as_str()));
        assert_eq!(m.attr("from"), Some(format!("{room}/Bob").as_str()));
        assert!(m
            .get_child("occupant-id", "urn:xmpp:occupant-id:0")
            .is_some());
    }

    // text XML cannot carry (control characters, U+FFFE/U+FFFF) from the network, in a
    // message and in a display name: each becomes U+FFFD, the link stays up, nothing is lost
    gw.demo.add_user("carol", "Ca\u{1}rol\u{b}");
    gw.demo
        .inject_message("lobby", "carol", "x\u{1}y\u{FFFE}z\u{8}")
        .await;
    for c in [&mut juliet, &mut romeo] {
        let m = c
            .expect("sanitized message", SEC, |e| {
                body(e).as_deref() == Some("x\u{FFFD}y\u{FFFD}z\u{FFFD}")
            })
            .await;
        let from = m.attr("from").unwrap_or_default().to_string();
        assert!(from.starts_with(&format!("{room}/Ca")), "{from}");
        assert!(!from.chars().any(|c| c.is_control()), "{from:?}");
    }

    // nick change: 303 then the new presence
    romeo
        .send_xml(&format!(
            "<presence xmlns='jabber:client' to='{room}/Montague'/>"
        ))
        .await;
    let gone = juliet
        .expect("nick change", SEC, |e| {
            statuses(e).contains(&"303".to_string())
        })
        .await;
    assert_eq!(
        gone.get_child("x", MUC_USER)
            .and_then(|x| x.get_child("item", MUC_USER))
            .and_then(|i| i.attr("nick")),
        Some("Montague")
    );

    // XEP-0410 self-ping: joined answers result, a stranger gets not-acceptable
    juliet.send_xml(&format!("<iq xmlns='jabber:client' type='get' id='p1' to='{room}/Juliet'><ping xmlns='urn:xmpp:ping'/></iq>")).await;
    assert_eq!(
        juliet
            .expect("self-ping", SEC, |e| e.attr("id") == Some("p1"))
            .await
            .attr("type"),
        Some("result")
    );
    let mut nurse = XmppClient::connect(&server, "nurse", "x").await;
    nurse.send_xml(&format!("<iq xmlns='jabber:client' type='get' id='p2' to='{room}/Juliet'><ping xmlns='urn:xmpp:ping'/></iq>")).await;
    assert_eq!(
        error_condition(
            &nurse
                .expect("stranger ping", SEC, |e| e.attr("id") == Some("p2"))
                .await
        )
        .as_deref(),
        Some("not-acceptable")
    );

    // room disco#info with the roominfo form
    nurse.send_xml(&format!("<iq xmlns='jabber:client' type='get' id='ri' to='{room}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")).await;
    let ri = String::from(
        &nurse
            .expect("room info", SEC, |e| e.attr("id") == Some("ri"))
            .await,
    );
    for needle in [
        "muc#roominfo",
        "muc_nonanonymous",
        "muc#stable_id",
        "muc#roominfo_occupants",
    ] {
        assert!(ri.contains(needle), "room info lacks {needle}: {ri}");
    }

    // error paths: every bad input gets a stanza error, nothing panics
    let cases = [
        (format!("<message xmlns='jabber:client' type='groupchat' id='e1' to='nosuchroom@{DOMAIN}'><body>x</body></message>"), "item-not-found"),
        (format!("<message xmlns='jabber:client' type='groupchat' id='e2' to='{room}'><body>not joined</body></message>"), "not-acceptable"),
        (format!("<iq xmlns='jabber:client' type='get' id='e3' to='{DOMAIN}'><query xmlns='urn:example:unknown'/></iq>"), "feature-not-implemented"),
        (format!("<message xmlns='jabber:client' type='chat' id='e4' to='{room}/Juliet'><body>pm</body></message>"), "not-acceptable"),
        (format!("<message xmlns='jabber:client' type='groupchat' id='e5' to='{room}'><body>{}</body></message>", "x".repeat(5000)), "not-acceptable"),
        // an iq get without a child does not even parse: answered, not dropped
        (format!("<iq xmlns='jabber:client' type='get' id='e6' to='{DOMAIN}'/>"), "bad-request"),
        // a presence to a room that does not exist
        (format!("<presence xmlns='jabber:client' id='e7' to='nosuchroom@{DOMAIN}/me'/>"), "item-not-found"),
    ];
    for (xml, _) in &cases {
        nurse.send_xml(xml).await;
    }
    for (i, (_, want)) in cases.iter().enumerate() {
        let id = format!("e{}", i + 1);
        let e = nurse
            .expect(&id, SEC, |e| e.attr("id") == Some(id.as_str()))
            .await;
        assert_eq!(
            error_condition(&e).as_deref(),
            Some(*want),
            "{id}: {}",
            String::from(&e)
        );
    }

    // a refusal by the network becomes an error to the sender, nothing is reflected
    gw.demo
        .fail_next_send(causeway_api::NetworkError::Forbidden("slow mode".into()));
    juliet.send_xml(&format!("<message xmlns='jabber:client' type='groupchat' id='f1' to='{room}'><body>refused</body></message>")).await;
    let f = juliet
        .expect("refusal", SEC, |e| e.attr("id") == Some("f1"))
        .await;
    assert_eq!(f.attr("type"), Some("error"));
    assert_eq!(error_condition(&f).as_deref(), Some("forbidden"));

    // 1:1 with a puppet reaches the network and the answer comes back from the puppet's JID
    juliet.send_xml(&format!("<message xmlns='jabber:client' type='chat' id='dm1' to='alice@{DOMAIN}'><body>psst</body></message>")).await;
    let dm = juliet
        .expect("dm answer", SEC, |e| {
            body(e).is_some_and(|b| b.ends_with("echo: psst"))
        })
        .await;
    assert_eq!(
        dm.attr("from")
            .map(|f| f.split('/').next().unwrap_or_default().to_string()),
        Some(format!("alice@{DOMAIN}"))
    );

    // leave: self-unavailable with 110
    juliet
        .send_xml(&format!(
            "<presence xmlns='jabber:client' type='unavailable' to='{room}/Juliet'/>"
        ))
        .await;
    let left = juliet
        .expect("leave", SEC, |e| {
            e.attr("type") == Some("unavailable") && statuses(e).contains(&"110".to_string())
        })
        .await;
    assert_eq!(left.attr("from"), Some(format!("{room}/Juliet").as_str()));

    // a room whose id has a space: its JID is the XEP-0106 escape a client builds itself
    let tea = format!("tea\\20room@{DOMAIN}");
    juliet
        .send_xml(&format!(
            "<presence xmlns='jabber:client' id='t1' to='{tea}/Juliet'/>"
        ))
        .await;
    let own = juliet
        .expect("tea room self-presence", SEC, |e| {
            e.attr("id") == Some("t1")
        })
        .await;
    assert_eq!(
        own.attr("from"),
        Some(format!("{tea}/Juliet").as_str()),
        "{}",
        String::from(&own)
    );
    assert!(statuses(&own).contains(&"110".to_string()));

    // metrics counted the traffic
    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "causeway_messages_bridged_total{network=\"demo\",direction=\"to_xmpp\"}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "causeway_messages_bridged_total{network=\"demo\",direction=\"to_remote\"}"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("causeway_stream_connected{domain=\"demo.localhost\"} 1"),
        "{metrics}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_on_prosody() {
    core_suite(Kind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn core_on_ejabberd() {
    core_suite(Kind::Ejabberd).await;
}
