//! The tests' file server: files XMPP users link and remote networks share. One per test
//! process, on its own thread (each test has its own runtime), at an address every test
//! config lets through its egress policy (`[egress] allow`), as an operator would allow
//! their server's upload service. Anything else on loopback stays refused.

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// path -> (content type, bytes, streamed without a length)
type Files = Arc<Mutex<HashMap<String, (&'static str, Vec<u8>, bool)>>>;

fn server() -> &'static (String, Files) {
    static SERVER: OnceLock<(String, Files)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let files: Files = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr").to_string();
        let served = files.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
                    let found = served.lock().expect("files").get(uri.path()).cloned();
                    let moved = redirects()
                        .lock()
                        .expect("redirects")
                        .get(uri.path())
                        .cloned();
                    async move {
                        if let Some(to) = moved {
                            return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
                        }
                        let Some((ctype, bytes, chunked)) = found else {
                            return (StatusCode::NOT_FOUND, "no such file").into_response();
                        };
                        let body = if chunked {
                            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                                bytes.chunks(8192).map(|c| Ok(c.to_vec())).collect();
                            Body::from_stream(futures::stream::iter(chunks))
                        } else {
                            Body::from(bytes)
                        };
                        ([(header::CONTENT_TYPE, ctype)], body).into_response()
                    }
                });
                let _ = axum::serve(listener, app).await;
            });
        });
        (addr, files)
    })
}

/// The file server's "host:port" (what test configs allow).
pub fn files_host() -> &'static str {
    &server().0
}

/// Serve `files` (path, content type, bytes, streamed without a length) under a prefix of
/// their own: returns "host:port/prefix", to which the paths are appended.
pub async fn file_server(files: Vec<(&'static str, &'static str, Vec<u8>, bool)>) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let prefix = format!("/f{}", NEXT.fetch_add(1, Ordering::SeqCst));
    let (addr, all) = server();
    let mut all = all.lock().expect("files");
    for (path, ctype, bytes, chunked) in files {
        all.insert(format!("{prefix}{path}"), (ctype, bytes, chunked));
    }
    format!("{addr}{prefix}")
}

/// A path on the file server that redirects (302) to `location`: "host:port/prefix/path".
pub fn file_redirect(path: &str, location: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let full = format!("/r{}{path}", NEXT.fetch_add(1, Ordering::SeqCst));
    let (addr, _) = server();
    redirects()
        .lock()
        .expect("redirects")
        .insert(full.clone(), location.to_string());
    format!("{addr}{full}")
}

fn redirects() -> &'static Mutex<HashMap<String, String>> {
    static REDIRECTS: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    REDIRECTS.get_or_init(Mutex::default)
}

/// An HTTP server on loopback that must never be reached (an internal service): it answers
/// every request and counts them. Returns ("host:port", the count).
pub async fn internal_service() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { ([(header::CONTENT_TYPE, "image/png")], "internal secret") }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}
