//! The contract's conformance suite against the fake Discord of the test kit.

use causeway_api::{Network, Secret};
use causeway_discord::{DiscordConfig, DiscordNetwork};
use fake_discord::{FakeDiscord, Options};
use std::sync::Arc;

async fn network() -> Arc<dyn Network> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAUSEWAY_TEST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let fake = FakeDiscord::start(Options::default())
        .await
        .expect("fake discord");
    let guild = fake.add_guild("Conformance guild");
    fake.add_channel(&guild, "general", 0, None);
    let cfg = DiscordConfig {
        token: Some(Secret::new(fake.token())),
        api_url: fake.api_url(),
        cdn_url: fake.cdn_url(),
        ..DiscordConfig::default()
    };
    Arc::new(DiscordNetwork::new(cfg).expect("config"))
}

causeway_api::conformance_tests!(network());
