//! The egress policy end to end (issue 16): an XMPP user's XEP-0066 link is fetched for
//! upload to Discord only when it points to the public internet or to a host the operator
//! allowed. Links to loopback (by address, by name, as IPv4 inside IPv6, through a redirect
//! from an allowed host) are never requested: the text goes through with the link, and the
//! sender is told why the file was not uploaded.

mod common;
use common::*;
use std::sync::atomic::Ordering;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_to_internal_addresses_are_never_fetched() {
    let server = Server::start(Kind::Prosody);
    let mut g = LinkedGuild::start(&server, |_, _| {}).await;
    let (fake, general, room) = (&g.fake, &g.general, &g.room);
    let juliet = &mut g.juliet;

    let (internal, hits) = internal_service().await;
    let port = internal
        .rsplit_once(':')
        .map(|(_, p)| p)
        .unwrap_or_default();
    let bounce = file_redirect("/pic.png", &format!("http://{internal}/pic.png"));
    let links = [
        format!("http://{internal}/pic.png"),
        format!("http://localhost:{port}/pic.png"),
        format!("http://[::ffff:127.0.0.1]:{port}/pic.png"),
        format!("http://127.1:{port}/pic.png"),
        format!("http://{bounce}"),
        "file:///etc/passwd".to_string(),
    ];
    for (i, url) in links.iter().enumerate() {
        let id = format!("l{i}");
        juliet
            .send_xml(&format!(
                "<message xmlns='jabber:client' type='groupchat' to='{room}' id='{id}'><body>{url}</body><x xmlns='jabber:x:oob'><url>{url}</url></x></message>"
            ))
            .await;
        let reflected = juliet
            .expect(&format!("{url} reflected"), SEC, |e| {
                e.attr("id") == Some(id.as_str())
            })
            .await;
        assert_eq!(reflected.attr("type"), Some("groupchat"), "{url}: sent");
        let notice = juliet
            .expect(&format!("why {url} was not uploaded"), SEC, |e| {
                e.attr("from") == Some(room.as_str())
                    && body(e).is_some_and(|b| b.contains("not uploaded"))
            })
            .await;
        let told = body(&notice).unwrap_or_default();
        assert!(
            !told.contains(&internal),
            "the notice names no address: {told}"
        );
        let post = until(&format!("{url} on Discord"), || {
            fake.messages(general).into_iter().find(|m| {
                m["content"]
                    .as_str()
                    .is_some_and(|c| c.contains(url.as_str()))
            })
        })
        .await;
        assert!(
            post["attachments"].as_array().is_none_or(|a| a.is_empty()),
            "{url}: linked, not uploaded: {post}"
        );
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the internal service was reached"
    );

    // a file on a host the operator allowed is uploaded as before
    let files = file_server(vec![("/ok.png", "image/png", vec![137, 80, 78, 71], false)]).await;
    let url = format!("http://{files}/ok.png");
    juliet
        .send_xml(&format!(
            "<message xmlns='jabber:client' type='groupchat' to='{room}' id='ok'><body>{url}</body><x xmlns='jabber:x:oob'><url>{url}</url></x></message>"
        ))
        .await;
    let uploaded = until("the allowed file uploaded", || {
        fake.messages(general)
            .into_iter()
            .find(|m| m["attachments"].as_array().is_some_and(|a| !a.is_empty()))
    })
    .await;
    assert_eq!(uploaded["attachments"][0]["filename"], "ok.png");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    g.stop().await;
}
