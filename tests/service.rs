//! The gateway's own services end to end on Prosody with real clients: registration
//! (XEP-0077 and the ad-hoc flow), address translation (XEP-0100), commands with admin
//! gating (XEP-0050), gateway and puppet presence, and spaces (XEP-0503 over XEP-0060).

mod common;
use common::*;
use tokio_xmpp::minidom::Element;

const REGISTER: &str = "jabber:iq:register";
const COMMANDS: &str = "http://jabber.org/protocol/commands";
const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
const EVENT: &str = "http://jabber.org/protocol/pubsub#event";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";

fn submit(fields: &[(&str, &str)]) -> String {
    let f: String = fields
        .iter()
        .map(|(k, v)| format!("<field var='{k}'><value>{v}</value></field>"))
        .collect();
    format!("<x xmlns='jabber:x:data' type='submit'>{f}</x>")
}

fn note(e: &Element) -> String {
    e.get_child("command", COMMANDS)
        .and_then(|c| c.get_child("note", COMMANDS))
        .map(|n| n.text())
        .unwrap_or_default()
}

fn status(e: &Element) -> Option<String> {
    e.get_child("command", COMMANDS)
        .and_then(|c| c.attr("status"))
        .map(String::from)
}

async fn command(c: &mut XmppClient, id: &str, node: &str, form: Option<&str>) -> Element {
    let body = match form {
        Some(f) => format!("<command xmlns='{COMMANDS}' node='{node}' action='complete' sessionid='s-{id}'>{f}</command>"),
        None => format!("<command xmlns='{COMMANDS}' node='{node}' action='execute'/>"),
    };
    iq(c, id, "set", DOMAIN, &body).await
}

/// The items of the community node on the server's pubsub service (the mirror), asked
/// until `done` holds or 5 s passed (the mirror is updated asynchronously).
async fn mirror_items(c: &mut XmppClient, prefix: &str, done: impl Fn(&str) -> bool) -> String {
    let mut xml = String::new();
    for n in 0..50 {
        let q = format!("<pubsub xmlns='{PUBSUB}'><items node='community'/></pubsub>");
        xml = String::from(&iq(c, &format!("{prefix}{n}"), "get", MIRROR, &q).await);
        if done(&xml) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    xml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_on_prosody() {
    services(Kind::Prosody).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_on_ejabberd() {
    services(Kind::Ejabberd).await;
}

async fn services(kind: Kind) {
    let server = Server::start(kind);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    let gw = Gateway::start(&server, &url).await;
    let spaces = format!("spaces.{DOMAIN}");
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    let mut admin = XmppClient::register(&server, "admin", "desk").await;

    // --- XEP-0077: the network's login flow as a form; bad credentials refused ---
    let form = iq(
        &mut juliet,
        "r1",
        "get",
        DOMAIN,
        &format!("<query xmlns='{REGISTER}'/>"),
    )
    .await;
    let xml = String::from(&form);
    assert!(
        xml.contains("var='username'") && xml.contains("type='text-private'"),
        "{xml}"
    );
    assert!(!xml.contains("<registered"), "{xml}");
    let bad = iq(
        &mut juliet,
        "r2",
        "set",
        DOMAIN,
        &format!(
            "<query xmlns='{REGISTER}'>{}</query>",
            submit(&[("username", "jules"), ("password", "wrong")])
        ),
    )
    .await;
    assert_eq!(error_condition(&bad).as_deref(), Some("not-authorized"));
    let missing = iq(
        &mut juliet,
        "r3",
        "set",
        DOMAIN,
        &format!(
            "<query xmlns='{REGISTER}'>{}</query>",
            submit(&[("username", "jules")])
        ),
    )
    .await;
    assert_eq!(error_condition(&missing).as_deref(), Some("not-acceptable"));
    let ok = iq(
        &mut juliet,
        "r4",
        "set",
        DOMAIN,
        &format!(
            "<query xmlns='{REGISTER}'>{}</query>",
            submit(&[("username", "jules"), ("password", "s3cret")])
        ),
    )
    .await;
    assert_eq!(ok.attr("type"), Some("result"), "{}", String::from(&ok));
    juliet
        .expect("the gateway asks for juliet's presence", SEC, |e| {
            e.name() == "presence"
                && e.attr("type") == Some("subscribe")
                && e.attr("from") == Some(DOMAIN)
        })
        .await;
    let st = command(&mut juliet, "c1", "status", None).await;
    assert_eq!(status(&st).as_deref(), Some("completed"));
    assert!(
        note(&st).contains("Registered as jules (connected)"),
        "{}",
        note(&st)
    );
    let again = iq(
        &mut juliet,
        "r5",
        "get",
        DOMAIN,
        &format!("<query xmlns='{REGISTER}'/>"),
    )
    .await;
    assert!(String::from(&again).contains("<registered"));
    let gone = iq(
        &mut juliet,
        "r6",
        "set",
        DOMAIN,
        &format!("<query xmlns='{REGISTER}'><remove/></query>"),
    )
    .await;
    assert_eq!(gone.attr("type"), Some("result"));
    let st = command(&mut juliet, "c2", "status", None).await;
    assert!(note(&st).contains("Not registered"), "{}", note(&st));

    // --- the same through the ad-hoc flow; admin commands are hidden and forbidden ---
    let list = iq(
        &mut juliet,
        "l1",
        "get",
        DOMAIN,
        &format!("<query xmlns='{DISCO_ITEMS}' node='{COMMANDS}'/>"),
    )
    .await;
    let xml = String::from(&list);
    assert!(
        xml.contains("node='register'") && !xml.contains("node='link-space'"),
        "{xml}"
    );
    let step = command(&mut juliet, "c3", "register", None).await;
    assert_eq!(status(&step).as_deref(), Some("executing"));
    assert!(String::from(&step).contains("var='password'"));
    let done = command(
        &mut juliet,
        "c4",
        "register",
        Some(&submit(&[("username", "jules"), ("password", "s3cret")])),
    )
    .await;
    assert_eq!(status(&done).as_deref(), Some("completed"));
    assert!(
        note(&done).contains("Registered as jules"),
        "{}",
        note(&done)
    );
    let denied = command(&mut juliet, "c5", "link-space", None).await;
    assert_eq!(error_condition(&denied).as_deref(), Some("forbidden"));
    let list = iq(
        &mut admin,
        "l2",
        "get",
        DOMAIN,
        &format!("<query xmlns='{DISCO_ITEMS}' node='{COMMANDS}'/>"),
    )
    .await;
    assert!(String::from(&list).contains("node='link-space'"));

    // --- XEP-0100: pasted addresses become JIDs ---
    let prompt = iq(
        &mut juliet,
        "g1",
        "get",
        DOMAIN,
        "<query xmlns='jabber:iq:gateway'/>",
    )
    .await;
    assert!(String::from(&prompt).contains("<prompt"));
    for (input, want) in [
        ("#lobby", format!("lobby@{DOMAIN}")),
        ("@alice", format!("alice@{DOMAIN}")),
    ] {
        let r = iq(
            &mut juliet,
            "g2",
            "set",
            DOMAIN,
            &format!("<query xmlns='jabber:iq:gateway'><prompt>{input}</prompt></query>"),
        )
        .await;
        let jid = r
            .get_child("query", "jabber:iq:gateway")
            .and_then(|q| q.get_child("jid", "jabber:iq:gateway"))
            .map(|j| j.text());
        assert_eq!(jid, Some(want));
    }
    let r = iq(
        &mut juliet,
        "g3",
        "set",
        DOMAIN,
        "<query xmlns='jabber:iq:gateway'><prompt>nothing-here</prompt></query>",
    )
    .await;
    assert_eq!(error_condition(&r).as_deref(), Some("item-not-found"));

    // --- presence: puppets accept subscriptions (the gateway's own was settled at
    // registration: it asked, the client approved and asked back). The server turns an
    // approval into a roster push, and may pass the presence on too.
    let bot = format!("bot@{DOMAIN}");
    juliet
        .send_xml(&format!(
            "<presence xmlns='jabber:client' type='subscribe' to='{bot}'/>"
        ))
        .await;
    juliet
        .expect("subscribed by a puppet", SEC, |e| {
            let xml = String::from(e);
            // "subscribed" itself, or the available presence that follows it
            (e.name() == "presence"
                && matches!(e.attr("type"), Some("subscribed") | None)
                && e.attr("from") == Some(bot.as_str()))
                || (e.name() == "iq"
                    && xml.contains(&format!("jid='{bot}'"))
                    && xml.contains("subscription='to'"))
        })
        .await;

    // --- spaces: nothing linked yet; the rooms of an unlinked space are not bridged ---
    let items = iq(
        &mut juliet,
        "s1",
        "get",
        &spaces,
        &format!("<query xmlns='{DISCO_ITEMS}'/>"),
    )
    .await;
    assert!(
        !String::from(&items).contains("node="),
        "{}",
        String::from(&items)
    );
    juliet.send_xml(&format!("<presence xmlns='jabber:client' to='general@{DOMAIN}/Juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>")).await;
    let refused = juliet
        .expect("join refused", SEC, |e| {
            e.name() == "presence" && e.attr("type") == Some("error")
        })
        .await;
    assert_eq!(error_condition(&refused).as_deref(), Some("item-not-found"));

    // an admin links the demo community through the ad-hoc flow
    let step = command(&mut admin, "a1", "link-space", None).await;
    assert!(
        String::from(&step).contains("label='Demo Community'"),
        "{}",
        String::from(&step)
    );
    let done = command(
        &mut admin,
        "a2",
        "link-space",
        Some(&submit(&[("space", "community")])),
    )
    .await;
    assert!(
        note(&done).contains("Linked Demo Community: 2 rooms"),
        "{}",
        note(&done)
    );

    // a client lists spaces, reads one, sees its rooms, subscribes
    let info = iq(
        &mut juliet,
        "s2",
        "get",
        &spaces,
        &format!("<query xmlns='{DISCO_INFO}'/>"),
    )
    .await;
    let xml = String::from(&info);
    assert!(
        xml.contains("category='pubsub'")
            && xml.contains("type='service'")
            && xml.contains("urn:xmpp:spaces:0"),
        "{xml}"
    );
    let items = iq(
        &mut juliet,
        "s3",
        "get",
        &spaces,
        &format!("<query xmlns='{DISCO_ITEMS}'/>"),
    )
    .await;
    let xml = String::from(&items);
    assert!(
        xml.contains("node='community'")
            && xml.contains("name='Demo Community'")
            && xml.contains("node='community-archive'"),
        "{xml}"
    );
    let meta = iq(
        &mut juliet,
        "s4",
        "get",
        &spaces,
        &format!("<query xmlns='{DISCO_INFO}' node='community'/>"),
    )
    .await;
    let xml = String::from(&meta);
    assert!(
        xml.contains("pubsub#type")
            && xml.contains("urn:xmpp:spaces:0")
            && xml.contains("Demo Community"),
        "{xml}"
    );
    let rooms = iq(
        &mut juliet,
        "s5",
        "get",
        &spaces,
        &format!("<pubsub xmlns='{PUBSUB}'><items node='community'/></pubsub>"),
    )
    .await;
    let xml = String::from(&rooms);
    for part in [
        format!("id='general@{DOMAIN}'"),
        format!("id='offtopic@{DOMAIN}'"),
        "urn:xmpp:bookmarks:1".into(),
        "node='community-archive'".into(),
    ] {
        assert!(xml.contains(&part), "{part} in {xml}");
    }
    let sub = iq(&mut juliet, "s6", "set", &spaces, &format!("<pubsub xmlns='{PUBSUB}'><subscribe node='community' jid='juliet@localhost'/></pubsub>")).await;
    assert!(
        String::from(&sub).contains("subscription='subscribed'"),
        "{}",
        String::from(&sub)
    );
    let subs = iq(
        &mut juliet,
        "s6b",
        "get",
        &spaces,
        &format!("<pubsub xmlns='{PUBSUB}'><subscriptions/></pubsub>"),
    )
    .await;
    assert!(
        String::from(&subs).contains("node='community'"),
        "{}",
        String::from(&subs)
    );
    let theft = iq(
        &mut juliet,
        "s7",
        "set",
        &spaces,
        &format!(
            "<pubsub xmlns='{PUBSUB}'><subscribe node='community' jid='romeo@localhost'/></pubsub>"
        ),
    )
    .await;
    assert_eq!(error_condition(&theft).as_deref(), Some("bad-request"));
    let publish = iq(
        &mut juliet,
        "s8",
        "set",
        &spaces,
        &format!(
            "<pubsub xmlns='{PUBSUB}'><publish node='community'><item id='x'/></publish></pubsub>"
        ),
    )
    .await;
    assert_eq!(error_condition(&publish).as_deref(), Some("forbidden"));

    // on Prosody the server's own pubsub service (where Movim looks) holds a copy
    if kind == Kind::Prosody {
        let xml = mirror_items(&mut juliet, "m", |x| {
            x.contains(&format!("id='general@{DOMAIN}'"))
        })
        .await;
        assert!(
            xml.contains(&format!("id='offtopic@{DOMAIN}'"))
                && xml.contains("urn:xmpp:bookmarks:1"),
            "{xml}"
        );
        let meta = iq(
            &mut juliet,
            "m-meta",
            "get",
            MIRROR,
            &format!("<query xmlns='{DISCO_INFO}' node='community'/>"),
        )
        .await;
        let xml = String::from(&meta);
        assert!(
            xml.contains("urn:xmpp:spaces:0") && xml.contains("Demo Community"),
            "{xml}"
        );
    }

    // the rooms are rooms of the gateway now, with the back-link to their space
    let info = iq(
        &mut juliet,
        "s9",
        "get",
        &format!("general@{DOMAIN}"),
        &format!("<query xmlns='{DISCO_INFO}'/>"),
    )
    .await;
    assert!(
        String::from(&info).contains(&format!("xmpp:{spaces}?;node=community")),
        "{}",
        String::from(&info)
    );
    juliet.join(&format!("general@{DOMAIN}"), "Juliet").await;

    // the network adds, then removes, a room: subscribers are told
    gw.demo
        .add_room_in_space("community", "announcements", "Announcements")
        .await;
    let ev = juliet
        .expect("a new room in the space", SEC, |e| {
            e.get_child("event", EVENT).is_some() && String::from(e).contains("announcements@")
        })
        .await;
    assert_eq!(ev.attr("from"), Some(spaces.as_str()));
    assert!(String::from(&ev).contains("name='Announcements'"));
    gw.demo.remove_room("offtopic").await;
    juliet
        .expect("a room gone from the space", SEC, |e| {
            e.get_child("event", EVENT).is_some_and(|ev| {
                String::from(ev).contains(&format!("<retract id='offtopic@{DOMAIN}'"))
            })
        })
        .await;
    let rooms = iq(
        &mut juliet,
        "s10",
        "get",
        &spaces,
        &format!("<pubsub xmlns='{PUBSUB}'><items node='community'/></pubsub>"),
    )
    .await;
    let xml = String::from(&rooms);
    assert!(
        xml.contains("announcements@") && !xml.contains("offtopic@"),
        "{xml}"
    );

    // the mirror follows the changes
    if kind == Kind::Prosody {
        let xml = mirror_items(&mut juliet, "mm", |x| {
            x.contains("announcements@") && !x.contains("offtopic@")
        })
        .await;
        assert!(
            xml.contains("announcements@") && !xml.contains("offtopic@"),
            "{xml}"
        );
    }

    // admin commands: list, statistics, unlink
    let list = command(&mut admin, "a3", "spaces", None).await;
    assert!(note(&list).contains("Demo Community"), "{}", note(&list));
    let stats = command(&mut admin, "a4", "stats", None).await;
    assert!(note(&stats).contains("Rooms:"), "{}", note(&stats));
    let done = command(
        &mut admin,
        "a5",
        "unlink-space",
        Some(&submit(&[("space", "community")])),
    )
    .await;
    assert!(
        note(&done).contains("Unlinked community"),
        "{}",
        note(&done)
    );
    let items = iq(
        &mut juliet,
        "s11",
        "get",
        &spaces,
        &format!("<query xmlns='{DISCO_ITEMS}'/>"),
    )
    .await;
    assert!(
        !String::from(&items).contains("node="),
        "{}",
        String::from(&items)
    );

    juliet.close().await;
    admin.close().await;
    gw.stop().await;
}
