//! Errors an adapter returns, classified by kind so that the core can map them onto XMPP
//! error conditions without knowing the network.

use std::time::Duration;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum NetworkError {
    /// The network cannot do this at all (no such feature).
    #[error("not supported by the network: {0}")]
    Unsupported(String),
    /// The room, user or message does not exist remotely.
    #[error("not found: {0}")]
    NotFound(String),
    /// The login lacks a permission.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The login is no longer valid (token revoked, logged out).
    #[error("logged out: {0}")]
    LoggedOut(String),
    /// Slow down; try again after this long.
    #[error("rate limited, retry after {0:?}")]
    RateLimited(Duration),
    /// The input was refused by the network (too long, bad format).
    #[error("refused: {0}")]
    BadRequest(String),
    /// Anything else: network down, a 5xx, a bug on the other side.
    #[error("{0}")]
    Other(String),
}

impl NetworkError {
    /// A short machine-readable kind, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unsupported(_) => "unsupported",
            Self::NotFound(_) => "not_found",
            Self::Forbidden(_) => "forbidden",
            Self::LoggedOut(_) => "logged_out",
            Self::RateLimited(_) => "rate_limited",
            Self::BadRequest(_) => "bad_request",
            Self::Other(_) => "other",
        }
    }
}
