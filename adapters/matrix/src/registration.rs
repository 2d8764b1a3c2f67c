//! The appservice registration: the YAML file the homeserver loads, and the tokens
//! Causeway reads back from it (so the two always match).

use crate::MatrixConfig;
use causeway_api::Secret;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Registration {
    pub id: String,
    pub url: String,
    pub as_token: Secret,
    pub hs_token: Secret,
    pub sender_localpart: String,
    pub rate_limited: bool,
    pub receive_ephemeral: bool,
    pub namespaces: Namespaces,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Namespaces {
    #[serde(default)]
    pub users: Vec<Namespace>,
    #[serde(default)]
    pub aliases: Vec<Namespace>,
    #[serde(default)]
    pub rooms: Vec<Namespace>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Namespace {
    pub exclusive: bool,
    pub regex: String,
}

fn token() -> String {
    format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    )
}

/// A regex matching `s` literally.
fn literal(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let special = "\\.+*?()|[]{}^$#&-~".contains(c);
            special
                .then_some('\\')
                .into_iter()
                .chain(std::iter::once(c))
        })
        .collect()
}

impl Registration {
    /// A new registration for `cfg`, reaching Causeway at `url`, with fresh tokens.
    pub fn generate(cfg: &MatrixConfig, url: &str) -> Registration {
        let server = literal(&cfg.server_name);
        let prefix = literal(&cfg.user_prefix);
        Registration {
            id: "causeway".into(),
            url: url.trim_end_matches('/').to_string(),
            as_token: Secret::new(token()),
            hs_token: Secret::new(token()),
            sender_localpart: format!("{}bot", cfg.user_prefix),
            rate_limited: false,
            receive_ephemeral: true,
            namespaces: Namespaces {
                users: vec![Namespace {
                    exclusive: true,
                    regex: format!("@{prefix}.*:{server}"),
                }],
                aliases: vec![Namespace {
                    exclusive: true,
                    regex: format!("#{prefix}.*:{server}"),
                }],
                rooms: Vec::new(),
            },
        }
    }

    pub fn to_yaml(&self) -> String {
        let body = serde_yaml_ng::to_string(self).unwrap_or_default();
        format!(
            "# Causeway's appservice registration, written by `causeway gen-registration`.\n\
             # Give it to the homeserver (Synapse: app_service_config_files) and keep it\n\
             # secret: it holds the tokens both sides authenticate with.\n{body}"
        )
    }

    pub fn read(path: &Path) -> Result<Registration, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read {} ({e}); write it with `causeway gen-registration`",
                path.display()
            )
        })?;
        let reg: Registration = serde_yaml_ng::from_str(&text)
            .map_err(|e| format!("{} is not an appservice registration: {e}", path.display()))?;
        if reg.as_token.is_empty() || reg.hs_token.is_empty() {
            return Err(format!(
                "{}: as_token and hs_token must be set",
                path.display()
            ));
        }
        Ok(reg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_registrations_read_back() {
        let cfg = MatrixConfig {
            homeserver_url: "http://127.0.0.1:8008".into(),
            server_name: "example.org".into(),
            ..MatrixConfig::default()
        };
        let a = Registration::generate(&cfg, "http://127.0.0.1:9000/");
        let b = Registration::generate(&cfg, "http://127.0.0.1:9000");
        assert_ne!(a.as_token.expose(), b.as_token.expose(), "fresh tokens");
        assert_ne!(a.as_token.expose(), a.hs_token.expose());
        assert_eq!(a.url, "http://127.0.0.1:9000");
        assert_eq!(a.namespaces.users[0].regex, "@_xmpp_.*:example\\.org");
        assert_eq!(a.sender_localpart, "_xmpp_bot");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("reg.yaml");
        std::fs::write(&path, a.to_yaml()).expect("write");
        let back = Registration::read(&path).expect("read back");
        assert_eq!(back.hs_token.expose(), a.hs_token.expose());
        assert!(back.receive_ephemeral && !back.rate_limited);
        assert!(
            !format!("{back:?}").contains(a.as_token.expose()),
            "tokens never in Debug"
        );
        assert!(Registration::read(&dir.path().join("missing.yaml"))
            .err()
            .is_some_and(|e| e.contains("gen-registration")));
    }
}
