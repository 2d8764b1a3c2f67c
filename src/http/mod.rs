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
    let mut head = HttpRequest {
        method,
        path,
        query,
        headers,
        body: Vec::new(),
    };
    let answer = match endpoint.admit(&head) {
        Some(refused) => refused,
        None => {
            head.body = match axum::body::to_bytes(req.into_body(), MAX_BODY).await {
                Ok(b) => b.to_vec(),
                Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "too large\n").into_response(),
            };
            endpoint.handle(head).await
        }
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // (what a network serves here may be a user's file: never sniffed, never a page of
    // this origin, as /media)
    (
        status,
        [
            (header::CONTENT_TYPE, answer.content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
            (header::CONTENT_SECURITY_POLICY, "sandbox".to_string()),
        ],
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

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_api::HttpResponse;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Refuses everything without the right header, before reading a body.
    struct Guarded;

    #[async_trait::async_trait]
    impl HttpEndpoint for Guarded {
        fn prefixes(&self) -> Vec<String> {
            vec!["/app/".into()]
        }
        fn admit(&self, head: &HttpRequest) -> Option<HttpResponse> {
            (head.header("authorization") != Some("Bearer ok"))
                .then(|| HttpResponse::json(403, &serde_json::json!({"errcode": "M_FORBIDDEN"})))
        }
        async fn handle(&self, req: HttpRequest) -> HttpResponse {
            HttpResponse::json(200, &serde_json::json!({"read": req.body.len()}))
        }
    }

    /// A request without credentials announcing a 32 MiB body is refused at once: the
    /// body is never waited for (this request never sends it).
    #[tokio::test]
    async fn a_body_is_read_only_after_the_credentials_passed() {
        let store = Store::open("sqlite::memory:", 1).await.expect("store");
        let dir = tempfile::tempdir().expect("tempdir");
        let egress = Arc::new(crate::egress::Egress::new(&Default::default()).expect("egress"));
        let config = crate::config::MediaConfig {
            dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        let media =
            Arc::new(Media::new(&config, "127.0.0.1:1", store.clone(), egress).expect("media"));
        let app = router(Arc::default(), store, media, vec![Arc::new(Guarded)]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let ask = |auth: &'static str, body: &'static str| async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let head = format!(
                "PUT /app/x HTTP/1.1\r\nhost: x\r\n{auth}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                if body.is_empty() { 32 << 20 } else { body.len() }
            );
            s.write_all(head.as_bytes()).await.expect("write");
            let mut answer = Vec::new();
            let read = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                s.read_to_end(&mut answer),
            );
            read.await
                .expect("answered without the body")
                .expect("read");
            String::from_utf8_lossy(&answer).to_string()
        };
        let refused = ask("", "").await;
        assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
        let taken = ask("authorization: Bearer ok\r\n", "{\"a\":1}").await;
        assert!(
            taken.starts_with("HTTP/1.1 200") && taken.contains("\"read\":7"),
            "{taken}"
        );
        let headers = taken.to_ascii_lowercase();
        assert!(
            headers.contains("x-content-type-options: nosniff"),
            "{taken}"
        );
        assert!(
            headers.contains("content-security-policy: sandbox"),
            "{taken}"
        );
    }
}
