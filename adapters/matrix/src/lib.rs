//! Causeway's Matrix adapter: an application service. Matrix users are reached from XMPP as
//! `localpart%server@matrix.<domain>`; every XMPP user appears on Matrix as a puppet of the
//! appservice (`@<prefix><encoded jid>:<server>`), registered on first use. The homeserver
//! pushes transactions to Causeway's HTTP listener (`/_matrix/app/v1/...`); Causeway acts
//! on Matrix through the client-server API with the appservice token, as its puppets.
//!
//! Built so far: the registration (`causeway gen-registration`), the appservice endpoint
//! (hs_token checked, transactions applied once), puppets, direct reach (an XMPP user writes
//! to any Matrix user; the answer comes back from that user's JID), shared rooms joined by
//! id, alias or matrix.to link, spaces, and messages both ways with HTML, mentions, edits,
//! redactions, reactions, replies, files and typing.

mod actions;
mod appservice;
mod client;
mod convert;
mod events;
#[cfg(test)]
mod fuzz;
mod ids;
mod registration;
mod resync;
mod rooms;
mod session;

use async_trait::async_trait;
use causeway_api::*;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

pub use registration::Registration;

/// The `[networks.matrix]` config section.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatrixConfig {
    /// The homeserver's client-server API, e.g. "https://matrix.example.org".
    pub homeserver_url: String,
    /// The homeserver's name (the part after ':' in user ids).
    pub server_name: String,
    /// The appservice registration, written by `causeway gen-registration` and given to the
    /// homeserver (`app_service_config_files` on Synapse). Its tokens are read from there.
    pub registration: PathBuf,
    /// Where the homeserver reaches Causeway's HTTP listener; empty = http://<http.listen>.
    /// Used by `gen-registration`.
    pub appservice_url: String,
    /// Localpart prefix of the puppets of XMPP users (and of the appservice's own user).
    pub user_prefix: String,
}

impl Default for MatrixConfig {
    fn default() -> Self {
        Self {
            homeserver_url: String::new(),
            server_name: String::new(),
            registration: PathBuf::from("matrix-registration.yaml"),
            appservice_url: String::new(),
            user_prefix: "_xmpp_".into(),
        }
    }
}

impl MatrixConfig {
    /// Problems with this section, as (key, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        if !(self.homeserver_url.starts_with("https://")
            || self.homeserver_url.starts_with("http://"))
        {
            p.push((
                "homeserver_url".into(),
                format!("{:?} is not an http(s) URL", self.homeserver_url),
            ));
        }
        if self.server_name.is_empty() || self.server_name.contains(['/', ' ', '@']) {
            p.push((
                "server_name".into(),
                "the homeserver's name, e.g. \"example.org\"".into(),
            ));
        }
        let ok_prefix = !self.user_prefix.is_empty()
            && self
                .user_prefix
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !ok_prefix {
            p.push((
                "user_prefix".into(),
                "lowercase letters, digits, '.', '_' or '-'".into(),
            ));
        }
        p
    }
}

/// What a puppet (by localpart) was last given: display name and avatar URL.
pub(crate) type PuppetState = (Option<String>, Option<String>);

/// How long a reaction's event id is remembered (to take it back by redacting it): older
/// reactions stay as they are on the other side. Keeps the adapter's state bounded.
pub(crate) const KEEP_REACTION: std::time::Duration = std::time::Duration::from_secs(180 * 86_400);

pub(crate) struct Shared {
    pub cfg: MatrixConfig,
    pub reg: Registration,
    pub http: reqwest::Client,
    pub store: OnceLock<Arc<dyn KvStore>>,
    /// The core's egress policy: the only way to fetch a file an XMPP user links.
    pub fetch: OnceLock<Arc<dyn Fetch>>,
    /// The relay session's event sink, once connected.
    pub sink: RwLock<Option<EventSink>>,
    /// Who was typing in each room at the last `m.typing`.
    pub typing: Mutex<HashMap<String, HashSet<String>>>,
    /// Members' display names per room, longest first, for `@Name` mentions: (name, user id).
    pub names: Mutex<HashMap<String, Vec<(String, String)>>>,
    /// The last event handed on per room, to find gaps after a homeserver crash.
    pub last_seen: Mutex<HashMap<String, String>>,
    pub health: Mutex<resync::Health>,
    /// What the store holds of rooms and puppets, read once: every event and every send
    /// looks them up (the store stays the record across restarts).
    pub records: Mutex<HashMap<String, rooms::Record>>,
    pub puppets: Mutex<HashMap<String, PuppetState>>,
    pub resync_lock: tokio::sync::Mutex<()>,
}

impl Shared {
    pub fn store(&self) -> Result<&Arc<dyn KvStore>, NetworkError> {
        self.store
            .get()
            .ok_or_else(|| NetworkError::Other("the Matrix adapter has no state store".into()))
    }

    /// The egress policy (every fetch refused before the core attached it).
    pub fn fetcher(&self) -> Arc<dyn Fetch> {
        self.fetch
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::new(NoFetch))
    }
}

pub struct MatrixNetwork {
    shared: Arc<Shared>,
    caps: Capabilities,
}

pub const RELAY_LOGIN: &str = "matrix-appservice";

impl MatrixNetwork {
    /// Fails with (key, message) pairs naming what is wrong in the section or registration.
    pub fn new(cfg: MatrixConfig) -> Result<Self, Vec<(String, String)>> {
        let problems = cfg.problems();
        if !problems.is_empty() {
            return Err(problems);
        }
        let reg = Registration::read(&cfg.registration)
            .map_err(|e| vec![("registration".to_string(), e)])?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| vec![("homeserver_url".to_string(), e.to_string())])?;
        Ok(Self {
            shared: Arc::new(Shared {
                cfg,
                reg,
                http,
                store: OnceLock::new(),
                fetch: OnceLock::new(),
                sink: RwLock::new(None),
                typing: Mutex::new(HashMap::new()),
                last_seen: Mutex::new(HashMap::new()),
                names: Mutex::new(HashMap::new()),
                health: Mutex::new(resync::Health::default()),
                records: Mutex::new(HashMap::new()),
                puppets: Mutex::new(HashMap::new()),
                resync_lock: tokio::sync::Mutex::new(()),
            }),
            caps: Capabilities {
                display_name: "Matrix".into(),
                edits: true,
                retractions: true,
                reactions: true,
                replies: true,
                typing: true,
                direct_messages: true,
                max_text_len: 60_000,
                max_reactions_per_user: None,
            },
        })
    }
}

#[async_trait]
impl Network for MatrixNetwork {
    fn id(&self) -> NetworkId {
        NetworkId::new("matrix")
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
            remote_name: "Matrix appservice".into(),
            secrets: Secret::new(self.shared.reg.as_token.expose()),
        })
    }

    async fn login(&self, _flow: &str, _input: LoginInput) -> Result<LoginRecord, NetworkError> {
        Err(NetworkError::Unsupported(
            "Matrix users are reached through the appservice; personal logins are not offered yet"
                .into(),
        ))
    }

    fn attach(&self, host: Host) {
        let _ = self.shared.store.set(host.store);
        let _ = self.shared.fetch.set(host.fetch);
    }

    fn origins(&self) -> Vec<String> {
        [&self.shared.cfg.homeserver_url, &self.shared.reg.url]
            .into_iter()
            .filter_map(|u| origin_of(u))
            .collect()
    }

    fn http_endpoint(&self) -> Option<Arc<dyn HttpEndpoint>> {
        Some(Arc::new(appservice::Endpoint {
            shared: self.shared.clone(),
        }))
    }

    async fn connect(
        &self,
        _login: &LoginRecord,
        events: EventSink,
    ) -> Result<Arc<dyn Session>, NetworkError> {
        let session = session::MatrixSession::connect(self.shared.clone(), events).await?;
        Ok(Arc::new(session))
    }
}
