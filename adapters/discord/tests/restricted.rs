//! Private channels: a channel hidden from @everyone (by its own overwrite, or by the private
//! category it was made in) is `restricted`, lists only the members who may see it, and a
//! change of overwrites or of @everyone's permissions is told as RoomChanged with the new flag.
//! The fake computes who may see what on its side: the adapter's answers are checked against
//! it.

use causeway_api::{
    Envelope, EventSink, LoginId, Network, RemoteEventKind, RoomInfo, RoomKey, Session,
};
use causeway_discord::{DiscordConfig, DiscordNetwork};
use fake_discord::permissions::{DEFAULT, VIEW_CHANNEL};
use fake_discord::{FakeDiscord, Options, Overwrite};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

struct Guild {
    fake: FakeDiscord,
    id: String,
    /// The role allowed into the private places.
    staff: String,
    /// @everyone denied VIEW_CHANNEL, staff allowed, by the channel's own overwrites.
    hidden: String,
    /// Made in a category hidden the same way: synced with it.
    in_category: String,
    open: String,
    /// (with the staff role, without)
    ann: String,
    bob: String,
}

fn private_to(guild: &str, role: &str) -> Vec<Overwrite> {
    vec![
        Overwrite::role(guild, 0, VIEW_CHANNEL),
        Overwrite::role(role, VIEW_CHANNEL, 0),
    ]
}

async fn guild() -> Guild {
    let fake = FakeDiscord::start(Options::default()).await.expect("fake");
    let g = fake.add_guild("Club");
    let staff = fake.add_role_with(&g, "staff", 0);
    let hidden = fake.add_channel(&g, "hidden", 0, None);
    fake.set_overwrites(&hidden, private_to(&g, &staff));
    let category = fake.add_channel(&g, "Staff", 4, None);
    fake.set_overwrites(&category, private_to(&g, &staff));
    let in_category = fake.add_channel(&g, "staff-room", 0, Some(&category));
    let open = fake.add_channel(&g, "general", 0, None);
    let ann = fake.add_user("ann", None);
    let bob = fake.add_user("bob", None);
    for u in [&ann, &bob] {
        fake.add_member(&g, u, None);
    }
    fake.set_member_roles(&g, &ann, &[&staff]);
    Guild {
        fake,
        id: g,
        staff,
        hidden,
        in_category,
        open,
        ann,
        bob,
    }
}

async fn connect(fake: &FakeDiscord) -> (Arc<dyn Session>, mpsc::Receiver<Envelope>) {
    let net = DiscordNetwork::new(DiscordConfig {
        token: Some(causeway_api::Secret::new(fake.token())),
        api_url: fake.api_url(),
        cdn_url: fake.cdn_url(),
        members_intent: true,
        ..DiscordConfig::default()
    })
    .expect("config");
    let login = net.relay_login().expect("relay login");
    let (tx, rx) = mpsc::channel(4096);
    let session = net
        .connect(&login, EventSink::new(LoginId::new("t"), tx))
        .await
        .expect("connect");
    (session, rx)
}

fn key(channel: &str) -> RoomKey {
    RoomKey::shared(channel.to_string())
}

async fn info(session: &Arc<dyn Session>, channel: &str) -> RoomInfo {
    session.room_info(&key(channel)).await.expect("room info")
}

fn member_ids(info: &RoomInfo) -> Vec<String> {
    let mut ids: Vec<String> = info.members.iter().map(|m| m.id.to_string()).collect();
    ids.sort();
    ids
}

/// The next RoomChanged for `channel`, skipping other events.
async fn room_changed(events: &mut mpsc::Receiver<Envelope>, channel: &str) -> RoomInfo {
    let wait = async {
        loop {
            let e = events.recv().await.expect("events");
            match e.event.kind {
                RemoteEventKind::RoomChanged(info) if e.event.room == key(channel) => return info,
                _ => continue,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("a RoomChanged in time")
}

/// Wait until the adapter knows `channel` and its room info satisfies `ok` (gateway events
/// are handled in the background).
async fn until(session: &Arc<dyn Session>, channel: &str, ok: impl Fn(&RoomInfo) -> bool) {
    let start = std::time::Instant::now();
    loop {
        let i = session.room_info(&key(channel)).await;
        if i.as_ref().is_ok_and(&ok) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{i:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn hidden_channels_are_restricted_in_listings_and_room_info() {
    let g = guild().await;
    let (session, _events) = connect(&g.fake).await;
    let rooms = session.rooms().await.expect("rooms");
    let restricted = |c: &str| rooms.iter().find(|r| r.key == key(c)).map(|r| r.restricted);
    assert_eq!(restricted(&g.hidden), Some(true));
    assert_eq!(
        restricted(&g.in_category),
        Some(true),
        "synced with its category"
    );
    assert_eq!(restricted(&g.open), Some(false));
    for (c, want) in [(&g.hidden, true), (&g.in_category, true), (&g.open, false)] {
        assert_eq!(info(&session, c).await.restricted, want, "{c}");
    }
    session.disconnect().await;
}

#[tokio::test]
async fn a_restricted_room_lists_only_who_may_see_it() {
    let g = guild().await;
    let (session, _events) = connect(&g.fake).await;
    let everyone = [g.ann.clone(), g.bob.clone()];
    for c in [&g.hidden, &g.in_category, &g.open] {
        let mut want: Vec<String> = everyone
            .iter()
            .filter(|u| g.fake.can_view(&g.id, c, u))
            .cloned()
            .collect();
        want.sort();
        assert_eq!(member_ids(&info(&session, c).await), want, "{c}");
    }
    assert_eq!(
        member_ids(&info(&session, &g.hidden).await),
        vec![g.ann.clone()]
    );
    // bob gets the role: now he is in it too
    g.fake.set_member_roles(&g.id, &g.bob, &[&g.staff]);
    until(&session, &g.hidden, |i| i.members.len() == 2).await;
    // a thread is seen by those who see its parent
    let thread = g.fake.add_thread(&g.hidden, "plans", &g.ann);
    until(&session, &thread, |i| i.restricted && i.members.len() == 2).await;
    // a private thread in the open channel: restricted, its creator the one member known
    let secret = g.fake.add_private_thread(&g.open, "secret", &g.ann);
    until(&session, &secret, |i| {
        i.restricted && member_ids(i) == vec![g.ann.clone()]
    })
    .await;
    // the guild's owner (GUILD_UPDATE) sees everything, without any role
    let cy = g.fake.add_user("cy", None);
    g.fake.add_member(&g.id, &cy, None);
    g.fake.set_owner(&g.id, &cy);
    until(&session, &g.hidden, |i| member_ids(i).contains(&cy)).await;
    assert!(g.fake.can_view(&g.id, &g.hidden, &cy));
    session.disconnect().await;
}

#[tokio::test]
async fn overwrite_and_role_changes_are_told_with_the_new_flag() {
    let g = guild().await;
    let thread = g.fake.add_thread(&g.open, "plans", &g.ann);
    let (session, mut events) = connect(&g.fake).await;
    // the open channel hidden from @everyone: it, and its thread, become restricted
    g.fake.set_overwrites(&g.open, private_to(&g.id, &g.staff));
    assert!(room_changed(&mut events, &g.open).await.restricted);
    assert!(room_changed(&mut events, &thread).await.restricted);
    // and opened again
    g.fake.set_overwrites(&g.open, Vec::new());
    assert!(!room_changed(&mut events, &g.open).await.restricted);
    // @everyone loses VIEW_CHANNEL in the guild: every room is restricted
    g.fake
        .set_role_permissions(&g.id, &g.id, DEFAULT & !VIEW_CHANNEL);
    assert!(room_changed(&mut events, &g.open).await.restricted);
    assert!(info(&session, &thread).await.restricted);
    session.disconnect().await;
}
