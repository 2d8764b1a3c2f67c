//! Typed configuration: one TOML file, then `CAUSEWAY__SECTION__KEY` environment overrides.
//! Every problem is reported with the key that has it; unknown keys are rejected.

use causeway_api::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `Debug` names the network sections without their contents (tokens) and shows the store
/// URL without its password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub xmpp: XmppConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub bridge: BridgeConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub egress: EgressConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// One section per network, read by that network's adapter.
    #[serde(default)]
    pub networks: BTreeMap<String, config::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XmppConfig {
    /// The server's component port, "host:port".
    pub server: String,
    /// The server's own domain: pinged to acknowledge the outbox and to detect a dead link.
    /// Defaults to the first component domain minus its first label.
    #[serde(default)]
    pub server_domain: Option<String>,
    #[serde(default = "default_ping_interval")]
    pub ping_interval_secs: u64,
    /// Longest message body accepted from XMPP, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    pub components: Vec<ComponentConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// The component domain the server lets Causeway in on.
    pub domain: String,
    /// The network bridged on this domain (a key of [networks]).
    pub network: String,
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// A second component domain (same secret) for the XEP-0503 spaces pubsub service, e.g.
    /// "spaces.discord.example.org". Unset: spaces are served on `domain` itself.
    #[serde(default)]
    pub spaces_domain: Option<String>,
    /// A pubsub service of the XMPP server (e.g. "spaces.example.org", where Movim looks)
    /// that gets a copy of every linked space; the component must be allowed to create
    /// nodes there.
    #[serde(default)]
    pub spaces_mirror: Option<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub url: String,
    pub max_connections: u32,
    /// The key that seals the network credentials kept in the store (created on first
    /// start). Keep it apart from the store's backups. Unset: `<store file>.key` beside a
    /// SQLite store, else `causeway.key`.
    pub secrets_key_file: Option<PathBuf>,
}

impl StoreConfig {
    /// Where the sealing key is kept (None for an in-memory store: a key of this process).
    pub fn key_file(&self) -> Option<PathBuf> {
        if let Some(f) = &self.secrets_key_file {
            return Some(f.clone());
        }
        if self.url.starts_with("sqlite:") {
            return crate::private::sqlite_path(&self.url).map(|p| {
                let mut s = p.into_os_string();
                s.push(".key");
                PathBuf::from(s)
            });
        }
        Some(PathBuf::from("causeway.key"))
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://causeway.db?mode=rwc".into(),
            max_connections: 4,
            secrets_key_file: None,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &crate::store::redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .field("secrets_key_file", &self.secrets_key_file)
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("xmpp", &self.xmpp)
            .field("store", &self.store)
            .field("http", &self.http)
            .field("bridge", &self.bridge)
            .field("media", &self.media)
            .field("egress", &self.egress)
            .field("log", &self.log)
            .field("runtime", &self.runtime)
            .field("networks", &self.networks.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where Causeway's HTTP listener binds ("" disables it).
    pub listen: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8480".into(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeConfig {
    /// Bare JIDs allowed to run admin commands.
    pub admins: Vec<String>,
    /// XMPP domains whose users may register; empty = the server's own domain.
    pub registration_domains: Vec<String>,
    /// Messages replayed to a client joining a room (unless it asks for fewer).
    pub history_on_join: usize,
    /// Messages fetched from the network into a room's archive when its portal is first used.
    pub backfill: usize,
    /// Days message texts are kept in the archive (0 = for ever); ids stay for edits.
    pub retention_days: u64,
    /// Depth of each portal's queue: back-pressure beyond it.
    pub portal_queue: usize,
    /// Events waiting in portal queues, all portals together (at least twice
    /// `portal_queue` is used): back-pressure beyond it.
    pub backlog: usize,
    /// XMPP domains whose users may use the gateway (join rooms, post, read history, list
    /// rooms, write to puppets); empty = anyone.
    pub allowed_domains: Vec<String>,
    /// Rooms a network shows only to some of its users (a Discord channel hidden from
    /// @everyone) are not bridged, unless listed here; then they are members-only rooms.
    pub private_rooms: Vec<PrivateRoom>,
    /// What one XMPP user may create.
    pub quotas: QuotaConfig,
}

/// What one XMPP user may create (admins too: a quota guards against accidents as well).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// 1:1 conversations with remote users the gateway had none with, per hour.
    pub new_direct_per_hour: usize,
    /// Registrations (logins to a network), per hour.
    pub registrations_per_hour: usize,
    /// Rooms joined at once.
    pub rooms_joined: usize,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            new_direct_per_hour: 30,
            registrations_per_hour: 10,
            rooms_joined: 200,
        }
    }
}

/// A room not everyone on its network may see, opted in by an admin as a members-only room.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoom {
    /// Its JID on the gateway, e.g. "1234567890@discord.example.org".
    pub room: String,
    /// Bare JIDs of the XMPP users who may join it and read its history (admins may too).
    #[serde(default)]
    pub members: Vec<String>,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            admins: Vec::new(),
            registration_domains: Vec::new(),
            history_on_join: 20,
            backfill: 100,
            retention_days: 0,
            portal_queue: 256,
            backlog: 4096,
            allowed_domains: Vec::new(),
            private_rooms: Vec::new(),
            quotas: QuotaConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Where re-hosted files are kept.
    pub dir: PathBuf,
    /// The base URL XMPP clients fetch files from (Causeway's HTTP listener as the world
    /// reaches it, e.g. behind a reverse proxy). Empty: http://<http.listen>.
    pub public_url: String,
    /// Largest file re-hosted, in bytes; bigger ones are announced, not copied.
    pub max_bytes: u64,
    /// Days a copied file is kept (0 = for ever); an avatar still in use is copied again.
    pub retention_days: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("media"),
            public_url: String::new(),
            max_bytes: 25 * 1024 * 1024,
            retention_days: 365,
        }
    }
}

/// What Causeway may fetch (`crate::egress`): only public addresses, but for these.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Hosts fetched even on internal addresses: "host" (any port) or "host:port", e.g.
    /// the XMPP server's HTTP upload service on a private network.
    pub allow: Vec<String>,
    /// The longest a fetch may take, redirects and download included, in seconds.
    pub timeout_secs: u64,
    /// Redirects followed (each checked like the first address).
    pub max_redirects: usize,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            timeout_secs: 120,
            max_redirects: 5,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter, e.g. "info" or "causeway=debug,info".
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Threads running Causeway's tasks; 0 = one on machines with two cores or fewer, else
    /// one per core (`crate::runtime`).
    pub worker_threads: usize,
}

/// A parse error without the lines of the file it quotes (the broken line may be the one
/// holding a token or a password): where it is and what is wrong stay.
fn without_source_lines(message: &str) -> String {
    message
        .lines()
        .filter(|l| {
            let t = l
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit());
            !t.trim_start().starts_with('|')
        })
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A deserialising error without the values it quotes (a value of the wrong type may be a
/// token or a password): what was expected and the key stay.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(['"', '`']) {
        let quote = rest[at..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=at]);
        let after = &rest[at + 1..];
        let Some(end) = after.find(quote) else {
            rest = after;
            break;
        };
        let quoted = &after[..end];
        // a key (`store.url`) names where; anything else is a value
        let key = quote == '`'
            && !quoted.is_empty()
            && quoted
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
        out.push_str(if key { quoted } else { "…" });
        out.push(quote);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn default_ping_interval() -> u64 {
    30
}
fn default_max_body() -> usize {
    64 * 1024
}

/// One thing wrong with the configuration, with the key that has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}", p.key, p.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

const SECTIONS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "xmpp", "store", "http", "bridge", "media", "egress", "log", "runtime", "networks",
        ],
    ),
    (
        "xmpp",
        &[
            "server",
            "server_domain",
            "ping_interval_secs",
            "max_body_bytes",
            "components",
        ],
    ),
    (
        "xmpp.components[]",
        &[
            "domain",
            "network",
            "secret",
            "secret_file",
            "spaces_domain",
            "spaces_mirror",
        ],
    ),
    ("store", &["url", "max_connections", "secrets_key_file"]),
    ("http", &["listen"]),
    (
        "bridge",
        &[
            "admins",
            "registration_domains",
            "history_on_join",
            "backfill",
            "retention_days",
            "portal_queue",
            "backlog",
            "allowed_domains",
            "private_rooms",
            "quotas",
        ],
    ),
    (
        "media",
        &["dir", "public_url", "max_bytes", "retention_days"],
    ),
    ("egress", &["allow", "timeout_secs", "max_redirects"]),
    ("log", &["level"]),
    ("runtime", &["worker_threads"]),
];

/// Report keys no section knows, and take them out so that the rest can still be read and
/// checked (every problem is reported in one pass).
fn unknown_keys(root: &mut config::Map<String, config::Value>, problems: &mut Vec<Problem>) {
    fn check(
        path: &str,
        section: &str,
        table: &mut config::Map<String, config::Value>,
        problems: &mut Vec<Problem>,
    ) {
        let known = SECTIONS
            .iter()
            .find(|(s, _)| *s == section)
            .map(|(_, k)| *k)
            .unwrap_or(&[]);
        table.retain(|key, _| {
            let ok = known.contains(&key.as_str());
            if !ok {
                let key = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                problems.push(Problem {
                    key,
                    message: "unknown key".into(),
                });
            }
            ok
        });
    }
    check("", "", root, problems);
    for (section, _) in SECTIONS
        .iter()
        .filter(|(s, _)| !s.is_empty() && !s.contains('.'))
    {
        if let Some(config::ValueKind::Table(t)) = root.get_mut(*section).map(|v| &mut v.kind) {
            check(section, section, t, problems);
        }
    }
    let components = root.get_mut("xmpp").and_then(|x| match &mut x.kind {
        config::ValueKind::Table(t) => t.get_mut("components"),
        _ => None,
    });
    if let Some(config::ValueKind::Array(items)) = components.map(|v| &mut v.kind) {
        for (i, item) in items.iter_mut().enumerate() {
            if let config::ValueKind::Table(t) = &mut item.kind {
                check(
                    &format!("xmpp.components[{i}]"),
                    "xmpp.components[]",
                    t,
                    problems,
                );
            }
        }
    }
}

impl Config {
    /// Read the file, apply environment overrides, validate. Every problem is collected.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    pub fn load_with_env(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("CAUSEWAY__"))
            .collect();
        let raw = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("CAUSEWAY")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .source(Some(env)),
            )
            .build()
            .map_err(|e| {
                ConfigError(vec![Problem {
                    key: path.display().to_string(),
                    message: without_source_lines(&e.to_string()),
                }])
            })?;
        let mut problems = Vec::new();
        let mut root: config::Map<String, config::Value> = match raw.try_deserialize() {
            Ok(m) => m,
            Err(e) => {
                return Err(ConfigError(vec![Problem {
                    key: "(file)".into(),
                    message: without_values(&e.to_string()),
                }]))
            }
        };
        unknown_keys(&mut root, &mut problems);
        let cleaned = config::Value::new(None, config::ValueKind::Table(root));
        let config = match cleaned.try_deserialize::<Config>() {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(Problem {
                    key: error_key(&e),
                    message: without_values(&e.to_string()),
                });
                None
            }
        };
        let Some(mut config) = config else {
            return Err(ConfigError(problems));
        };
        config.validate(&mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }

    fn validate(&mut self, problems: &mut Vec<Problem>) {
        let mut p = |key: String, message: &str| {
            problems.push(Problem {
                key,
                message: message.into(),
            })
        };
        if self.xmpp.components.is_empty() {
            p("xmpp.components".into(), "at least one component is needed");
        }
        if self
            .xmpp
            .server
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .is_none()
        {
            p("xmpp.server".into(), "must be host:port");
        }
        if self
            .xmpp
            .server_domain
            .as_deref()
            .is_some_and(|d| d.is_empty() || d.contains(['@', '/', ' ']))
        {
            p("xmpp.server_domain".into(), "must be a bare domain");
        }
        if self.xmpp.ping_interval_secs == 0 {
            p("xmpp.ping_interval_secs".into(), "must be at least 1");
        }
        for (i, c) in self.xmpp.components.iter_mut().enumerate() {
            let key = |k: &str| format!("xmpp.components[{i}].{k}");
            if c.domain.is_empty() || c.domain.contains(['@', '/', ' ']) {
                p(key("domain"), "must be a bare domain");
            }
            if !self.networks.contains_key(&c.network) {
                p(key("network"), "names no [networks.<name>] section");
            }
            match (&c.secret, &c.secret_file) {
                (Some(s), None) if !s.is_empty() => {}
                (None, Some(f)) => match std::fs::read_to_string(f) {
                    Ok(s) if !s.trim().is_empty() => c.secret = Some(Secret::new(s.trim())),
                    Ok(_) => p(key("secret_file"), "the file is empty"),
                    Err(e) => p(
                        key("secret_file"),
                        &format!("cannot read {}: {e}", f.display()),
                    ),
                },
                (Some(_), Some(_)) => p(key("secret"), "give secret or secret_file, not both"),
                _ => p(
                    key("secret"),
                    "missing: the component secret (or secret_file) is required",
                ),
            }
        }
        let mut domains: Vec<&str> = self
            .xmpp
            .components
            .iter()
            .map(|c| c.domain.as_str())
            .collect();
        domains.sort_unstable();
        if domains.windows(2).any(|w| w[0] == w[1]) {
            p("xmpp.components".into(), "a domain is listed twice");
        }
        if !(self.store.url.starts_with("sqlite:") || self.store.url.starts_with("postgres")) {
            p("store.url".into(), "must be a sqlite:// or postgres:// URL");
        }
        for (i, entry) in self.egress.allow.iter().enumerate() {
            if !crate::egress::valid_exception(entry) {
                p(
                    format!("egress.allow[{i}]"),
                    "must be a host, host:port or [ipv6]:port",
                );
            }
        }
        if self.egress.timeout_secs == 0 {
            p("egress.timeout_secs".into(), "must be at least 1");
        }
        for (i, r) in self.bridge.private_rooms.iter().enumerate() {
            if !r.room.contains('@') || r.room.contains(['/', ' ']) {
                p(
                    format!("bridge.private_rooms[{i}].room"),
                    "must be a room's bare JID",
                );
            }
            for (k, m) in r.members.iter().enumerate() {
                if m.is_empty() || m.contains(['/', ' ']) {
                    p(
                        format!("bridge.private_rooms[{i}].members[{k}]"),
                        "must be a bare JID",
                    );
                }
            }
        }
        for (i, d) in self.bridge.allowed_domains.iter().enumerate() {
            if d.is_empty() || d.contains(['@', '/', ' ']) {
                p(format!("bridge.allowed_domains[{i}]"), "must be a domain");
            }
        }
        if self.bridge.portal_queue == 0 {
            p("bridge.portal_queue".into(), "must be at least 1");
        }
        if self.bridge.backlog == 0 {
            p("bridge.backlog".into(), "must be at least 1");
        }
        if !self.http.listen.is_empty() && self.http.listen.parse::<std::net::SocketAddr>().is_err()
        {
            p("http.listen".into(), "must be ip:port, or empty to disable");
        }
    }

    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs(self.xmpp.ping_interval_secs)
    }

    /// The domain pinged for outbox acknowledgements and liveness.
    pub fn server_domain(&self) -> String {
        if let Some(d) = &self.xmpp.server_domain {
            return d.clone();
        }
        let first = self
            .xmpp
            .components
            .first()
            .map(|c| c.domain.as_str())
            .unwrap_or("localhost");
        first
            .split_once('.')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_else(|| first.to_string())
    }

    /// A network's own section, for its adapter to deserialise.
    pub fn network_section<T: serde::de::DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, ConfigError> {
        match self.networks.get(name) {
            None => Ok(T::default()),
            Some(v) => v.clone().try_deserialize().map_err(|e| {
                ConfigError(vec![Problem {
                    key: format!("networks.{name}"),
                    message: without_values(&e.to_string()),
                }])
            }),
        }
    }
}

/// The config crate prints "... for key `a.b`": lift the key out for the report.
fn error_key(e: &config::ConfigError) -> String {
    let s = e.to_string();
    s.split("for key `")
        .nth(1)
        .and_then(|r| r.split('`').next())
        .unwrap_or("(config)")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut f = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("tempfile");
        f.write_all(toml.as_bytes()).expect("write");
        Config::load_with_env(
            f.path(),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    const GOOD: &str = r#"
        [xmpp]
        server = "127.0.0.1:5347"
        [[xmpp.components]]
        domain = "demo.localhost"
        network = "demo"
        secret = "s3cret"
        [networks.demo]
        rooms = ["lobby"]
    "#;

    #[test]
    fn good_config_loads_with_defaults() {
        let c = load(GOOD, &[]).expect("loads");
        assert_eq!(c.server_domain(), "localhost");
        assert_eq!(c.xmpp.ping_interval_secs, 30);
        assert_eq!(c.store.url, "sqlite://causeway.db?mode=rwc");
    }

    #[test]
    fn env_overrides_file() {
        let c = load(
            GOOD,
            &[
                ("CAUSEWAY__XMPP__PING_INTERVAL_SECS", "7"),
                ("CAUSEWAY__STORE__URL", "sqlite::memory:"),
            ],
        )
        .expect("loads");
        assert_eq!(c.xmpp.ping_interval_secs, 7);
        assert_eq!(c.store.url, "sqlite::memory:");
    }

    #[test]
    fn every_problem_is_named_by_key() {
        let cases: &[(&str, &[&str])] = &[
            (
                &GOOD.replace("secret = \"s3cret\"", ""),
                &["xmpp.components[0].secret"],
            ),
            (
                &GOOD.replace("[xmpp]", "[xmpp]\nbogus = 1"),
                &["xmpp.bogus"],
            ),
            (
                &format!("{GOOD}\n[store]\nurl = \"x\"\nfoo = 2\n[toplevel]\n"),
                &["store.foo", "toplevel"],
            ),
            (
                &GOOD.replace("network = \"demo\"", "network = \"nope\""),
                &["xmpp.components[0].network"],
            ),
            (&GOOD.replace("5347", "x"), &["xmpp.server"]),
            (
                &GOOD.replace("[xmpp]", "[xmpp]\nserver_domain = \"a b\""),
                &["xmpp.server_domain"],
            ),
            (
                &GOOD.replace("[xmpp]", "[xmpp]\nping_interval_secs = \"soon\""),
                &["xmpp.ping_interval_secs"],
            ),
        ];
        for (toml, keys) in cases {
            let err = load(toml, &[]).expect_err(toml);
            let got: Vec<&str> = err.0.iter().map(|p| p.key.as_str()).collect();
            for k in *keys {
                assert!(got.contains(k), "expected a problem at {k}, got {err}");
            }
        }
    }

    #[test]
    fn secret_from_file_and_never_in_debug() {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        f.write_all(b"from-file\n").expect("write");
        let toml = GOOD.replace(
            "secret = \"s3cret\"",
            &format!("secret_file = {:?}", f.path()),
        );
        let c = load(&toml, &[]).expect("loads");
        let s = c.xmpp.components[0].secret.clone().expect("secret");
        assert_eq!(s.expose(), "from-file");
        assert!(!format!("{c:?}").contains("from-file"));
    }

    /// Network tokens and the store's password never show in `Debug`, and a broken line is
    /// located, never echoed (it may be the one holding a secret).
    #[test]
    fn secrets_never_in_debug_or_errors() {
        let toml = GOOD.replace(
            "rooms = [\"lobby\"]",
            "rooms = [\"lobby\"]\n[networks.discord]\ntoken = \"tok-SECRET-1\"\n[store]\nurl = \"postgres://u:pw-SECRET-2@h/db\"",
        );
        let c = load(&toml, &[]).expect("loads");
        let debug = format!("{c:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("discord"), "{debug}");
        for broken in [
            "token = \"tok-SECRET-3",
            "token = tok-SECRET-3",
            "token = \"a\" \"tok-SECRET-3\"",
            "[networks.discord\ntoken = \"tok-SECRET-3\"",
        ] {
            let toml = format!("{GOOD}\n[networks.discord]\n{broken}\n");
            let e = load(&toml, &[]).expect_err(broken).to_string();
            assert!(!e.contains("SECRET"), "{broken}: {e}");
            assert!(e.contains("line"), "{broken}: where it is: {e}");
        }
        // a value of the wrong type is named by its key, never quoted (it may be a secret)
        for wrong in [
            GOOD.replace("secret = \"s3cret\"", "secret = [\"pw-31337313\"]"),
            format!("{GOOD}\n[store]\nmax_connections = \"pw-31337313\"\n"),
            format!("{GOOD}\n[http]\nlisten = {{ pw = \"31337313\" }}\n"),
        ] {
            let e = load(&wrong, &[]).expect_err("wrong type").to_string();
            assert!(!e.contains("31337313"), "{e}");
        }
    }
}
