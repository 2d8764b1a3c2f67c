//! The only module that knows XML and JIDs.

mod addressing;
pub mod component;
pub mod disco;
mod events;
pub mod forms;
pub(crate) mod guard;
pub mod inbound;
pub mod mam;
pub mod messages;
pub mod ns;
pub mod outbound;
pub mod payload;
mod recorder;
mod render;
pub mod service_xml;
pub mod styling;
pub mod vcard;
mod wire;
pub(crate) mod xml;

pub use addressing::{decode_local, direct_portal_local, encode_local};
pub use component::{link, Link, LinkConfig};
pub use events::{bare, split_jid, Addressed, XmppEvent};
pub use outbound::Outgoing;
pub use recorder::{LinkSender, Recorder};
pub(crate) use xml::{set_attr, Attrs};

use crate::bridge::Bridge;
use crate::store::Store;
use inbound::Classified;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the dispatcher needs of the config.
pub struct DispatchConfig {
    /// Longest body accepted from XMPP, in bytes.
    pub max_body: usize,
    /// The XMPP server's own domain: XEP-0356 privileges are taken from it alone, refused
    /// roster pushes from its users alone (a roster push goes to them).
    pub server_domain: String,
}

/// Whether a service query may be answered for its sender: what only the server may say
/// comes from the server; users the gateway does not serve (`bridge.allowed_domains`) get
/// its identity, ping and version, nothing else. `Some(None)`: dropped without an answer.
fn refusal(
    bridge: &Bridge,
    cfg: &DispatchConfig,
    query: &inbound::ServiceQuery,
    from: &str,
) -> Option<Option<(outbound::Condition, &'static str)>> {
    use inbound::ServiceQuery as Q;
    match query {
        Q::Privileges { .. } | Q::RosterRefused { .. } => {
            let bare = bare(from);
            let domain = bare.rsplit_once('@').map_or(bare, |(_, d)| d);
            let by_server = match query {
                Q::Privileges { .. } => bare.eq_ignore_ascii_case(&cfg.server_domain),
                _ => domain.eq_ignore_ascii_case(&cfg.server_domain),
            };
            (!by_server).then(|| {
                tracing::warn!(
                    from,
                    "a notice only the server may send came from elsewhere; ignored"
                );
                None
            })
        }
        Q::MirrorRefused { .. } => None,
        Q::DiscoInfo { .. } | Q::Version | Q::Ping => None,
        _ if !bridge.shared().serves(from) => Some(Some((
            outbound::Condition::Forbidden,
            "this gateway does not serve users of your server",
        ))),
        _ => None,
    }
}

/// The longest a service request may wait on the network before its sender gets an error.
const SERVICE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Users whose service requests are under way at once, and requests waiting per user.
const SERVICE_WORKERS: usize = 256;
const SERVICE_DEPTH: usize = 16;

/// An error answer to a service query (a presence for presences, else an iq).
fn error_to(
    query: &inbound::ServiceQuery,
    from: &str,
    to: &str,
    id: &str,
    condition: outbound::Condition,
    text: &str,
) -> Outgoing {
    error_of(error_kind(query), from, to, id, condition, text)
}

/// The stanza kind an error answer to this query has.
fn error_kind(query: &inbound::ServiceQuery) -> &'static str {
    match query {
        inbound::ServiceQuery::Presence { .. } | inbound::ServiceQuery::PuppetPresence { .. } => {
            "presence"
        }
        _ => "iq",
    }
}

fn error_of(
    kind: &'static str,
    from: &str,
    to: &str,
    id: &str,
    condition: outbound::Condition,
    text: &str,
) -> Outgoing {
    outbound::error_reply(&outbound::ErrorReply {
        kind,
        from: to.to_string(),
        to: from.to_string(),
        id: Some(id.to_string()),
        condition,
        text: (!text.is_empty()).then(|| text.into()),
    })
}

/// A service query answered where its turn comes (`Serial`), within `SERVICE_TIMEOUT`, the
/// answer sent on the link of the domain it was asked of.
fn answer_in_turn(
    bridge: &Bridge,
    store: &Store,
    (net, is_spaces): (&Arc<crate::bridge::NetCtx>, bool),
    query: inbound::ServiceQuery,
    (from, to, id): (String, String, String),
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let (bridge, store, net) = (bridge.clone(), store.clone(), net.clone());
    async move {
        let kind = error_kind(&query);
        let addr = (from.clone(), to.clone(), id.clone());
        let answer = answer_service(&bridge, &store, (&net, is_spaces), query, (from, to, id));
        let replies = match tokio::time::timeout(SERVICE_TIMEOUT, answer).await {
            Ok(replies) => replies,
            Err(_) => {
                tracing::warn!(network = %net.id, "a service request timed out");
                let (from, to, id) = addr;
                vec![error_of(
                    kind,
                    &from,
                    &to,
                    &id,
                    outbound::Condition::RemoteServerTimeout,
                    "the network did not answer in time",
                )]
            }
        };
        let link = if is_spaces {
            net.spaces_service().1
        } else {
            &net.link
        };
        if let Err(e) = link.send(replies).await {
            tracing::warn!(network = %net.id, "cannot answer: {e}");
        }
    }
}

/// The answer to a service query: the basic ones (disco, version, ping) here, the
/// gateway's services from the bridge.
async fn answer_service(
    bridge: &Bridge,
    store: &Store,
    (net, is_spaces): (&Arc<crate::bridge::NetCtx>, bool),
    query: inbound::ServiceQuery,
    (from, to, id): (String, String, String),
) -> Vec<Outgoing> {
    let ctx = disco::ServiceCtx {
        network: &net.id,
        caps: net.network.capabilities(),
        store,
    };
    let basic = if is_spaces {
        Ok(None)
    } else {
        disco::answer(&ctx, &query, &from, &to, &id).await
    };
    match basic {
        Ok(Some(out)) => vec![out],
        Ok(None) => bridge.service(net, is_spaces, query, from, to, id).await,
        Err(e) => {
            // (never the query itself: a registration's carries a password)
            tracing::error!("store error answering a service request: {e}");
            vec![error_to(
                &query,
                &from,
                &to,
                &id,
                outbound::Condition::InternalServerError,
                "",
            )]
        }
    }
}

/// Reads what every component link received and hands it on: service queries are answered
/// here, room and puppet traffic goes to the bridge, bad input gets a stanza error.
pub async fn dispatch(
    mut rx: mpsc::Receiver<(Arc<str>, tokio_xmpp::minidom::Element)>,
    bridge: Bridge,
    store: Store,
    cfg: DispatchConfig,
    shutdown: CancellationToken,
) {
    let services = crate::bridge::serial::Serial::new(SERVICE_WORKERS, SERVICE_DEPTH);
    loop {
        let (domain, el) = tokio::select! {
            _ = shutdown.cancelled() => return,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        let Some((net, is_spaces)) = bridge.net_for_domain(&domain) else {
            continue;
        };
        let classified = inbound::classify(&domain, el, cfg.max_body);
        let replies = match classified {
            Classified::Event(event) if !is_spaces => {
                bridge.xmpp_event(Addressed { domain, event }).await;
                continue;
            }
            Classified::Event(event) => outbound::error_for_event(
                &domain,
                &event,
                outbound::Condition::ItemNotFound,
                Some("this is the spaces service; rooms live on the gateway's domain".into()),
            )
            .into_iter()
            .collect(),
            Classified::Ignore => continue,
            Classified::Answer { id, from, answer } => {
                bridge.shared().personas.answer(&id, &from, answer);
                continue;
            }
            Classified::Reply(out) => vec![out],
            Classified::Service {
                query,
                from,
                to,
                id,
            } => match refusal(&bridge, &cfg, &query, &from) {
                Some(None) => continue,
                Some(Some((condition, text))) => {
                    vec![error_to(&query, &from, &to, &id, condition, text)]
                }
                None => {
                    // answered in a task of its own (registrations log in, commands and
                    // vCards may wait on the network), one at a time per user and domain
                    let key = format!("{domain}|{}", bare(&from));
                    let kind = error_kind(&query);
                    let addr = (from.clone(), to.clone(), id.clone());
                    if services
                        .run(
                            &key,
                            answer_in_turn(
                                &bridge,
                                &store,
                                (&net, is_spaces),
                                query,
                                (from, to, id),
                            ),
                        )
                        .is_ok()
                    {
                        continue;
                    }
                    tracing::warn!(domain = %domain, "service requests refused: too many under way");
                    let (from, to, id) = addr;
                    vec![error_of(
                        kind,
                        &from,
                        &to,
                        &id,
                        outbound::Condition::ResourceConstraint,
                        "too many requests under way; try again",
                    )]
                }
            },
        };
        let link = if is_spaces {
            net.spaces_service().1
        } else {
            &net.link
        };
        if let Err(e) = link.send(replies).await {
            tracing::warn!(domain = %domain, "cannot answer: {e}");
        }
    }
}
