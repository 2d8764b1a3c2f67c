//! A burst over many rooms at once, more than the portals' shared backlog holds: the router
//! waits (counted in /metrics) instead of queueing without bound, and nothing is lost or
//! reordered: a client in two of the rooms gets every message of each, in order, and every
//! room's archive holds all its messages in order, rooms that came up during the burst too.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

const ROOMS: usize = 32;
const PER_ROOM: usize = 200;
const BACKLOG: usize = 64;

fn counter(metrics: &str, line_start: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_many_rooms_waits_for_the_backlog_and_loses_nothing() {
    let server = Server::start(Kind::Prosody);
    let dbdir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dbdir.path().display());
    let (net, demo) = causeway_demo::DemoNetwork::new(causeway_demo::DemoConfig::default());
    // a small backlog, so that this burst is sure to outgrow it
    let gw = Gateway::launch_with(&server, &url, net, demo, |c| {
        c.bridge.portal_queue = 16;
        c.bridge.backlog = BACKLOG;
    })
    .await;
    let rooms: Vec<String> = (0..ROOMS).map(|i| format!("burst{i}")).collect();
    for r in &rooms {
        gw.demo.add_room(r, r);
    }
    let watched = [&rooms[0], &rooms[ROOMS - 1]];
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    for r in watched {
        juliet.join(&format!("{r}@{DOMAIN}"), "Juliet").await;
    }

    // every room at once, round by round, as fast as the network hands them over
    for i in 0..PER_ROOM {
        for r in &rooms {
            gw.demo
                .inject_message(r, "alice", &format!("{r} {i}"))
                .await;
        }
    }

    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(120);
    while got.values().map(Vec::len).sum::<usize>() < watched.len() * PER_ROOM {
        assert!(
            tokio::time::Instant::now() < end,
            "messages so far: {:?}",
            got.iter().map(|(r, v)| (r, v.len())).collect::<Vec<_>>()
        );
        for el in juliet.drain(Duration::from_millis(200)).await {
            if let (Some(text), Some("groupchat")) = (body(&el), el.attr("type")) {
                let room = el.attr("from").and_then(|f| f.split('@').next());
                got.entry(room.unwrap_or("?").to_string())
                    .or_default()
                    .push(text);
            }
        }
    }
    for r in watched {
        let want: Vec<String> = (0..PER_ROOM).map(|i| format!("{r} {i}")).collect();
        assert_eq!(
            got.get(r.as_str()),
            Some(&want),
            "room {r}: all, once, in order"
        );
    }

    // every room's archive: all its messages, once, in order (rooms nobody was in too;
    // an archive answers its occupants only, so Juliet joins them now)
    let end = tokio::time::Instant::now() + Duration::from_secs(90);
    for (n, r) in rooms.iter().enumerate() {
        let want: Vec<String> = (0..PER_ROOM).map(|i| format!("{r} {i}")).collect();
        if !watched.contains(&r) {
            juliet.join(&format!("{r}@{DOMAIN}"), "Juliet").await;
        }
        loop {
            let room = format!("{r}@{DOMAIN}");
            let (bodies, _) = page(&mut juliet, &room, &format!("q{n}"), "<max>250</max>").await;
            if bodies.len() >= PER_ROOM || tokio::time::Instant::now() > end {
                assert_eq!(bodies, want, "archive of {r}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        counter(&metrics, "causeway_backlog_waits_total{network=\"demo\"}") > 0,
        "the burst outgrew the backlog, and the router waited:\n{metrics}"
    );
    juliet.close().await;
    gw.stop().await;
}
