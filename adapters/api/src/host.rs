//! What the core offers an adapter besides the event sink: a place to keep small state
//! across restarts, and a way to answer HTTP requests on Causeway's listener (a Matrix
//! appservice is pushed to by its homeserver).

use async_trait::async_trait;
use std::sync::Arc;

/// Small persistent state of one network (ids it must remember: transactions applied,
/// rooms it opened, puppets it registered). Keys are the adapter's; values are text.
#[async_trait]
pub trait KvStore: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<String>, crate::NetworkError>;
    async fn put(&self, key: &str, value: &str) -> Result<(), crate::NetworkError>;
    /// `put`, for a while only: the key is forgotten after `keep` (what is needed only for
    /// some time, so that the state does not grow for ever).
    async fn put_for(
        &self,
        key: &str,
        value: &str,
        keep: std::time::Duration,
    ) -> Result<(), crate::NetworkError> {
        let _ = keep;
        self.put(key, value).await
    }
    /// Store `value` under `key` unless the key exists; true when it was stored.
    async fn put_new(&self, key: &str, value: &str) -> Result<bool, crate::NetworkError>;
    async fn delete(&self, key: &str) -> Result<(), crate::NetworkError>;
}

/// An HTTP request as the core received it.
#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    /// The path, percent-encoded as received.
    pub path: String,
    /// The raw query string, without '?'.
    pub query: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
        }
    }
}

/// Requests under the given path prefixes are handed to the adapter.
#[async_trait]
pub trait HttpEndpoint: Send + Sync {
    /// Path prefixes this endpoint serves, e.g. "/_matrix/app/".
    fn prefixes(&self) -> Vec<String>;
    /// Checked on the request's head (its `body` still empty), before the body is read: a
    /// refusal is the answer at once, so that nobody without the endpoint's credentials
    /// makes Causeway read a large body.
    fn admit(&self, _head: &HttpRequest) -> Option<HttpResponse> {
        None
    }
    async fn handle(&self, req: HttpRequest) -> HttpResponse;
}

/// What the core hands a network at start-up, before any session connects.
#[derive(Clone)]
pub struct Host {
    pub store: Arc<dyn KvStore>,
    /// The one way to fetch a URL a user supplied (the core's egress policy).
    pub fetch: Arc<dyn crate::Fetch>,
}
