//! Files that users point at (an XMPP user's XEP-0066 link, an avatar URL) are fetched by
//! the core, through its one egress policy, never by an adapter's own HTTP client: the
//! policy refuses loopback, private and other internal addresses (on every redirect too),
//! caps size while reading and time overall. An adapter gets this through [`crate::Host`].

use async_trait::async_trait;

/// A file fetched through the egress policy.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    /// The content type the server gave, if any.
    pub content_type: Option<String>,
}

/// Why a fetch gave nothing. The text never holds the URL (it may carry a token).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The policy refused the address (internal, not http/https, or a redirect to one).
    #[error("not fetched: {0}")]
    Refused(String),
    #[error("larger than the {max}-byte limit")]
    TooLarge { max: u64 },
    #[error("could not be fetched: {0}")]
    Failed(String),
}

#[async_trait]
pub trait Fetch: Send + Sync {
    /// Fetch `url` (which a user supplied), at most `max_bytes`.
    async fn fetch(&self, url: &str, max_bytes: u64) -> Result<Fetched, FetchError>;
}

/// What an adapter holds before the core attached it: every fetch refused.
pub struct NoFetch;

#[async_trait]
impl Fetch for NoFetch {
    async fn fetch(&self, _url: &str, _max_bytes: u64) -> Result<Fetched, FetchError> {
        Err(FetchError::Refused("this gateway fetches no files".into()))
    }
}

/// "host:port" of an http(s) URL, for [`crate::Network::origins`] (the port its scheme
/// implies when none is given); None for anything else.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port: u16 = match port {
        Some(p) => p.parse().ok()?,
        None => default,
    };
    (!host.is_empty()).then(|| format!("{}:{port}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_of_urls() {
        for (url, origin) in [
            ("https://discord.com/api/v10", Some("discord.com:443")),
            ("http://127.0.0.1:8008", Some("127.0.0.1:8008")),
            ("http://u:p@Host.example:81/x?y", Some("host.example:81")),
            ("http://[::1]:9/", Some("[::1]:9")),
            ("https://[::1]", Some("[::1]:443")),
            ("ftp://x", None),
            ("http://:80", None),
            ("http://h:port", None),
            ("nothing", None),
        ] {
            assert_eq!(super::origin_of(url).as_deref(), origin, "{url}");
        }
    }
}
