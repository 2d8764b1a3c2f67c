//! History end to end on Prosody: the room archive (XEP-0313, paged with XEP-0059) and
//! gap-free delivery of what the network produced while Causeway was down.

mod common;
use common::*;
use std::collections::HashSet;
use tokio_xmpp::minidom::Element;

fn rsm(fin: &Element, what: &str) -> Option<String> {
    fin.get_child("set", RSM)
        .and_then(|s| s.get_child(what, RSM))
        .map(|e| e.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_pages_and_gap_free_catch_up() {
    let server = Server::start(Kind::Prosody);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    let gw = Gateway::start(&server, &url).await;
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    let room = format!("random@{DOMAIN}");
    let alice = format!("{room}/Alice");
    juliet.join(&room, "Juliet").await;

    // 250 messages in the archive
    let all: Vec<String> = (0..250).map(|i| format!("archived {i}")).collect();
    for text in &all {
        gw.demo.inject_message("random", "alice", text).await;
    }
    juliet.expect_body(&alice, "archived 249").await;
    juliet.inbox.clear();

    // backwards from the end, 100 at a time, then forwards, 100 at a time
    let mut back: Vec<String> = Vec::new();
    let mut set = "<max>100</max><before/>".to_string();
    for n in 0.. {
        let (bodies, fin) = page(&mut juliet, &room, &format!("b{n}"), &set).await;
        assert_eq!(rsm(&fin, "count").as_deref(), Some("250"));
        let mut chunk = bodies;
        chunk.extend(back);
        back = chunk;
        if fin.attr("complete") == Some("true") {
            break;
        }
        set = format!(
            "<max>100</max><before>{}</before>",
            rsm(&fin, "first").expect("first")
        );
        assert!(n < 5, "paging backwards does not end");
    }
    assert_eq!(back, all, "backwards: each message once, in order");
    let mut fwd: Vec<String> = Vec::new();
    let mut set = "<max>100</max>".to_string();
    for n in 0.. {
        let (bodies, fin) = page(&mut juliet, &room, &format!("f{n}"), &set).await;
        fwd.extend(bodies);
        if fin.attr("complete") == Some("true") {
            break;
        }
        set = format!(
            "<max>100</max><after>{}</after>",
            rsm(&fin, "last").expect("last")
        );
        assert!(n < 5, "paging forwards does not end");
    }
    assert_eq!(fwd, all, "forwards: each message once, in order");
    // an unknown position is an error, not an empty page
    juliet
        .send_xml(&format!("<iq xmlns='jabber:client' type='set' to='{room}' id='bad'><query xmlns='{MAM}'><set xmlns='{RSM}'><after>nope</after></set></query></iq>"))
        .await;
    let e = juliet
        .expect("bad page", SEC, |e| e.attr("id") == Some("bad"))
        .await;
    assert_eq!(error_condition(&e).as_deref(), Some("item-not-found"));

    // Causeway stops; the network goes on; Causeway starts: the still-joined client gets the
    // 100 missed messages in order, each once, before live traffic
    let (net, demo) = (gw.net.clone(), gw.demo.clone());
    gw.stop().await;
    let missed: Vec<String> = (0..100).map(|i| format!("missed {i}")).collect();
    for text in &missed {
        demo.inject_message("random", "alice", text).await;
    }
    juliet.inbox.clear();
    let gw = Gateway::launch(&server, &url, net, demo).await;
    gw.demo.inject_message("random", "bob", "live again").await;
    juliet
        .expect("the live message", SEC, |e| {
            body(e).as_deref() == Some("live again")
        })
        .await;
    let got: Vec<String> = juliet
        .inbox
        .iter()
        .filter(|e| e.attr("from") == Some(alice.as_str()))
        .filter_map(body)
        .collect();
    assert_eq!(
        got, missed,
        "catch-up: every missed message once, in order, before live traffic"
    );
    let unique: HashSet<_> = juliet.inbox.iter().filter_map(stanza_id).collect();
    assert_eq!(
        unique.len(),
        juliet.inbox.iter().filter_map(stanza_id).count()
    );

    // the archive holds them too
    let (bodies, _) = page(&mut juliet, &room, "last", "<max>101</max><before/>").await;
    assert_eq!(bodies.len(), 101);
    assert_eq!(bodies[..100], missed[..]);
    assert_eq!(bodies[100], "live again");

    juliet.close().await;
    gw.stop().await;
}

/// A room used for the first time is backfilled from the network's history: its archive
/// holds what was said before Causeway ever saw it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_use_backfills_the_archive() {
    let server = Server::start(Kind::Prosody);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    let (net, demo) = causeway_demo::DemoNetwork::new(causeway_demo::DemoConfig {
        rooms: vec!["lobby".into(), "tea room".into()],
        ..causeway_demo::DemoConfig::default()
    });
    // said on the network before Causeway ran
    for i in 0..30 {
        demo.inject_message("tea room", "alice", &format!("old {i}"))
            .await;
    }
    let gw = Gateway::launch(&server, &url, net, demo).await;
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    let room = format!("tea\\20room@{DOMAIN}");
    // (an archive answers those in the room)
    juliet.join(&room, "Juliet").await;
    let (bodies, fin) = page(&mut juliet, &room, "bf", "<max>100</max>").await;
    let want: Vec<String> = (0..30).map(|i| format!("old {i}")).collect();
    assert_eq!(bodies, want);
    assert_eq!(fin.attr("complete"), Some("true"));
    juliet.close().await;
    gw.stop().await;
}
