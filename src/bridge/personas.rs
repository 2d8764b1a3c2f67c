//! How XMPP users look where a relay login posts for them (Discord webhooks): their nick,
//! and their avatar, read from their vCard (XEP-0054) by the component when they join a room,
//! copied into the media store and served by Causeway's HTTP listener.

use crate::media::Media;
use crate::xmpp::{self, LinkSender};
use causeway_api::Persona;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use xmpp::vcard::VcardAnswer;

/// A known avatar is read again after this long (XMPP users change theirs).
const REFRESH: Duration = Duration::from_secs(30 * 60);
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// Users remembered at most (the oldest are forgotten first).
const MAX_KNOWN: usize = 10_000;

#[derive(Default)]
pub struct Personas {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// bare JID -> avatar URL (None: the user has none), and when it was read.
    known: HashMap<String, (Option<String>, Instant)>,
    fetching: HashSet<String>,
    /// Requests under way: id (random: nobody can guess one to answer in another's
    /// place) -> whose vCard was asked for, and who waits for it.
    waiting: HashMap<String, (String, oneshot::Sender<VcardAnswer>)>,
}

impl Personas {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How `bare` is shown under `nick`.
    pub fn persona(&self, bare: &str, nick: &str) -> Persona {
        Persona {
            nick: nick.to_string(),
            avatar_url: self.lock().known.get(bare).and_then(|(u, _)| u.clone()),
            xmpp_user: bare.to_string(),
        }
    }

    /// The answer to one of our requests, taken only from the JID it was asked of.
    pub fn answer(&self, id: &str, from: &str, answer: VcardAnswer) {
        let mut s = self.lock();
        match s.waiting.get(id) {
            Some((asked, _)) if asked.eq_ignore_ascii_case(xmpp::bare(from)) => {
                if let Some((_, tx)) = s.waiting.remove(id) {
                    let _ = tx.send(answer);
                }
            }
            Some(_) => tracing::warn!(
                from,
                "a vCard answer from someone it was not asked of; ignored"
            ),
            None => {}
        }
    }

    /// Read `bare`'s avatar in the background unless it was read lately or is being read.
    pub fn refresh(
        self: &Arc<Self>,
        bare: &str,
        domain: Arc<str>,
        link: LinkSender,
        media: Arc<Media>,
    ) {
        {
            let mut s = self.lock();
            let fresh = s
                .known
                .get(bare)
                .is_some_and(|(_, at)| at.elapsed() < REFRESH);
            if fresh || !s.fetching.insert(bare.to_string()) {
                return;
            }
        }
        let me = self.clone();
        let bare = bare.to_string();
        tokio::spawn(async move {
            let url = me.fetch(&bare, &domain, &link, &media).await;
            let mut s = me.lock();
            s.fetching.remove(&bare);
            if let Some(url) = url {
                if s.known.len() >= MAX_KNOWN {
                    let oldest = s
                        .known
                        .iter()
                        .min_by_key(|(_, (_, at))| *at)
                        .map(|(k, _)| k.clone());
                    if let Some(k) = oldest {
                        s.known.remove(&k);
                    }
                }
                s.known.insert(bare, (url, Instant::now()));
            }
        });
    }

    /// The avatar URL (Some(None): no avatar), or None when the vCard could not be read.
    async fn fetch(
        &self,
        bare: &str,
        domain: &str,
        link: &LinkSender,
        media: &Media,
    ) -> Option<Option<String>> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut s = self.lock();
            let id = format!(
                "{}{:032x}",
                xmpp::vcard::REQUEST_PREFIX,
                rand::random::<u128>()
            );
            s.waiting.insert(id.clone(), (bare.to_string(), tx));
            id
        };
        let ask = xmpp::vcard::request(domain, bare, &id);
        if link.send(vec![ask]).await.is_err() {
            self.lock().waiting.remove(&id);
            return None;
        }
        let answer = tokio::time::timeout(ANSWER_WITHIN, rx).await;
        self.lock().waiting.remove(&id);
        let (bytes, content_type) = match answer.ok()?.ok()? {
            VcardAnswer::Photo(bytes, ctype) => (bytes, ctype),
            VcardAnswer::NoPhoto => return Some(None),
            VcardAnswer::Failed => return None, // asked again at the next join
        };
        match media
            .keep_bytes(
                &format!("xmpp-avatar:{bare}"),
                "avatar.png",
                &content_type,
                bytes,
            )
            .await
        {
            Ok(a) => Some(Some(a.url)),
            Err(e) => {
                tracing::warn!("avatar of an XMPP user not kept: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any user could learn a request's id and answer in another's place (setting their
    /// avatar): an answer counts only from the JID asked.
    #[test]
    fn answers_count_only_from_the_jid_asked() {
        let p = Personas::default();
        let (tx, mut rx) = oneshot::channel();
        p.lock()
            .waiting
            .insert("vc-1".into(), ("juliet@example.org".into(), tx));
        p.answer("vc-1", "mallory@example.org/x", VcardAnswer::NoPhoto);
        assert!(rx.try_recv().is_err(), "not from mallory");
        assert!(p.lock().waiting.contains_key("vc-1"));
        p.answer("vc-1", "Juliet@example.org", VcardAnswer::NoPhoto);
        assert_eq!(rx.try_recv().ok(), Some(VcardAnswer::NoPhoto));
        assert!(p.lock().waiting.is_empty());
    }
}
