//! The Discord adapter end to end: real Prosody, real XMPP clients (slixmpp), Causeway, and
//! the test kit's fake Discord (REST + gateway over ws://). A community admin links a guild;
//! its channels are MUCs in a XEP-0503 space; messages, edits, deletions, reactions, replies,
//! files and typing go both ways; long texts are split; 429s, gateway drops and a stopped
//! Causeway lose and double nothing.

mod common;
use common::*;
use fake_discord::{FakeDiscord, Options, Post};
use serde_json::Value;
use std::time::Duration;

const COMMANDS: &str = "http://jabber.org/protocol/commands";
const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
const EVENT: &str = "http://jabber.org/protocol/pubsub#event";
const CORRECT: &str = "urn:xmpp:message-correct:0";
const RETRACT: &str = "urn:xmpp:message-retract:1";
const REACTIONS: &str = "urn:xmpp:reactions:0";
const REPLY: &str = "urn:xmpp:reply:0";
const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

/// A guild with a category ("Talk") holding #general and its thread "plans", a top-level
/// #random, a forum ("ideas") with one post, a voice channel (not bridged), two members.
struct Guild {
    id: String,
    talk: String,
    general: String,
    random: String,
    plans: String,
    forum: String,
    idea: String,
    alice: String,
    bob: String,
}

fn guild(fake: &FakeDiscord) -> Guild {
    let id = fake.add_guild("Fake Guild");
    let talk = fake.add_channel(&id, "Talk", 4, None);
    let general = fake.add_channel(&id, "general", 0, Some(&talk));
    let random = fake.add_channel(&id, "random", 0, None);
    fake.add_channel(&id, "Lounge", 2, None);
    let alice = fake.add_user("alice", Some("Alice"));
    fake.add_member(&id, &alice, Some("Alice A"));
    let bob = fake.add_user("bob", None);
    fake.add_member(&id, &bob, None);
    let plans = fake.add_thread(&general, "plans", &alice);
    let forum = fake.add_channel(&id, "ideas", 15, None);
    let idea = fake.add_thread(&forum, "first idea", &alice);
    Guild {
        id,
        talk,
        general,
        random,
        plans,
        forum,
        idea,
        alice,
        bob,
    }
}

/// The admin links the guild through the ad-hoc command.
async fn link(admin: &mut XmppClient, guild: &str) -> String {
    space_command(admin, "link-space", guild).await
}

async fn space_command(admin: &mut XmppClient, node: &str, guild: &str) -> String {
    let form = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='space'><value>{guild}</value></field></x>"
    );
    let done = iq(
        admin,
        node,
        "set",
        DISCORD,
        &format!("<command xmlns='{COMMANDS}' node='{node}' action='complete' sessionid='s-{node}'>{form}</command>"),
    )
    .await;
    String::from(&done)
}

fn webhook_posts(fake: &FakeDiscord, channel: &str) -> Vec<Value> {
    fake.messages(channel)
        .into_iter()
        .filter(|m| m["webhook_id"].is_string())
        .collect()
}

fn calls(fake: &FakeDiscord, method: &str, path_has: &str) -> Vec<fake_discord::Call> {
    fake.calls()
        .into_iter()
        .filter(|c| c.method == method && c.path.contains(path_has) && !c.limited)
        .collect()
}

struct Setup {
    server: Server,
    fake: FakeDiscord,
    g: Guild,
    store: String,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let server = Server::start(Kind::Prosody);
    let fake = FakeDiscord::start(Options::default())
        .await
        .expect("fake discord");
    let g = guild(&fake);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
    Setup {
        server,
        fake,
        g,
        store,
        _dir: dir,
    }
}

async fn start(s: &Setup) -> Running {
    let http = format!("127.0.0.1:{}", free_port());
    Running::start(s.server.discord_config(&s.store, &http, &s.fake)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_community_on_prosody() {
    let s = setup().await;
    let (fake, g) = (&s.fake, &s.g);
    let gw = start(&s).await;
    let mut admin = XmppClient::register(&s.server, "admin", "desk").await;
    let mut juliet = XmppClient::connect(&s.server, "juliet", "balcony").await;
    let spaces = format!("spaces.{DISCORD}");

    // --- linking: the guild is a space, the category a nested one, voice is left out ---
    let done = link(&mut admin, &g.id).await;
    assert!(done.contains("Linked Fake Guild"), "{done}");
    let top = iq(
        &mut juliet,
        "p1",
        "get",
        &spaces,
        &format!("<pubsub xmlns='{PUBSUB}'><items node='{}'/></pubsub>", g.id),
    )
    .await;
    let xml = String::from(&top);
    assert!(
        xml.contains(&format!("id='{}@{DISCORD}'", g.random)),
        "{xml}"
    );
    assert!(xml.contains(&format!("node='{}'", g.talk)), "{xml}");
    assert!(
        xml.contains(&format!("node='{}'", g.forum)),
        "the forum is a nested space: {xml}"
    );
    assert!(!xml.contains("Lounge"), "{xml}");
    let ideas = iq(
        &mut juliet,
        "p1b",
        "get",
        &spaces,
        &format!(
            "<pubsub xmlns='{PUBSUB}'><items node='{}'/></pubsub>",
            g.forum
        ),
    )
    .await;
    let xml = String::from(&ideas);
    assert!(
        xml.contains(&format!("id='{}@{DISCORD}'", g.idea)),
        "the forum post is a room: {xml}"
    );
    let talk = iq(
        &mut juliet,
        "p2",
        "get",
        &spaces,
        &format!(
            "<pubsub xmlns='{PUBSUB}'><items node='{}'/></pubsub>",
            g.talk
        ),
    )
    .await;
    let xml = String::from(&talk);
    for room in [&g.general, &g.plans] {
        assert!(
            xml.contains(&format!("id='{room}@{DISCORD}'")),
            "{room} in {xml}"
        );
    }
    let sub = iq(
        &mut juliet,
        "p3",
        "set",
        &spaces,
        &format!(
            "<pubsub xmlns='{PUBSUB}'><subscribe node='{}' jid='juliet@localhost'/></pubsub>",
            g.talk
        ),
    )
    .await;
    assert!(String::from(&sub).contains("subscription='subscribed'"));

    // a channel created on Discord appears in the space at once
    let news = fake.add_channel(&g.id, "news", 5, Some(&g.talk));
    let note = juliet
        .expect("the new channel's notification", SEC, |e| {
            e.get_child("event", EVENT).is_some()
                && String::from(e).contains(&format!("{news}@{DISCORD}"))
        })
        .await;
    assert!(
        String::from(&note).contains("news"),
        "{}",
        String::from(&note)
    );

    // juliet has an avatar in her vCard: Discord shows it on her posts
    let png = [
        137u8, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82,
    ];
    let b64 = "iVBORw0KGgoAAAANSUhEUg==";
    let set = iq(&mut juliet, "vc", "set", "juliet@localhost", &format!("<vCard xmlns='vcard-temp'><FN>Juliet</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>{b64}</BINVAL></PHOTO></vCard>")).await;
    assert_eq!(set.attr("type"), Some("result"), "{}", String::from(&set));

    // --- joining: Discord members are occupants ---
    let room = format!("{}@{DISCORD}", g.general);
    let mut romeo = XmppClient::connect(&s.server, "romeo", "garden").await;
    juliet.join(&room, "Juliet").await;
    romeo.join(&room, "Romeo").await;
    let alice_occ = format!("{room}/Alice A");
    let bob_occ = format!("{room}/bob");
    for occ in [&alice_occ, &bob_occ] {
        assert!(
            juliet
                .inbox
                .iter()
                .any(|e| e.name() == "presence" && e.attr("from") == Some(occ.as_str())),
            "{occ} is an occupant: {}",
            juliet.dump()
        );
    }

    // --- Discord -> XMPP ---
    let m1 = fake.post(
        &g.general,
        &g.alice,
        Post::text(format!("**hi** <@{}> see <#{}>", g.bob, g.random)),
    );
    let (_, s1) = juliet
        .expect_body(&alice_occ, "*hi* @bob see #random")
        .await;
    assert_eq!(s1, m1, "the stanza-id is the Discord message id");
    fake.edit(&g.general, &m1, "**hi** everyone");
    let edit = juliet.expect_body(&alice_occ, "*hi* everyone").await.0;
    assert_eq!(attr_of(&edit, "replace", CORRECT, "id"), Some(m1.clone()));
    fake.react(&g.bob, &g.general, &m1, "👍");
    fake.react(&g.bob, &g.general, &m1, "party:123");
    let r = juliet
        .expect("bob's two reactions", SEC, |e| {
            e.attr("from") == Some(bob_occ.as_str())
                && reaction_set(e).is_some_and(|(_, s)| s.len() == 2)
        })
        .await;
    assert_eq!(
        reaction_set(&r),
        Some((m1.clone(), vec!["👍".to_string(), ":party:".to_string()]))
    );
    fake.unreact(&g.bob, &g.general, &m1, "👍");
    juliet
        .expect("bob's reaction removed", SEC, |e| {
            reaction_set(e).is_some_and(|(_, s)| s == [":party:"])
        })
        .await;
    fake.clear_reactions(&g.general, &m1);
    juliet
        .expect("reactions cleared by a moderator", SEC, |e| {
            e.attr("from") == Some(bob_occ.as_str())
                && reaction_set(e).is_some_and(|(_, s)| s.is_empty())
        })
        .await;
    let m2 = fake.post(
        &g.general,
        &g.bob,
        Post {
            content: "answering".into(),
            reply_to: Some(m1.clone()),
            ..Post::default()
        },
    );
    let reply = juliet
        .expect("bob's reply", SEC, |e| {
            e.get_child("reply", REPLY).is_some()
        })
        .await;
    assert_eq!(attr_of(&reply, "reply", REPLY, "id"), Some(m1.clone()));
    assert_eq!(stanza_id(&reply), Some(m2.clone()));
    fake.post(
        &g.general,
        &g.alice,
        Post {
            files: vec![(
                "note.txt".into(),
                "text/plain".into(),
                b"hello file".to_vec(),
            )],
            ..Post::default()
        },
    );
    let file = juliet
        .expect("alice's file", SEC, |e| {
            e.attr("from") == Some(alice_occ.as_str()) && e.get_child("x", "jabber:x:oob").is_some()
        })
        .await;
    let url = body(&file).unwrap_or_default();
    let path = url
        .strip_prefix(&format!("http://{}", gw.http))
        .unwrap_or_else(|| panic!("re-hosted by Causeway: {url}"));
    let (code, _, bytes) = http_fetch(&gw.http, path).await;
    assert_eq!((code, bytes.as_slice()), (200, &b"hello file"[..]));
    let embed = serde_json::json!({"type": "rich", "title": "Release 1.0", "description": "It is out.", "url": "https://example.org/r"});
    fake.post(
        &g.general,
        &g.bob,
        Post {
            content: "look".into(),
            embeds: vec![embed],
            ..Post::default()
        },
    );
    juliet
        .expect_body(
            &bob_occ,
            "look\n> Release 1.0\n> It is out.\n> https://example.org/r",
        )
        .await;
    fake.typing(&g.bob, &g.general);
    juliet
        .expect("bob typing", SEC, |e| {
            e.attr("from") == Some(bob_occ.as_str())
                && e.get_child("composing", CHATSTATES).is_some()
        })
        .await;
    fake.delete(&g.general, &m1);
    juliet
        .expect("m1 retracted", SEC, |e| {
            String::from(e).contains(RETRACT) && String::from(e).contains(&format!("id='{m1}'"))
        })
        .await;

    // --- XMPP -> Discord ---
    let gc = |id: &str, inner: &str| {
        format!("<message xmlns='jabber:client' type='groupchat' to='{room}' id='{id}'>{inner}</message>")
    };
    let j_nick = format!("{room}/Juliet");
    juliet
        .send_xml(&gc(
            "j1",
            "<body>hello *world* snake_case_name @Alice A</body>",
        ))
        .await;
    let (_, js1) = romeo
        .expect_body(&j_nick, "hello *world* snake_case_name @Alice A")
        .await;
    let post = until("juliet's webhook post", || {
        webhook_posts(fake, &g.general).into_iter().last()
    })
    .await;
    assert_eq!(post["id"].as_str(), Some(js1.as_str()));
    assert_eq!(
        post["content"].as_str(),
        Some(format!("hello **world** snake\\_case\\_name <@{}>", g.alice).as_str())
    );
    let exec = calls(fake, "POST", "/webhooks/")
        .pop()
        .expect("a webhook execution");
    assert_eq!(exec.body["username"], "Juliet");
    assert_eq!(
        exec.body["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    assert_eq!(
        exec.body["allowed_mentions"]["users"],
        serde_json::json!([g.alice])
    );
    assert_eq!(post["mentions"][0]["id"].as_str(), Some(g.alice.as_str()));
    assert!(!exec.authorized, "webhook executions carry no bot token");
    let avatar = exec.body["avatar_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let path = avatar
        .strip_prefix(&format!("http://{}", gw.http))
        .unwrap_or_else(|| panic!("an avatar served by Causeway: {avatar:?}"));
    let (code, head, bytes) = http_fetch(&gw.http, path).await;
    assert_eq!((code, bytes.as_slice()), (200, &png[..]), "{head}");
    assert!(
        head.to_lowercase().contains("content-type: image/png"),
        "{head}"
    );

    juliet
        .send_xml(&gc(
            "j2",
            &format!("<body>hello there</body><replace xmlns='{CORRECT}' id='j1'/>"),
        ))
        .await;
    until("the edit on Discord", || {
        fake.messages(&g.general)
            .into_iter()
            .find(|m| m["id"].as_str() == Some(js1.as_str()) && m["content"] == "hello there")
    })
    .await;

    juliet
        .send_xml(&gc(
            "j3",
            &format!(
                "<reactions xmlns='{REACTIONS}' id='{m2}'><reaction>🎉</reaction></reactions>"
            ),
        ))
        .await;
    until("the bot's reaction", || {
        (fake.reactors(&m2, "🎉") == [fake.bot_id()]).then_some(())
    })
    .await;
    romeo.send_xml(&format!("<message xmlns='jabber:client' type='groupchat' to='{room}' id='r1'><reactions xmlns='{REACTIONS}' id='{m2}'><reaction>🎉</reaction></reactions></message>")).await;
    juliet
        .send_xml(&gc(
            "j4",
            &format!("<reactions xmlns='{REACTIONS}' id='{m2}'/>"),
        ))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.reactors(&m2, "🎉"),
        [fake.bot_id()],
        "romeo still reacts"
    );

    juliet
        .send_xml(&gc(
            "j5",
            &format!("<body>agreed</body><reply xmlns='{REPLY}' to='{room}/bob' id='{m2}'/>"),
        ))
        .await;
    let quoted = until("the reply on Discord", || {
        webhook_posts(fake, &g.general)
            .into_iter()
            .find(|m| m["content"].as_str().is_some_and(|c| c.ends_with("agreed")))
    })
    .await;
    let content = quoted["content"].as_str().unwrap_or_default();
    assert!(content.starts_with("> **bob**: answering"), "{content}");
    assert!(
        content.contains(&format!(
            "https://discord.com/channels/{}/{}/{m2}",
            g.id, g.general
        )),
        "{content}"
    );

    juliet
        .send_xml(&gc(
            "j6",
            &format!("<retract xmlns='{RETRACT}' id='{js1}'/><body>/me retracted</body>"),
        ))
        .await;
    until("the deletion on Discord", || {
        (!fake
            .messages(&g.general)
            .iter()
            .any(|m| m["id"].as_str() == Some(js1.as_str())))
        .then_some(())
    })
    .await;

    juliet
        .send_xml(&gc("j7", &format!("<composing xmlns='{CHATSTATES}'/>")))
        .await;
    until("typing on Discord", || {
        (!calls(fake, "POST", &format!("/channels/{}/typing", g.general)).is_empty()).then_some(())
    })
    .await;

    let files = file_server(vec![(
        "/pic.png",
        "image/png",
        vec![137, 80, 78, 71, 1, 2, 3],
        false,
    )])
    .await;
    let url = format!("http://{files}/pic.png");
    juliet
        .send_xml(&gc(
            "j8",
            &format!("<body>{url}</body><x xmlns='jabber:x:oob'><url>{url}</url></x>"),
        ))
        .await;
    let uploaded = until("the uploaded file", || {
        webhook_posts(fake, &g.general)
            .into_iter()
            .find(|m| m["attachments"].as_array().is_some_and(|a| !a.is_empty()))
    })
    .await;
    assert_eq!(uploaded["attachments"][0]["filename"], "pic.png");
    assert_eq!(uploaded["attachments"][0]["size"], 7);
    assert_eq!(
        uploaded["content"], "",
        "the URL body is replaced by the upload"
    );

    // a 4,500-character message is three Discord messages; retracting it deletes all three
    let before = webhook_posts(fake, &g.general).len();
    let long: String = (0..900)
        .map(|i| format!("w{:03} ", i % 1000))
        .collect::<String>();
    let long = long.trim_end().to_string();
    assert!(long.chars().count() > 4000);
    juliet
        .send_xml(&gc("j9", &format!("<body>{long}</body>")))
        .await;
    let (_, long_id) = romeo.expect_body(&j_nick, &long).await;
    let parts = until("three parts", || {
        let p = webhook_posts(fake, &g.general);
        (p.len() == before + 3).then(|| p[before..].to_vec())
    })
    .await;
    let joined: Vec<&str> = parts
        .iter()
        .map(|m| m["content"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(joined.join(" "), long);
    assert!(joined.iter().all(|p| p.chars().count() <= 2000));
    juliet
        .send_xml(&gc(
            "j10",
            &format!("<retract xmlns='{RETRACT}' id='{long_id}'/><body>/me retracted</body>"),
        ))
        .await;
    until("all three parts deleted", || {
        (webhook_posts(fake, &g.general).len() == before).then_some(())
    })
    .await;

    // the webhook was made once, named for Causeway, and the bot's token never reached XMPP
    let hooks = fake.webhooks();
    assert_eq!(hooks.len(), 1, "one webhook for #general");
    assert_eq!(hooks[0]["name"], "Causeway");
    let everything = format!("{}{}", juliet.dump(), romeo.dump());
    assert!(!everything.contains(&fake.token()));

    // unlinking the guild closes its rooms: occupants see them destroyed, joins are refused
    let done = space_command(&mut admin, "unlink-space", &g.id).await;
    assert!(done.contains("Unlinked"), "{done}");
    juliet
        .expect("#general destroyed", SEC, |e| {
            e.attr("from") == Some(j_nick.as_str())
                && e.attr("type") == Some("unavailable")
                && String::from(e).contains("destroy")
        })
        .await;
    juliet
        .send_xml(&format!("<presence xmlns='jabber:client' to='{j_nick}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"))
        .await;
    let refused = juliet
        .expect("join refused", SEC, |e| {
            e.name() == "presence" && e.attr("type") == Some("error")
        })
        .await;
    assert_eq!(error_condition(&refused).as_deref(), Some("item-not-found"));

    romeo.close().await;
    juliet.close().await;
    admin.close().await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_resilience_on_prosody() {
    let s = setup().await;
    let (fake, g) = (&s.fake, &s.g);
    let gw = start(&s).await;
    let mut admin = XmppClient::register(&s.server, "admin", "desk").await;
    let mut juliet = XmppClient::connect(&s.server, "juliet", "balcony").await;
    let done = link(&mut admin, &g.id).await;
    assert!(done.contains("Linked Fake Guild"), "{done}");
    let room = format!("{}@{DISCORD}", g.random);
    juliet.join(&room, "Juliet").await;
    let alice = format!("{room}/Alice A");

    // 429s on the webhook delay 50 messages sent in a burst; none is lost or reordered
    fake.rate_limit("/webhooks/", 3, 0.3);
    for i in 0..50 {
        juliet
            .send_xml(&format!("<message xmlns='jabber:client' type='groupchat' to='{room}' id='b{i}'><body>burst {i}</body></message>"))
            .await;
    }
    let posts = until("50 posts", || {
        let p = webhook_posts(fake, &g.random);
        (p.len() >= 50).then_some(p)
    })
    .await;
    let texts: Vec<String> = posts
        .iter()
        .map(|m| m["content"].as_str().unwrap_or("").to_string())
        .collect();
    let want: Vec<String> = (0..50).map(|i| format!("burst {i}")).collect();
    assert_eq!(texts, want);
    let limited = fake.calls().iter().filter(|c| c.limited).count();
    assert_eq!(limited, 3, "the fake answered 429 three times");

    // the gateway drops mid-stream: RESUME, nothing lost, nothing doubled
    let received = |c: &mut XmppClient, prefix: &str| -> Vec<String> {
        c.inbox
            .iter()
            .filter(|e| e.attr("from") == Some(alice.as_str()))
            .filter_map(body)
            .filter(|b| b.starts_with(prefix))
            .collect()
    };
    for i in 0..10 {
        fake.post(&g.random, &g.alice, Post::text(format!("live {i}")));
    }
    let (el, _) = juliet.expect_body(&alice, "live 9").await;
    juliet.inbox.push(el);
    fake.drop_gateway();
    for i in 10..20 {
        fake.post(&g.random, &g.alice, Post::text(format!("live {i}")));
    }
    let (el, _) = juliet.expect_body(&alice, "live 19").await;
    juliet.inbox.push(el);
    let more = juliet.drain(Duration::from_millis(500)).await;
    juliet.inbox = more;
    let got = received(&mut juliet, "live ");
    let want: Vec<String> = (0..20).map(|i| format!("live {i}")).collect();
    assert_eq!(got, want, "each once, in order");
    let (identifies, resumes) = fake.gateway_counts();
    assert_eq!(
        identifies, 1,
        "a dropped gateway is resumed, not re-identified"
    );
    assert!(resumes >= 1);
    juliet.inbox.clear();

    // Causeway stopped, 30 messages posted, Causeway started: all 30, in order
    gw.stop().await;
    for i in 0..30 {
        fake.post(&g.random, &g.alice, Post::text(format!("while away {i}")));
    }
    let gw = start(&s).await;
    let (el, _) = juliet.expect_body(&alice, "while away 29").await;
    juliet.inbox.push(el);
    let more = juliet.drain(Duration::from_millis(500)).await;
    juliet.inbox = more;
    let got = received(&mut juliet, "while away ");
    let want: Vec<String> = (0..30).map(|i| format!("while away {i}")).collect();
    assert_eq!(got, want);

    juliet.close().await;
    admin.close().await;
    gw.stop().await;
}
