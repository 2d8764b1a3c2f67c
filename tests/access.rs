//! Who may see what (issue 16), through a real server and real clients: the gateway serves
//! the XMPP domains it is configured for; an archive answers those in the room; a room whose
//! space was unlinked stays closed across restarts; a Discord channel hidden from @everyone
//! is not bridged unless an admin opts it in, and then only for its members.

mod common;
use common::*;
use fake_discord::{FakeDiscord, Options, Overwrite};

const MAM: &str = "urn:xmpp:mam:2";
const DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const COMMANDS: &str = "http://jabber.org/protocol/commands";

/// A join's answer: Ok(()) when joined, Err(condition) when refused.
async fn try_join(c: &mut XmppClient, room: &str, nick: &str) -> Result<(), String> {
    c.send_xml(&format!(
        "<presence xmlns='jabber:client' to='{room}/{nick}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
    ))
    .await;
    let me = format!("{room}/{nick}");
    let answer = c
        .expect(&format!("the answer to joining {room}"), SEC, |e| {
            e.name() == "presence"
                && (e.attr("type") == Some("error")
                    && e.attr("from").is_some_and(|f| f.starts_with(room))
                    || e.attr("from") == Some(me.as_str())
                        && statuses(e).contains(&"110".to_string()))
        })
        .await;
    match answer.attr("type") {
        Some("error") => Err(error_condition(&answer).unwrap_or_default()),
        _ => Ok(()),
    }
}

/// An archive query's answer: Ok(()) for a result, Err(condition) for an error.
async fn try_archive(c: &mut XmppClient, room: &str, id: &str) -> Result<(), String> {
    let answer = iq(
        c,
        id,
        "set",
        room,
        &format!("<query xmlns='{MAM}' queryid='{id}'/>"),
    )
    .await;
    match answer.attr("type") {
        Some("result") => Ok(()),
        _ => Err(error_condition(&answer).unwrap_or_default()),
    }
}

async fn leave(c: &mut XmppClient, room: &str, nick: &str) {
    c.send_xml(&format!(
        "<presence xmlns='jabber:client' to='{room}/{nick}' type='unavailable'/>"
    ))
    .await;
    c.drain(std::time::Duration::from_millis(300)).await;
}

/// `bridge.allowed_domains` shuts out users of other servers (admins excepted), and an
/// archive answers those in the room only: not before joining, not after leaving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_served_users_and_occupants() {
    let server = Server::start(Kind::Prosody);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    let lobby = format!("lobby@{DOMAIN}");

    // this gateway serves example.org only: juliet@localhost is outside, admin@localhost is
    // an admin
    let gw = Gateway::start_with(&server, &url, |c| {
        c.bridge.allowed_domains = vec!["example.org".into()];
    })
    .await;
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    assert_eq!(
        try_join(&mut juliet, &lobby, "Juliet").await,
        Err("forbidden".into())
    );
    assert_eq!(
        try_archive(&mut juliet, &lobby, "m1").await,
        Err("forbidden".into())
    );
    let items = iq(
        &mut juliet,
        "d1",
        "get",
        DOMAIN,
        &format!("<query xmlns='{DISCO_ITEMS}'/>"),
    )
    .await;
    assert_eq!(
        error_condition(&items).as_deref(),
        Some("forbidden"),
        "room listing"
    );
    juliet
        .send_xml(&format!(
            "<message xmlns='jabber:client' to='bob@{DOMAIN}' type='chat' id='dm'><body>hi</body></message>"
        ))
        .await;
    let refused = juliet
        .expect("the 1:1 message refused", SEC, |e| {
            e.attr("id") == Some("dm")
        })
        .await;
    assert_eq!(error_condition(&refused).as_deref(), Some("forbidden"));
    let before = gw.demo.sent().len();
    juliet
        .send_xml(&format!(
            "<message xmlns='jabber:client' to='{lobby}' type='groupchat' id='gc'><body>let me in</body></message>"
        ))
        .await;
    let refused = juliet
        .expect("the room message refused", SEC, |e| {
            e.attr("id") == Some("gc")
        })
        .await;
    assert_eq!(refused.attr("type"), Some("error"));
    assert_eq!(gw.demo.sent().len(), before, "nothing reached the network");
    let mut admin = XmppClient::register(&server, "admin", "desk").await;
    assert_eq!(try_join(&mut admin, &lobby, "Admin").await, Ok(()));
    admin.close().await;
    gw.stop().await;

    // everyone served: the archive still answers only occupants
    let gw = Gateway::start(&server, &url).await;
    assert_eq!(
        try_archive(&mut juliet, &lobby, "m2").await,
        Err("forbidden".into())
    );
    assert_eq!(try_join(&mut juliet, &lobby, "Juliet").await, Ok(()));
    assert_eq!(try_archive(&mut juliet, &lobby, "m3").await, Ok(()));
    leave(&mut juliet, &lobby, "Juliet").await;
    assert_eq!(
        try_archive(&mut juliet, &lobby, "m4").await,
        Err("forbidden".into())
    );
    juliet.close().await;
    gw.stop().await;
}

/// A room of an unlinked space is closed, and stays closed after a restart (its portal
/// outlives the link, outside any space); linking the space again opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlinked_spaces_stay_closed_across_restarts() {
    let server = Server::start(Kind::Prosody);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    let gw = Gateway::start(&server, &url).await;
    let mut admin = XmppClient::register(&server, "admin", "desk").await;
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    let general = format!("general@{DOMAIN}");
    let space_command = |node: &str| {
        format!("<command xmlns='{COMMANDS}' node='{node}' action='complete' sessionid='s-{node}'><x xmlns='jabber:x:data' type='submit'><field var='space'><value>community</value></field></x></command>")
    };
    let linked = iq(
        &mut admin,
        "l1",
        "set",
        DOMAIN,
        &space_command("link-space"),
    )
    .await;
    assert!(
        String::from(&linked).contains("Linked"),
        "{}",
        String::from(&linked)
    );
    assert_eq!(try_join(&mut juliet, &general, "Juliet").await, Ok(()));
    let unlinked = iq(
        &mut admin,
        "u1",
        "set",
        DOMAIN,
        &space_command("unlink-space"),
    )
    .await;
    assert!(
        String::from(&unlinked).contains("Unlinked"),
        "{}",
        String::from(&unlinked)
    );
    juliet
        .expect("the room destroyed", SEC, |e| {
            e.name() == "presence" && String::from(e).contains("<destroy")
        })
        .await;
    let gw = gw.restart(&server, &url).await;
    assert_eq!(
        try_join(&mut juliet, &general, "Juliet").await,
        Err("item-not-found".into())
    );
    assert_eq!(
        try_archive(&mut juliet, &general, "m1").await,
        Err("item-not-found".into())
    );
    // what the network says there is not bridged either
    gw.demo
        .inject_message("general", "bob", "nobody hears this")
        .await;
    let linked = iq(
        &mut admin,
        "l2",
        "set",
        DOMAIN,
        &space_command("link-space"),
    )
    .await;
    assert!(
        String::from(&linked).contains("Linked"),
        "{}",
        String::from(&linked)
    );
    assert_eq!(try_join(&mut juliet, &general, "Juliet").await, Ok(()));
    juliet.close().await;
    admin.close().await;
    gw.stop().await;
}

/// A Discord channel hidden from @everyone (its own overwrite, or its private category's) is
/// not in the space, its JID answers item-not-found, its archive is not served; opted in
/// by an admin it is members-only, and its occupants are those Discord lets see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_discord_channels_are_not_bridged_unless_opted_in() {
    use fake_discord::permissions::VIEW_CHANNEL;
    let server = Server::start(Kind::Prosody);
    let fake = FakeDiscord::start(Options::default())
        .await
        .expect("fake discord");
    let guild = fake.add_guild("Fake Guild");
    let general = fake.add_channel(&guild, "general", 0, None);
    let mods = fake.add_channel(&guild, "mods", 0, None);
    fake.set_overwrites(&mods, vec![Overwrite::role(&guild, 0, VIEW_CHANNEL)]);
    let staff = fake.add_channel(&guild, "Staff", 4, None);
    fake.set_overwrites(&staff, vec![Overwrite::role(&guild, 0, VIEW_CHANNEL)]);
    let backroom = fake.add_channel(&guild, "backroom", 0, Some(&staff));
    let moderator = fake.add_role_with(&guild, "Moderator", fake_discord::permissions::DEFAULT);
    fake.set_overwrites(
        &mods,
        vec![
            Overwrite::role(&guild, 0, VIEW_CHANNEL),
            Overwrite::role(&moderator, VIEW_CHANNEL, 0),
        ],
    );
    let alice = fake.add_user("alice", Some("Alice"));
    fake.add_member(&guild, &alice, None);
    fake.set_member_roles(&guild, &alice, &[moderator.as_str()]);
    let bob = fake.add_user("bob", Some("Bob"));
    fake.add_member(&guild, &bob, None);

    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    let start = |opt_in: bool| {
        let http = format!("127.0.0.1:{}", free_port());
        let mut config = server.discord_config(&store, &http, &fake);
        if opt_in {
            config.bridge.private_rooms = vec![causeway::config::PrivateRoom {
                room: format!("{mods}@{DISCORD}"),
                members: vec!["juliet@localhost".into()],
            }];
        }
        Running::start(config)
    };
    let gw = start(false).await;
    let mut admin = XmppClient::register(&server, "admin", "desk").await;
    link_space(&mut admin, DISCORD, &guild).await;
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    let items = iq(
        &mut juliet,
        "p1",
        "get",
        &format!("spaces.{DISCORD}"),
        &format!(
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='{guild}'/></pubsub>"
        ),
    )
    .await;
    let xml = String::from(&items);
    assert!(xml.contains(&format!("{general}@{DISCORD}")), "{xml}");
    assert!(
        !xml.contains(&mods) && !xml.contains(&backroom),
        "hidden rooms listed: {xml}"
    );
    let listing = iq(
        &mut juliet,
        "d1",
        "get",
        DISCORD,
        &format!("<query xmlns='{DISCO_ITEMS}'/>"),
    )
    .await;
    let xml = String::from(&listing);
    assert!(
        !xml.contains(&mods) && !xml.contains(&backroom),
        "hidden rooms listed: {xml}"
    );
    for room in [&mods, &backroom] {
        let jid = format!("{room}@{DISCORD}");
        assert_eq!(
            try_join(&mut juliet, &jid, "Juliet").await,
            Err("item-not-found".into())
        );
        assert_eq!(
            try_archive(&mut juliet, &jid, &format!("a{room}")).await,
            Err("item-not-found".into())
        );
        juliet
            .send_xml(&format!(
                "<message xmlns='jabber:client' to='{jid}' type='groupchat' id='post{room}'><body>psst</body></message>"
            ))
            .await;
        let id = format!("post{room}");
        juliet
            .expect("the post refused", SEC, |e| {
                e.attr("id") == Some(id.as_str()) && e.attr("type") == Some("error")
            })
            .await;
    }
    assert!(
        fake.messages(&mods).is_empty() && fake.messages(&backroom).is_empty(),
        "nothing posted into hidden channels"
    );
    juliet.close().await;
    admin.close().await;
    gw.stop().await;

    // opted in: members-only; Juliet is a member, Romeo is not; alice (a moderator) is an
    // occupant, bob (who cannot see it on Discord) is not
    let gw = start(true).await;
    let jid = format!("{mods}@{DISCORD}");
    let mut romeo = XmppClient::connect(&server, "romeo", "garden").await;
    assert_eq!(
        try_join(&mut romeo, &jid, "Romeo").await,
        Err("registration-required".into())
    );
    assert_eq!(
        try_archive(&mut romeo, &jid, "r1").await,
        Err("item-not-found".into())
    );
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    assert_eq!(try_join(&mut juliet, &jid, "Juliet").await, Ok(()));
    let seen = juliet.drain(std::time::Duration::from_millis(500)).await;
    let occupants: Vec<String> = seen
        .iter()
        .filter(|e| e.name() == "presence")
        .filter_map(|e| e.attr("from").map(String::from))
        .collect();
    assert!(
        occupants.iter().any(|o| o.ends_with("/Alice")),
        "{occupants:?}"
    );
    assert!(
        !occupants.iter().any(|o| o.ends_with("/Bob")),
        "{occupants:?}"
    );
    assert_eq!(try_archive(&mut juliet, &jid, "j1").await, Ok(()));
    // the backroom stays closed: nobody opted it in
    assert_eq!(
        try_join(&mut juliet, &format!("{backroom}@{DISCORD}"), "Juliet").await,
        Err("item-not-found".into())
    );
    juliet.close().await;
    romeo.close().await;
    gw.stop().await;
}

/// What one XMPP user may create is bounded (`[bridge.quotas]`): new 1:1 conversations and
/// registrations per hour, rooms joined at once; past it, resource-constraint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_bound_what_one_user_creates() {
    let server = Server::start(Kind::Prosody);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    let gw = Gateway::start_with(&server, &url, |c| {
        c.bridge.quotas.new_direct_per_hour = 2;
        c.bridge.quotas.registrations_per_hour = 1;
        c.bridge.quotas.rooms_joined = 2;
    })
    .await;
    let mut juliet = XmppClient::connect(&server, "juliet", "balcony").await;
    // rooms joined at once
    assert_eq!(
        try_join(&mut juliet, &format!("lobby@{DOMAIN}"), "J").await,
        Ok(())
    );
    assert_eq!(
        try_join(&mut juliet, &format!("random@{DOMAIN}"), "J").await,
        Ok(())
    );
    let third = format!("tea\\20room@{DOMAIN}");
    assert_eq!(
        try_join(&mut juliet, &third, "J").await,
        Err("resource-constraint".into())
    );
    leave(&mut juliet, &format!("random@{DOMAIN}"), "J").await;
    assert_eq!(
        try_join(&mut juliet, &third, "J").await,
        Ok(()),
        "a place again after leaving"
    );
    // new 1:1 conversations
    // (one at a time: each conversation is opened in a task of its own)
    for (n, user) in ["alice", "bob", "bot"].iter().enumerate() {
        let id = format!("dm{n}");
        juliet
            .send_xml(&format!(
                "<message xmlns='jabber:client' to='{user}@{DOMAIN}' type='chat' id='{id}'><body>hi</body></message>"
            ))
            .await;
        juliet.pump(std::time::Duration::from_millis(300)).await;
        if n == 2 {
            let refused = juliet
                .expect("the third new conversation refused", SEC, |e| {
                    e.attr("id") == Some(id.as_str())
                })
                .await;
            assert_eq!(
                error_condition(&refused).as_deref(),
                Some("resource-constraint")
            );
        }
    }
    // registrations
    let form = |pw: &str| {
        format!("<query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='username'><value>jules</value></field><field var='password'><value>{pw}</value></field></x></query>")
    };
    let first = iq(&mut juliet, "reg1", "set", DOMAIN, &form("one")).await;
    assert_eq!(
        first.attr("type"),
        Some("result"),
        "{}",
        String::from(&first)
    );
    let second = iq(&mut juliet, "reg2", "set", DOMAIN, &form("two")).await;
    assert_eq!(
        error_condition(&second).as_deref(),
        Some("resource-constraint")
    );
    juliet.close().await;
    gw.stop().await;
}
