//! The one egress policy: every URL Causeway fetches that came from outside (a file or an
//! avatar a network hands over, a link an XMPP user sends for upload) goes through here.
//!
//! - only `http` and `https`;
//! - only public addresses are connected to: loopback, private, link-local, unique-local,
//!   shared (CGNAT), multicast, broadcast, unspecified, documentation, Teredo and reserved
//!   ranges are refused, IPv4 inside IPv6 (mapped, translated, NAT64, 6to4) included. An
//!   address in the URL is checked before the request; a name in the client's resolver, on
//!   the addresses it connects to (one look-up, and a name that changes its answer gains
//!   nothing);
//! - redirects are followed here, at most `max_redirects`, each checked the same way;
//! - sizes are capped while reading; time is capped for the whole fetch;
//! - exceptions: hosts the operator allows (`[egress] allow`, e.g. the XMPP server's
//!   upload service on a private address), and, for files a network hands over, that
//!   network's own configured services (`Network::origins`). Never for what users supply.

use crate::config::EgressConfig;
use causeway_api::{FetchError, Fetched};
use reqwest::Url;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => public_v4(a),
        IpAddr::V6(a) => public_v6(a),
    }
}

fn public_v4(a: Ipv4Addr) -> bool {
    let [x, y, z, _] = a.octets();
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_documentation()
        || x == 0 // "this network"
        || (x == 100 && (64..128).contains(&y)) // shared address space (CGNAT)
        || (x == 192 && y == 0 && z == 0) // IETF protocol assignments
        || (x == 198 && (y == 18 || y == 19)) // benchmarking
        || x >= 240) // reserved
}

fn public_v6(a: Ipv6Addr) -> bool {
    if let Some(v4) = a.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let s = a.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        // NAT64 (64:ff9b::/96) and IPv4-translated (::ffff:0:0/96): the IPv4 address
        // inside decides
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] | [0, 0, 0, 0, 0xffff, 0, hi, lo] => {
            return public_v4(embedded(hi, lo))
        }
        // 6to4 (2002::/16)
        [0x2002, hi, lo, ..] => return public_v4(embedded(hi, lo)),
        // local-use NAT64 (64:ff9b:1::/48): a translator of the site's own
        [0x0064, 0xff9b, 0x0001, ..] => return false,
        _ => {}
    }
    !(a.is_unspecified()
        || a.is_loopback()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] & 0xfff0) == 0x3ff0 // documentation (3fff::/20)
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: the host behind it cannot be told
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard
        || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated), ::/96
}

/// A host the policy makes an exception for: "name", "name:port", "1.2.3.4:port",
/// "[::1]:port".
#[derive(Clone, Debug, PartialEq, Eq)]
struct Exception {
    host: String,
    port: Option<u16>,
}

impl Exception {
    fn parse(entry: &str) -> Option<Exception> {
        let entry = entry.trim();
        let entry = entry
            .split_once("://")
            .map_or(entry, |(_, rest)| rest)
            .split('/')
            .next()?;
        // "[v6]:port", "[v6]", "host:port", "host"
        let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
            let (h, after) = rest.split_once(']')?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match entry.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h.to_string(), Some(p)),
                _ => (entry.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse().ok()?),
            None => None,
        };
        (!host.is_empty()).then(|| Exception {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    fn covers(&self, host: &str, port: u16) -> bool {
        self.host == host && self.port.is_none_or(|p| p == port)
    }
}

/// Whether an `[egress] allow` entry can be read.
pub fn valid_exception(entry: &str) -> bool {
    Exception::parse(entry).is_some()
}

/// The host of a URL as the policy compares it: lowercase, IPv6 without brackets.
fn host_of(url: &Url) -> Option<String> {
    let h = url.host_str()?;
    let h = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    Some(h.trim_end_matches('.').to_ascii_lowercase())
}

/// The client's resolver: public addresses only, but for names made exceptions of.
struct Resolver {
    exempt: Arc<RwLock<HashSet<String>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("the address is internal")]
struct Internal;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let exempt = self
            .exempt
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&host);
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| exempt || is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(Box::new(Internal) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub struct Egress {
    client: reqwest::Client,
    allow: Vec<Exception>,
    /// Names the resolver lets through to internal addresses: the operator's and those of
    /// networks' own services met so far.
    exempt: Arc<RwLock<HashSet<String>>>,
    timeout: Duration,
    max_redirects: usize,
}

/// Why a reqwest error happened, without its URL; a refusal by the resolver is a refusal.
fn failed(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = source {
        if s.is::<Internal>() {
            return FetchError::Refused("the address is internal".into());
        }
        source = s.source();
    }
    if e.is_timeout() {
        return FetchError::Failed("it took too long".into());
    }
    FetchError::Failed(e.without_url().to_string())
}

impl Egress {
    pub fn new(config: &EgressConfig) -> std::io::Result<Egress> {
        let allow: Vec<Exception> = config
            .allow
            .iter()
            .filter_map(|e| Exception::parse(e))
            .collect();
        let exempt = Arc::new(RwLock::new(
            allow.iter().map(|e| e.host.clone()).collect::<HashSet<_>>(),
        ));
        let timeout = Duration::from_secs(config.timeout_secs.max(1));
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(Resolver {
                exempt: exempt.clone(),
            }))
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Egress {
            client,
            allow,
            exempt,
            timeout,
            max_redirects: config.max_redirects,
        })
    }

    /// Check one URL against the policy; `trusted` are the network's own services, for
    /// files that network hands over (empty for what users supply).
    async fn check(&self, url: &Url, trusted: &[Exception]) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Refused(format!(
                "{}: links are fetched over http and https only",
                url.scheme()
            )));
        }
        let (Some(host), Some(port)) = (host_of(url), url.port_or_known_default()) else {
            return Err(FetchError::Refused("the link has no host".into()));
        };
        if self
            .allow
            .iter()
            .chain(trusted)
            .any(|e| e.covers(&host, port))
        {
            if trusted.iter().any(|e| e.covers(&host, port)) {
                let mut exempt = self.exempt.write().unwrap_or_else(|p| p.into_inner());
                exempt.insert(host);
            }
            return Ok(());
        }
        let internal = match host.parse::<IpAddr>() {
            Ok(ip) => !is_public(ip),
            // A name: the client's resolver connects to its public addresses only. Names the
            // resolver exempts (the networks' own services) are checked here for this call,
            // which they are no exception of.
            Err(_) if !self.exempted(&host) => false,
            Err(_) => {
                let found = tokio::time::timeout(
                    Duration::from_secs(10),
                    tokio::net::lookup_host((host.as_str(), port)),
                )
                .await
                .map_err(|_| FetchError::Failed("its host name did not resolve in time".into()))?
                .map_err(|_| FetchError::Failed("its host name does not resolve".into()))?;
                let mut any = false;
                let mut internal = false;
                for a in found {
                    any = true;
                    internal |= !is_public(a.ip());
                }
                !any || internal
            }
        };
        if internal {
            return Err(FetchError::Refused(
                "the link points to an internal address".into(),
            ));
        }
        Ok(())
    }

    fn exempted(&self, host: &str) -> bool {
        self.exempt
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(host)
    }

    /// GET a URL under the policy, following redirects: the final response (2xx).
    pub async fn get(
        &self,
        url: &str,
        trusted: &[String],
    ) -> Result<reqwest::Response, FetchError> {
        let trusted: Vec<Exception> = trusted.iter().filter_map(|t| Exception::parse(t)).collect();
        let mut url = Url::parse(url).map_err(|_| FetchError::Refused("not a link".into()))?;
        for _ in 0..=self.max_redirects {
            self.check(&url, &trusted).await?;
            let resp = self.client.get(url.clone()).send().await.map_err(failed)?;
            let status = resp.status();
            if status.is_redirection() {
                let next = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| {
                        FetchError::Failed(format!("a redirect ({status}) to nowhere"))
                    })?;
                url = next;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Failed(format!("the server answered {status}")));
            }
            return Ok(resp);
        }
        Err(FetchError::Failed("too many redirects".into()))
    }

    /// Fetch a whole file of at most `max_bytes`, within the time limit.
    pub async fn fetch(
        &self,
        url: &str,
        max_bytes: u64,
        trusted: &[String],
    ) -> Result<Fetched, FetchError> {
        let work = async {
            let mut resp = self.get(url, trusted).await?;
            if resp.content_length().is_some_and(|l| l > max_bytes) {
                return Err(FetchError::TooLarge { max: max_bytes });
            }
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(failed)? {
                if (bytes.len() + chunk.len()) as u64 > max_bytes {
                    return Err(FetchError::TooLarge { max: max_bytes });
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(Fetched {
                bytes,
                content_type,
            })
        };
        self.limit(work).await
    }

    /// The longest a fetch may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Run a fetch within the overall time limit.
    pub async fn limit<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .unwrap_or_else(|_| Err(FetchError::Failed("it took too long".into())))
    }
}

/// What adapters fetch through (`Host::fetch`): links users supply. Causeway's own
/// re-hosted files are read from disk; everything else goes through the policy with no
/// network's exceptions.
pub struct UserFetch {
    pub egress: Arc<Egress>,
    pub media: Arc<crate::media::Media>,
}

#[async_trait::async_trait]
impl causeway_api::Fetch for UserFetch {
    async fn fetch(&self, url: &str, max_bytes: u64) -> Result<Fetched, FetchError> {
        if let Some(ours) = self.media.read_ours(url, max_bytes).await {
            return ours;
        }
        let got = self.egress.fetch(url, max_bytes, &[]).await;
        if let Err(e @ FetchError::Refused(_)) = &got {
            tracing::warn!("a link a user gave was not fetched: {e}");
        }
        got
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_classified() {
        // (address, public)
        let cases = [
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("2606:4700::1111", true),
            ("127.0.0.1", false),
            ("127.255.0.9", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("172.32.0.1", true),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("224.0.0.1", false),
            ("255.255.255.255", false),
            ("240.0.0.1", false),
            ("192.0.2.1", false),
            ("198.18.0.1", false),
            ("::", false),
            ("::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:8.8.8.8", true),
            ("::127.0.0.1", false),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::808:808", true),
            ("2002:7f00:1::", false),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("2001:db8::1", false),
            // local-use NAT64 (its IPv4 address sits elsewhere: the whole prefix is local)
            ("64:ff9b:1:7f00:0:100:808:808", false),
            ("64:ff9b:1::808:808", false),
            // IPv4-translated (RFC 2765), Teredo, benchmarking, the new documentation range
            ("::ffff:0:7f00:1", false),
            ("::ffff:0:808:808", true),
            ("2001::1", false),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            ("2001:2::1", false),
            ("3fff::1", false),
        ];
        for (a, public) in cases {
            let ip: IpAddr = a.parse().expect(a);
            assert_eq!(is_public(ip), public, "{a}");
        }
    }

    #[test]
    fn exceptions_parse_and_match() {
        // (entry, host, port, covered)
        let cases = [
            ("upload.example.org", "upload.example.org", 443, true),
            ("Upload.Example.org", "upload.example.org", 80, true),
            ("upload.example.org:5281", "upload.example.org", 5281, true),
            ("upload.example.org:5281", "upload.example.org", 443, false),
            (
                "https://upload.example.org:5281/x",
                "upload.example.org",
                5281,
                true,
            ),
            ("127.0.0.1:8080", "127.0.0.1", 8080, true),
            ("127.0.0.1:8080", "127.0.0.1", 8081, false),
            ("[::1]:8080", "::1", 8080, true),
            ("[::1]", "::1", 1, true),
            ("other.example.org", "upload.example.org", 443, false),
        ];
        for (entry, host, port, covered) in cases {
            let e = Exception::parse(entry).expect(entry);
            assert_eq!(e.covers(host, port), covered, "{entry} {host}:{port}");
        }
        for bad in ["", "host:port", ":80", "[::1"] {
            assert_eq!(Exception::parse(bad), None, "{bad:?}");
        }
    }
}
