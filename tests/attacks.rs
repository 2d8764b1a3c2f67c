//! One test per way a single user could break Causeway (issue 16), each through a real
//! server and a real XMPP client, on Prosody and ejabberd, with one and with several
//! worker threads: the process keeps running, the link never drops, the room keeps working.

mod common;
use common::*;

/// A body of `n` quote markers: XEP-0393 reads one quote level per `>` (this overflowed
/// the stack at 20,000 with one thread, 5,000 with four).
fn quote_bomb(n: usize) -> String {
    ">".repeat(n) + " hi"
}

/// The component link never dropped (no reconnect counted).
async fn assert_link_kept(gw: &Gateway) {
    let (_, metrics) = gw.http_get("/metrics").await;
    assert!(
        !metrics.contains("causeway_reconnects_total{domain=\"demo.localhost\"} "),
        "{metrics}"
    );
}

/// The room still carries a message both ways.
async fn room_works(gw: &Gateway, juliet: &mut XmppClient, room: &str, tag: &str) {
    let id = format!("after-{tag}");
    juliet
        .send_xml(&format!(
            "<message xmlns='jabber:client' to='{room}' type='groupchat' id='{id}'><body>still here</body></message>"
        ))
        .await;
    juliet
        .expect(&format!("the reflection after {tag}"), SEC, |e| {
            e.attr("id") == Some(id.as_str()) && body(e).as_deref() == Some("still here")
        })
        .await;
    gw.demo.inject_message("lobby", "bob", "and back").await;
    juliet.expect_body(&format!("{room}/Bob"), "and back").await;
}

async fn joined(kind: Kind) -> (Server, tempfile::TempDir, Gateway, XmppClient) {
    let server = Server::start(kind);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    // bodies as long as the server takes them
    let gw = Gateway::start_with(&server, &url, |c| c.xmpp.max_body_bytes = 200_000).await;
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    juliet.join(&format!("lobby@{DOMAIN}"), "Juliet").await;
    (server, dir, gw, juliet)
}

/// 60,000 `>` from an XMPP occupant and from a remote user: delivered, nothing crashes.
async fn quote_bomb_both_ways(kind: Kind) {
    let (_server, _dir, gw, mut juliet) = joined(kind).await;
    let room = format!("lobby@{DOMAIN}");
    let bomb = quote_bomb(60_000);
    // (written by hand: '>' needs no escape in XML text, and the client sends it as it is)
    let send = |id: &str, body: &str| {
        format!("<message xmlns='jabber:client' to='{room}' type='groupchat' id='{id}'><body>{body}</body></message>")
    };
    // longer than the demo network takes: parsed, then refused with an error to the sender
    juliet.send_xml(&send("bomb", &bomb)).await;
    let answer = juliet
        .expect("the answer to the bomb", SEC, |e| {
            e.attr("id") == Some("bomb")
        })
        .await;
    assert_eq!(
        answer.attr("type"),
        Some("error"),
        "the demo takes 4000 characters"
    );
    // within what the network takes: reflected and sent
    let small = quote_bomb(3_990);
    juliet.send_xml(&send("small-bomb", &small)).await;
    let reflected = juliet
        .expect("the small bomb reflected", SEC, |e| {
            e.attr("id") == Some("small-bomb")
        })
        .await;
    assert_eq!(body(&reflected).as_deref(), Some(small.as_str()));
    let sent = until("the small bomb at the network", || {
        gw.demo
            .sent()
            .into_iter()
            .find(|m| m.content.text.ends_with(" hi"))
    })
    .await;
    assert!(
        sent.content.text.starts_with(">>>"),
        "the text went through"
    );

    let id = gw.demo.inject_message("lobby", "bob", &bomb).await;
    let m = juliet
        .expect("the remote bomb", SEC, |e| {
            e.attr("id") == Some(id.as_str())
        })
        .await;
    assert!(body(&m).is_some_and(|b| b.ends_with(" hi")));

    room_works(&gw, &mut juliet, &room, "the quote bomb").await;
    assert_link_kept(&gw).await;
    juliet.close().await;
    gw.stop().await;
}

/// Two namespace declarations (and two values) equal in their first 4 KiB: cut to the
/// same text by the read guard, they made `a:x` and `b:x` one attribute twice, and the
/// parser ended the stream for every user of the domain.
async fn colliding_attributes(kind: Kind) {
    let (_server, _dir, gw, mut juliet) = joined(kind).await;
    let room = format!("lobby@{DOMAIN}");
    let prefix = format!("urn:example:{}", "u".repeat(5000));
    for round in 0..3 {
        juliet
            .send_xml(&format!(
                "<message xmlns='jabber:client' to='{room}' type='groupchat' id='c{round}'><body>collide {round}</body><p xmlns='urn:example:p' xmlns:a='{prefix}1' xmlns:b='{prefix}2' a:x='1' b:x='2' v='{prefix}1' w='{prefix}2'/></message>"
            ))
            .await;
        let id = format!("c{round}");
        juliet
            .expect("the message reflected", SEC, |e| {
                e.attr("id") == Some(id.as_str())
            })
            .await;
    }
    room_works(&gw, &mut juliet, &room, "the collisions").await;
    assert_link_kept(&gw).await;
    juliet.close().await;
    gw.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn quote_bomb_on_prosody_one_thread() {
    quote_bomb_both_ways(Kind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quote_bomb_on_ejabberd_four_threads() {
    quote_bomb_both_ways(Kind::Ejabberd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quote_bomb_on_prosody_four_threads() {
    quote_bomb_both_ways(Kind::Prosody).await;
}

#[tokio::test(flavor = "current_thread")]
async fn quote_bomb_on_ejabberd_one_thread() {
    quote_bomb_both_ways(Kind::Ejabberd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_attributes_on_prosody() {
    colliding_attributes(Kind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colliding_attributes_on_ejabberd() {
    colliding_attributes(Kind::Ejabberd).await;
}

/// A registration hanging on a network that does not answer holds nobody else up: another
/// user's room traffic flows both ways meanwhile, and the registration completes when the
/// network answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_network_call_stalls_nobody_else() {
    let (server, _dir, gw, mut juliet) = joined(Kind::Prosody).await;
    let room = format!("lobby@{DOMAIN}");
    let mut romeo = XmppClient::connect(&server, "romeo", "garden").await;
    let held = gw.demo.hold_logins().await;
    romeo
        .send_xml(&format!(
            "<iq xmlns='jabber:client' type='set' to='{DOMAIN}' id='reg'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='username'><value>romeo</value></field><field var='password'><value>s3cret</value></field></x></query></iq>"
        ))
        .await;
    // (the registration is under way, its login hanging)
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for i in 0..5 {
        room_works(&gw, &mut juliet, &room, &format!("round {i}")).await;
    }
    drop(held);
    let done = romeo
        .expect("the registration's answer", SEC, |e| {
            e.attr("id") == Some("reg")
        })
        .await;
    assert_eq!(done.attr("type"), Some("result"), "{}", String::from(&done));
    romeo.close().await;
    juliet.close().await;
    gw.stop().await;
}
