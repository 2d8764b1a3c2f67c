//! Member lists of guilds larger than what GUILD_CREATE carries: with the GUILD_MEMBERS
//! intent the adapter asks for them (REQUEST_GUILD_MEMBERS) and is ready only once every
//! chunk came; without it, it does not ask and knows the members who speak.

use causeway_api::{EventSink, LoginId, Network, RemoteUserId, RoomKey, Session};
use causeway_discord::{DiscordConfig, DiscordNetwork};
use fake_discord::{FakeDiscord, Options};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Members in the guild: two chunks of GUILD_MEMBERS_CHUNK (1000 each at most).
const MEMBERS: usize = 1234;

struct Guild {
    fake: FakeDiscord,
    id: String,
    channel: String,
    /// (user id, nick)
    members: Vec<(String, String)>,
}

async fn guild() -> Guild {
    guild_with(Options::default()).await
}

async fn guild_with(options: Options) -> Guild {
    let fake = FakeDiscord::start(options).await.expect("fake");
    let g = fake.add_guild("Big");
    let channel = fake.add_channel(&g, "general", 0, None);
    let members = (0..MEMBERS)
        .map(|i| {
            let id = fake.add_user(&format!("user{i}"), None);
            let nick = format!("Member {i}");
            fake.add_member(&g, &id, Some(&nick));
            (id, nick)
        })
        .collect();
    Guild {
        fake,
        id: g,
        channel,
        members,
    }
}

/// The relay session, and the receiver of its events (kept open, not read).
async fn connect(
    fake: &FakeDiscord,
    members_intent: bool,
) -> (Arc<dyn Session>, mpsc::Receiver<causeway_api::Envelope>) {
    let net = DiscordNetwork::new(DiscordConfig {
        token: Some(causeway_api::Secret::new(fake.token())),
        api_url: fake.api_url(),
        cdn_url: fake.cdn_url(),
        members_intent,
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

fn user_lookups(fake: &FakeDiscord) -> usize {
    fake.calls()
        .iter()
        .filter(|c| c.path.starts_with("/users/") && c.path != "/users/@me")
        .count()
}

#[tokio::test]
async fn with_the_members_intent_every_member_is_known_when_connect_returns() {
    let g = guild().await;
    let (session, _events) = connect(&g.fake, true).await;
    assert_eq!(
        g.fake.member_requests(),
        (1, 0),
        "one REQUEST_GUILD_MEMBERS"
    );
    // every member straight from the cache (user_info without a guild: the user's name)
    for (i, (id, _)) in g.members.iter().enumerate() {
        let u = session
            .user_info(&RemoteUserId::new(id.clone()))
            .await
            .expect("user info");
        assert_eq!(u.display_name, format!("user{i}"));
    }
    assert_eq!(
        user_lookups(&g.fake),
        0,
        "no member was looked up over REST"
    );
    let info = session
        .room_info(&RoomKey::shared(g.channel.clone()))
        .await
        .expect("room info");
    assert!(
        info.members.len() >= 999,
        "a room lists up to 1000 members: {}",
        info.members.len()
    );
    // in the room, members go by the nick the guild gives them
    for m in &info.members {
        let nick = g.members.iter().find(|(id, _)| id == m.id.as_str());
        assert_eq!(Some(&m.display_name), nick.map(|(_, n)| n), "{m:?}");
    }
    session.disconnect().await;
}

#[tokio::test]
async fn without_it_nothing_is_asked_and_only_speakers_are_known() {
    let g = guild().await;
    let (session, _events) = connect(&g.fake, false).await;
    assert_eq!(g.fake.member_requests(), (0, 0));
    let info = session
        .room_info(&RoomKey::shared(g.channel.clone()))
        .await
        .expect("room info");
    assert!(
        info.members.is_empty(),
        "GUILD_CREATE of a large guild carries only the bot: {:?}",
        info.members.len()
    );
    session.disconnect().await;
}

#[tokio::test]
async fn a_rate_limited_member_request_is_sent_again_when_discord_says() {
    // Discord allows one whole-list request per guild and session every 30 s; 2 s here
    let g = guild_with(Options {
        member_request_window: std::time::Duration::from_secs(2),
        ..Options::default()
    })
    .await;
    let (session, _events) = connect(&g.fake, true).await;
    assert_eq!(g.fake.member_requests(), (1, 0));
    // the guild comes back from an outage at once: its GUILD_CREATE again, a request again,
    // refused with RATE_LIMITED, then asked again after retry_after (sooner would be refused
    // again: exactly one refusal shows the wait was kept)
    g.fake.guild_outage(&g.id);
    let start = std::time::Instant::now();
    while g.fake.member_requests() != (2, 1) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "member requests (answered, rate limited): {:?}",
            g.fake.member_requests()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    session.disconnect().await;
}
