//! Causeway: an XMPP gateway component. `run(config, shutdown)` is the entry point; see
//! ARCHITECTURE.md for the map.

pub mod bridge;
pub mod config;
pub mod egress;
pub mod http;
pub mod media;
pub mod metrics;
pub mod networks;
pub mod private;
pub mod secrets;
pub mod store;
pub mod xmpp;

#[cfg(test)]
mod fuzz;

use bridge::{Bridge, NetCtx};
use causeway_api::{EventSink, Network};
use config::Config;
use metrics::Metrics;
use std::collections::HashMap;
use std::sync::Arc;
use store::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("store ({url}): {source}")]
    Store {
        url: String,
        source: store::StoreError,
    },
    #[error("network {network}: {source}")]
    Network {
        network: String,
        source: causeway_api::NetworkError,
    },
    #[error("HTTP listener on {addr}: {source}")]
    Http {
        addr: String,
        source: std::io::Error,
    },
    #[error("media.dir {dir}: {source}")]
    Media { dir: String, source: std::io::Error },
}

/// Keep SQLite's write-ahead log short, off the writer's path; once an hour, forget message
/// texts, copied files and adapters' state past their retention.
async fn upkeep(
    store: Store,
    media: Arc<media::Media>,
    (retention_days, media_days): (u64, u64),
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut hourly = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {
                if let Err(e) = store.checkpoint().await {
                    tracing::warn!("checkpoint failed: {e}");
                }
            }
            _ = hourly.tick() => {
                if retention_days > 0 {
                    let days = i64::try_from(retention_days).unwrap_or(i64::MAX / 86_400_000);
                    let cutoff = store::now_ms().saturating_sub(days.saturating_mul(86_400_000));
                    match store.forget_texts_before(cutoff).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(messages = n, "texts past retention forgotten"),
                        Err(e) => tracing::warn!("retention not applied: {e}"),
                    }
                }
                if media_days > 0 {
                    match media.expire(media_days).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(files = n, "copied files past retention removed"),
                        Err(e) => tracing::warn!("media retention not applied: {e}"),
                    }
                }
                if let Err(e) = store.forget_intents_before(store::now_ms() - 7 * 86_400_000).await {
                    tracing::warn!("old intents not forgotten: {e}");
                }
                match store.forget_expired_state(store::now_ms()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(keys = n, "adapters' expired state forgotten"),
                    Err(e) => tracing::warn!("adapters' state not pruned: {e}"),
                }
            }
        }
    }
}

/// The runtime `causeway run` uses: one thread for `worker_threads = 1`, else a thread pool.
/// 0 picks: one thread on a machine with two cores or fewer (there the XMPP server and the
/// store's thread need the other core, and a pool's wake-ups between its threads cost more
/// than they bring: BENCHMARKS.md), else one thread per core.
pub fn runtime(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let worker_threads = match worker_threads {
        0 if cores <= 2 => 1,
        n => n,
    };
    if worker_threads == 1 {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
    }
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.thread_name("causeway-worker");
    if worker_threads > 1 {
        b.worker_threads(worker_threads);
    }
    b.enable_all().build()
}

/// Run the gateway until `shutdown` is cancelled, with the networks the config names.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), RunError> {
    let networks = networks::build(&config)?;
    run_with(config, networks, shutdown).await
}

/// Run with networks built by the caller (tests hold a handle on the demo network).
pub async fn run_with(
    config: Config,
    networks: Vec<Arc<dyn Network>>,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    let mut store = Store::open(&config.store.url, config.store.max_connections)
        .await
        .map_err(|source| RunError::Store {
            url: store::redact_url(&config.store.url),
            source,
        })?;
    if let Some(key) = config.store.key_file() {
        let sealer = secrets::Sealer::load_or_create(&key).map_err(|e| RunError::Store {
            url: store::redact_url(&config.store.url),
            source: e.into(),
        })?;
        store
            .use_sealer(sealer)
            .await
            .map_err(|source| RunError::Store {
                url: store::redact_url(&config.store.url),
                source,
            })?;
    }
    let metrics = Arc::new(Metrics::default());
    let egress = egress::Egress::new(&config.egress)
        .map(Arc::new)
        .map_err(|source| RunError::Media {
            dir: config.media.dir.display().to_string(),
            source,
        })?;
    let media = media::Media::new(
        &config.media,
        &config.http.listen,
        store.clone(),
        egress.clone(),
    )
    .map(Arc::new)
    .map_err(|source| RunError::Media {
        dir: config.media.dir.display().to_string(),
        source,
    })?;
    let occupant_key = store
        .secret("occupant-id")
        .await
        .map_err(|source| RunError::Store {
            url: store::redact_url(&config.store.url),
            source,
        })?;
    let by_id: HashMap<String, Arc<dyn Network>> = networks
        .into_iter()
        .map(|n| (n.id().to_string(), n))
        .collect();
    let tracker = TaskTracker::new();
    let (inbound_tx, inbound_rx) = mpsc::channel(1024);
    let mut endpoints = Vec::new();
    for network in by_id.values() {
        network.attach(causeway_api::Host {
            store: Arc::new(store::NetworkState {
                store: store.clone(),
                network: network.id(),
            }),
            fetch: Arc::new(egress::UserFetch {
                egress: egress.clone(),
                media: media.clone(),
            }),
        });
        endpoints.extend(network.http_endpoint());
    }

    let mut nets = Vec::new();
    let mut links = Vec::new();
    let mut event_queues = Vec::new();
    for c in &config.xmpp.components {
        let Some(network) = by_id.get(&c.network).cloned() else {
            return Err(RunError::Config(config::ConfigError(vec![
                config::Problem {
                    key: format!("networks.{}", c.network),
                    message: "this network was not built".into(),
                },
            ])));
        };
        // one link per component domain (the gateway's, and its spaces service's)
        let new_link = |domain: &str| {
            metrics.set_connected(domain, false);
            xmpp::link(
                xmpp::LinkConfig {
                    domain: domain.to_string(),
                    secret: c.secret.clone().unwrap_or_default(),
                    server: config.xmpp.server.clone(),
                    server_domain: config.server_domain(),
                    ping_interval: config.ping_interval(),
                },
                store.clone(),
                metrics.clone(),
                inbound_tx.clone(),
            )
        };
        let (link, sender, recorder) = new_link(&c.domain);
        let login = network.relay_login().ok_or_else(|| RunError::Network {
            network: c.network.clone(),
            source: causeway_api::NetworkError::LoggedOut("no relay login configured".into()),
        })?;
        let (ev_tx, ev_rx) = mpsc::channel(1024);
        let spaces = match &c.spaces_domain {
            Some(d) => {
                let (link, sender, recorder) = new_link(d);
                links.push((link, recorder));
                Some((Arc::<str>::from(d.as_str()), sender))
            }
            None => None,
        };
        let relay = network
            .connect(&login, EventSink::new(login.login.clone(), ev_tx.clone()))
            .await
            .map_err(|source| RunError::Network {
                network: c.network.clone(),
                source,
            })?;
        nets.push(Arc::new(NetCtx {
            id: network.id(),
            network,
            relay,
            domain: c.domain.as_str().into(),
            link: sender,
            spaces,
            events: ev_tx,
            roster_privilege: Default::default(),
            spaces_mirror: c.spaces_mirror.clone(),
        }));
        links.push((link, recorder));
        event_queues.push((c.network.clone(), ev_rx));
    }

    let mut bridge_config = config.bridge.clone();
    if bridge_config.registration_domains.is_empty() {
        bridge_config.registration_domains = vec![config.server_domain()];
    }
    let bridge = Bridge::new(
        bridge::Shared {
            store: store.clone(),
            metrics: metrics.clone(),
            config: bridge_config,
            occupant_key,
            media: media.clone(),
            personas: Default::default(),
            quotas: bridge::quota::Quotas::new(config.bridge.quotas.clone()),
        },
        nets.clone(),
        tracker.clone(),
        shutdown.clone(),
    );
    bridge.sync_rooms().await;
    bridge.start_user_sessions().await;

    if !config.http.listen.is_empty() {
        let listener = tokio::net::TcpListener::bind(&config.http.listen)
            .await
            .map_err(|source| RunError::Http {
                addr: config.http.listen.clone(),
                source,
            })?;
        tracker.spawn(http::serve(
            listener,
            http::router(metrics.clone(), store.clone(), media.clone(), endpoints),
            shutdown.clone(),
        ));
    }
    for (network, rx) in event_queues {
        let b = bridge.clone();
        tracker.spawn(async move {
            b.remote_events(causeway_api::NetworkId::new(network), rx)
                .await
        });
    }
    tracker.spawn(xmpp::dispatch(
        inbound_rx,
        bridge.clone(),
        store.clone(),
        xmpp::DispatchConfig {
            max_body: config.xmpp.max_body_bytes,
            server_domain: config.server_domain(),
        },
        shutdown.clone(),
    ));
    for (link, recorder) in links {
        tracker.spawn(recorder.run(shutdown.clone()));
        tracker.spawn(link.run(shutdown.clone()));
    }
    tracker.spawn(upkeep(
        store.clone(),
        media.clone(),
        (config.bridge.retention_days, config.media.retention_days),
        shutdown.clone(),
    ));
    tracing::info!(
        components = config.xmpp.components.len(),
        "causeway running"
    );

    shutdown.cancelled().await;
    tracker.close();
    for n in &nets {
        n.relay.disconnect().await;
    }
    tracker.wait().await;
    store.close().await;
    tracing::info!("causeway stopped");
    Ok(())
}
