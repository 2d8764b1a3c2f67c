//! Refusals at login are reported as what they are, without the token.

use causeway_api::{EventSink, LoginId, Network, NetworkError, Secret};
use causeway_discord::{DiscordConfig, DiscordNetwork};
use fake_discord::{FakeDiscord, Options};
use tokio::sync::mpsc;

fn network(fake: &FakeDiscord, token: &str) -> DiscordNetwork {
    DiscordNetwork::new(DiscordConfig {
        token: Some(Secret::new(token)),
        api_url: fake.api_url(),
        cdn_url: fake.cdn_url(),
        members_intent: true,
        ..DiscordConfig::default()
    })
    .expect("config")
}

async fn connect(net: &DiscordNetwork) -> Result<(), NetworkError> {
    let login = net.relay_login().expect("relay login");
    let (tx, _rx) = mpsc::channel(16);
    net.connect(&login, EventSink::new(LoginId::new("t"), tx))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_refused_token_is_a_logged_out_error() {
    let fake = FakeDiscord::start(Options::default()).await.expect("fake");
    fake.add_guild("G");
    let wrong = "not-the-token.abc";
    match connect(&network(&fake, wrong)).await {
        Err(NetworkError::LoggedOut(why)) => {
            assert!(why.contains("token"), "{why}");
            assert!(!why.contains(wrong), "the token leaked: {why}");
        }
        other => panic!("expected LoggedOut, got {other:?}"),
    }
}

#[tokio::test]
async fn a_disallowed_intent_names_the_portal_setting() {
    // The application has no privileged intent enabled: the gateway closes with 4014.
    let fake = FakeDiscord::start(Options {
        privileged_intents: 0,
        ..Options::default()
    })
    .await
    .expect("fake");
    fake.add_guild("G");
    match connect(&network(&fake, &fake.token())).await {
        Err(NetworkError::Forbidden(why)) => {
            assert!(
                why.contains("4014") && why.contains("Message Content"),
                "{why}"
            );
            assert!(!why.contains(&fake.token()));
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    let (identifies, _) = fake.gateway_counts();
    assert_eq!(identifies, 0, "refused before any session was made");
}
