//! Causeway's own HTTP listener: the one place for everything HTTP: health, metrics, served
//! media, and the endpoints networks ask for (the Matrix appservice API).

use crate::media::{safe_name, Media};
use crate::metrics::Metrics;
use crate::store::Store;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use causeway_api::{HttpEndpoint, HttpRequest};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
struct Ctx {
    metrics: Arc<Metrics>,
    store: Store,
    media: Arc<Media>,
    endpoints: Arc<Vec<Arc<dyn HttpEndpoint>>>,
}

/// The largest request body a network endpoint takes (an appservice transaction).
const MAX_BODY: usize = 32 << 20;

pub fn router(
    metrics: Arc<Metrics>,
    store: Store,
    media: Arc<Media>,
    endpoints: Vec<Arc<dyn HttpEndpoint>>,
) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/media/{token}/{name}", get(media_file))
        .fallback(network_endpoint)
        .with_state(Ctx {
            metrics,
            store,
            media,
            endpoints: Arc::new(endpoints),
        })
}

/// Requests under a prefix a network asked for go to that network.
async fn network_endpoint(
    State(ctx): State<Ctx>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let path = req.uri().path().to_string();
    let Some(endpoint) = ctx
        .endpoints
        .iter()
        .find(|e| e.prefixes().iter().any(|p| path.starts_with(p.as_str())))
        .cloned()
    else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let method = req.method().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
        Ok(b) => b.to_vec(),
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "too large\n").into_response(),
    };
    let answer = endpoint
        .handle(HttpRequest {
            method,
            path,
            query,
            headers,
            body,
        })
        .await;
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, answer.content_type)],
        answer.body,
    )
        .into_response()
}

/// A re-hosted file, streamed with its content type. Served sandboxed: a file is never
/// a page of this origin.
async fn media_file(
    State(ctx): State<Ctx>,
    Path((token, _name)): Path<(String, String)>,
) -> axum::response::Response {
    let Some((row, path)) = ctx.media.open(&token).await else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(token = %token, "re-hosted file missing: {e}");
            return (StatusCode::NOT_FOUND, "no such file\n").into_response();
        }
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    let headers = [
        (header::CONTENT_TYPE, row.content_type.clone()),
        (header::CONTENT_LENGTH, row.size.to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}\"", safe_name(&row.name)),
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        (header::CONTENT_SECURITY_POLICY, "sandbox".to_string()),
        (
            header::CACHE_CONTROL,
            "public, max-age=31536000, immutable".to_string(),
        ),
    ];
    (headers, body).into_response()
}

async fn health(State(ctx): State<Ctx>) -> impl IntoResponse {
    let streams = ctx.metrics.connected();
    let store_ok = ctx.store.ping().await.is_ok();
    let healthy = store_ok && ctx.metrics.all_connected();
    let streams_json: Vec<String> = streams
        .iter()
        .map(|(d, up)| format!("\"{d}\":{up}"))
        .collect();
    let body = format!(
        "{{\"status\":\"{}\",\"store\":{store_ok},\"streams\":{{{}}}}}\n",
        if healthy { "ok" } else { "unhealthy" },
        streams_json.join(",")
    );
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, [(header::CONTENT_TYPE, "application/json")], body)
}

async fn metrics_text(State(ctx): State<Ctx>) -> impl IntoResponse {
    let depth = ctx.store.outbox_depth().await.unwrap_or(-1);
    let text = ctx.metrics.render(&[(
        "causeway_outbox_depth",
        "stanzas accepted for XMPP and not yet acknowledged",
        depth,
    )]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

pub async fn serve(listener: tokio::net::TcpListener, app: Router, shutdown: CancellationToken) {
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!("HTTP listener failed: {e}");
    }
}
