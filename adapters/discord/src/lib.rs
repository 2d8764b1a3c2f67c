//! Causeway's Discord adapter, community mode: the community's bot token, guilds as spaces
//! (categories and forums nested), text and announcement channels, threads and forum posts as
//! rooms, Discord members as occupants, XMPP users posting through one webhook per channel
//! under their nick and avatar.
//!
//! serenity provides the models of Discord's payloads; the gateway loop ([`gateway`]) and the
//! rate-limited REST client ([`rest`]) are the adapter's own, because serenity's shard runner
//! hands every event to its own task (per-channel order is lost) and its rate limiter cannot
//! be pointed at anything but discord.com (the tested limiter must be the one that runs).

mod cache;
#[cfg(test)]
mod fuzz;
mod gateway;
mod inbound;
mod markdown;
mod outbound;
mod perms;
mod rest;
mod session;

use async_trait::async_trait;
use causeway_api::*;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

pub use session::DiscordSession;

/// The `[networks.discord]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscordConfig {
    /// The bot token (Developer Portal > Bot). Or `token_file`.
    pub token: Option<Secret>,
    /// A file holding the bot token.
    pub token_file: Option<PathBuf>,
    /// Discord's REST API; change only for a proxy or a test server.
    pub api_url: String,
    /// Discord's CDN (avatars, icons).
    pub cdn_url: String,
    /// Ask for the privileged GUILD_MEMBERS intent: full member lists (REQUEST_GUILD_MEMBERS
    /// at start, `gateway.rs`), member joins and nick changes.
    pub members_intent: bool,
    /// The name of the webhooks Causeway creates (one per channel).
    pub webhook_name: String,
    /// Files up to this size are uploaded to Discord; larger ones are linked.
    pub upload_limit_bytes: u64,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            token: None,
            token_file: None,
            api_url: "https://discord.com/api/v10".into(),
            cdn_url: "https://cdn.discordapp.com".into(),
            members_intent: false,
            webhook_name: "Causeway".into(),
            upload_limit_bytes: 10 << 20,
        }
    }
}

impl DiscordConfig {
    /// The bot token, or the problems with this section as (key, message).
    pub fn token(&self) -> Result<Secret, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let token = match (&self.token, &self.token_file) {
            (Some(t), None) if !t.is_empty() => Some(t.clone()),
            (Some(_), None) => {
                problems.push(("token".into(), "is empty".into()));
                None
            }
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(s) if !s.trim().is_empty() => Some(Secret::new(s.trim())),
                Ok(_) => {
                    problems.push(("token_file".into(), "the file is empty".into()));
                    None
                }
                Err(e) => {
                    problems.push((
                        "token_file".into(),
                        format!("cannot read {}: {e}", path.display()),
                    ));
                    None
                }
            },
            (Some(_), Some(_)) => {
                problems.push(("token".into(), "give token or token_file, not both".into()));
                None
            }
            (None, None) => {
                problems.push((
                    "token".into(),
                    "missing: the bot token (or token_file) is required".into(),
                ));
                None
            }
        };
        for (key, url) in [("api_url", &self.api_url), ("cdn_url", &self.cdn_url)] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                problems.push((key.into(), format!("{url:?} is not an http(s) URL")));
            }
        }
        if self.webhook_name.is_empty()
            || self.webhook_name.chars().count() > 80
            || ["clyde", "discord"]
                .iter()
                .any(|w| self.webhook_name.to_lowercase().contains(w))
        {
            problems.push((
                "webhook_name".into(),
                "1 to 80 characters, without \"clyde\" or \"discord\" (Discord refuses those)"
                    .into(),
            ));
        }
        match (token, problems.is_empty()) {
            (Some(t), true) => Ok(t),
            _ => Err(problems),
        }
    }

    fn intents(&self) -> u64 {
        use gateway::*;
        let base = GUILDS
            | GUILD_MESSAGES
            | GUILD_MESSAGE_REACTIONS
            | GUILD_MESSAGE_TYPING
            | MESSAGE_CONTENT;
        if self.members_intent {
            base | GUILD_MEMBERS
        } else {
            base
        }
    }
}

pub struct DiscordNetwork {
    cfg: DiscordConfig,
    token: Secret,
    caps: Capabilities,
    /// The core's egress policy, for files XMPP users link (`Network::attach`).
    fetch: std::sync::RwLock<Arc<dyn Fetch>>,
}

impl DiscordNetwork {
    /// Fails with (key, message) pairs naming what is wrong in the config section.
    pub fn new(cfg: DiscordConfig) -> Result<Self, Vec<(String, String)>> {
        let token = cfg.token()?;
        Ok(Self {
            cfg,
            token,
            fetch: std::sync::RwLock::new(Arc::new(NoFetch)),
            caps: Capabilities {
                display_name: "Discord".into(),
                edits: true,
                retractions: true,
                reactions: true,
                replies: true,
                typing: true,
                direct_messages: false,
                // Longer texts are split into 2000-character messages, up to ten of them.
                max_text_len: 20_000,
                max_reactions_per_user: None,
            },
        })
    }
}

pub const RELAY_LOGIN: &str = "discord-bot";

#[async_trait]
impl Network for DiscordNetwork {
    fn id(&self) -> NetworkId {
        NetworkId::new("discord")
    }

    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn login_flows(&self) -> &[LoginFlow] {
        &[]
    }

    fn relay_login(&self) -> Option<LoginRecord> {
        Some(LoginRecord {
            login: LoginId::new(RELAY_LOGIN),
            xmpp_user: None,
            remote_name: "Discord bot".into(),
            secrets: self.token.clone(),
        })
    }

    async fn login(&self, _flow: &str, _input: LoginInput) -> Result<LoginRecord, NetworkError> {
        Err(NetworkError::Unsupported(
            "Discord is bridged through the community's bot; there are no personal logins".into(),
        ))
    }

    fn attach(&self, host: Host) {
        *self.fetch.write().unwrap_or_else(|p| p.into_inner()) = host.fetch;
    }

    fn origins(&self) -> Vec<String> {
        [&self.cfg.api_url, &self.cfg.cdn_url]
            .into_iter()
            .filter_map(|u| origin_of(u))
            .collect()
    }

    async fn connect(
        &self,
        login: &LoginRecord,
        events: EventSink,
    ) -> Result<Arc<dyn Session>, NetworkError> {
        let fetch = self.fetch.read().unwrap_or_else(|p| p.into_inner()).clone();
        let session = DiscordSession::connect(
            self.cfg.clone(),
            login.secrets.clone(),
            self.cfg.intents(),
            events,
            fetch,
        )
        .await?;
        Ok(Arc::new(session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_problems_name_their_keys() {
        let cases: Vec<(DiscordConfig, Vec<&str>)> = vec![
            (DiscordConfig::default(), vec!["token"]),
            (
                DiscordConfig {
                    token: Some(Secret::new("t")),
                    token_file: Some("/nonexistent/x".into()),
                    ..DiscordConfig::default()
                },
                vec!["token"],
            ),
            (
                DiscordConfig {
                    token_file: Some("/nonexistent/x".into()),
                    ..DiscordConfig::default()
                },
                vec!["token_file"],
            ),
            (
                DiscordConfig {
                    token: Some(Secret::new("t")),
                    api_url: "discord.com".into(),
                    webhook_name: "My Discord hook".into(),
                    ..DiscordConfig::default()
                },
                vec!["api_url", "webhook_name"],
            ),
        ];
        for (cfg, keys) in cases {
            let got: Vec<String> = cfg
                .token()
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.0)
                .collect();
            assert_eq!(got, keys);
        }
        let ok = DiscordConfig {
            token: Some(Secret::new("secret-token")),
            ..DiscordConfig::default()
        };
        assert_eq!(ok.token().expect("valid").expose(), "secret-token");
        assert!(!format!("{ok:?}").contains("secret-token"));
    }
}
