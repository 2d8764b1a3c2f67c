//! Prosody is SIGKILLed while the demo network posts 200 messages into a joined room; after
//! it restarts, Causeway reconnects by itself and the rejoined client gets every message
//! Causeway accepted, each exactly once; the outbox drains.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

const N: usize = 200;

fn outbox_depth(metrics: &str) -> Option<i64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("causeway_outbox_depth "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_crash_mid_stream_loses_nothing() {
    let server = Server::start(Kind::Prosody);
    let dbdir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dbdir.path().display());
    let gw = Gateway::start(&server, &url).await;
    let room = format!("lobby@{DOMAIN}");

    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    juliet
        .send_xml(&format!(
            "<presence xmlns='jabber:client' id='j1' to='{room}/Juliet'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
        ))
        .await;
    juliet
        .expect("joined", SEC, |e| e.attr("id") == Some("j1"))
        .await;

    // The remote side keeps posting, whatever happens to the XMPP server.
    let demo = gw.demo.clone();
    let injector = tokio::spawn(async move {
        let mut ids = Vec::new();
        for i in 0..N {
            ids.push(
                demo.inject_message("lobby", "alice", &format!("crash {i}"))
                    .await,
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        ids
    });
    // Let part of the stream through, then crash the server.
    let first = juliet
        .expect("first messages", SEC, |e| {
            body(e).as_deref() == Some("crash 20")
        })
        .await;
    assert_eq!(first.attr("type"), Some("groupchat"));
    server.kill();
    gw.wait_healthy(false, Duration::from_secs(15)).await;
    let ids = injector.await.expect("injector");
    drop(juliet);

    server.launch();
    gw.wait_healthy(true, Duration::from_secs(30)).await;

    // Rejoin from a new session: history, then live traffic.
    let mut again = XmppClient::connect(&server, "juliet", "again").await;
    again
        .send_xml(&format!(
            "<presence xmlns='jabber:client' id='j2' to='{room}/Juliet'/>"
        ))
        .await;
    again
        .expect("rejoined", SEC, |e| e.attr("id") == Some("j2"))
        .await;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    while seen.len() < N && tokio::time::Instant::now() < end {
        let m = again
            .expect("crash messages", SEC, |e| {
                body(e).is_some_and(|b| b.starts_with("crash "))
            })
            .await;
        let id = m.attr("id").unwrap_or_default().to_string();
        *seen.entry(id).or_default() += 1;
    }
    // Anything that would arrive twice comes right after; give it a moment.
    for m in again.drain(Duration::from_secs(1)).await {
        if body(&m).is_some_and(|b| b.starts_with("crash ")) {
            *seen
                .entry(m.attr("id").unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    let missing: Vec<&str> = ids
        .iter()
        .map(|i| i.as_str())
        .filter(|i| !seen.contains_key(*i))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {N} messages lost: {missing:?}",
        missing.len()
    );
    let doubled: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(doubled.is_empty(), "delivered more than once: {doubled:?}");
    assert_eq!(seen.len(), N);

    // Every stanza the server took was acknowledged: the outbox drains.
    let end = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, metrics) = gw.http_get("/metrics").await;
        let depth = outbox_depth(&metrics);
        if depth == Some(0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "outbox did not drain: {depth:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    gw.stop().await;
}
