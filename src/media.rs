//! Files from the networks, copied and served again by Causeway's HTTP listener: remote
//! links expire (Discord signs them) or need tokens (Matrix authenticated media), so XMPP
//! clients get a link of ours. Copies are bounded in size; what is too big is announced.

use crate::config::MediaConfig;
use crate::egress::Egress;
use crate::store::{MediaRow, Store};
use causeway_api::{Attachment, FetchError, Fetched};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{name} ({size} bytes) is larger than the {max}-byte limit of this gateway")]
    TooLarge { name: String, size: u64, max: u64 },
    /// The text never holds the source URL (it may carry a token).
    #[error("{name} could not be fetched: {reason}")]
    Fetch { name: String, reason: String },
    #[error("{name} could not be kept: {reason}")]
    Keep { name: String, reason: String },
}

pub struct Media {
    dir: PathBuf,
    public_url: String,
    max_bytes: u64,
    egress: Arc<Egress>,
    store: Store,
    /// Copies under way, by source URL: another request for the same file waits for the
    /// first instead of fetching it again (portals coming up together share their
    /// members' avatars).
    copying: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A file name safe in a URL path and a header: letters, digits, '.', '-', '_'.
pub fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let trimmed = cleaned.trim_start_matches('.');
    if trimmed.is_empty() {
        "file".into()
    } else {
        trimmed.to_string()
    }
}

impl Media {
    pub fn new(
        config: &MediaConfig,
        http_listen: &str,
        store: Store,
        egress: Arc<Egress>,
    ) -> std::io::Result<Media> {
        crate::private::dir(&config.dir)?;
        let public_url = if config.public_url.is_empty() {
            format!("http://{http_listen}")
        } else {
            config.public_url.trim_end_matches('/').to_string()
        };
        Ok(Media {
            dir: config.dir.clone(),
            public_url,
            max_bytes: config.max_bytes,
            egress,
            store,
            copying: Mutex::default(),
        })
    }

    /// Whether a URL is one of the files Causeway serves.
    pub fn is_ours(&self, url: &str) -> bool {
        url.strip_prefix(&self.public_url)
            .is_some_and(|rest| rest.starts_with("/media/") && !rest.contains(char::is_whitespace))
    }

    fn url_of(&self, m: &MediaRow) -> String {
        format!(
            "{}/media/{}/{}",
            self.public_url,
            m.token,
            safe_name(&m.name)
        )
    }

    /// Copy a remote file and return it as Causeway serves it; `origins` are the network's
    /// own services (`Network::origins`), which the egress policy lets through.
    pub async fn rehost(
        &self,
        a: &Attachment,
        origins: &[String],
    ) -> Result<Attachment, MediaError> {
        self.copy(a, origins).await.map(|m| self.served(&m))
    }

    /// One of the files Causeway serves, read from where it lies: what a user's link to a
    /// re-hosted file gives, without a request to Causeway's own listener.
    pub async fn read_ours(
        &self,
        url: &str,
        max_bytes: u64,
    ) -> Option<Result<Fetched, FetchError>> {
        if !self.is_ours(url) {
            return None;
        }
        let rest = url.get(self.public_url.len() + "/media/".len()..)?;
        let token = rest.split('/').next()?;
        let Some((row, path)) = self.open(token).await else {
            return Some(Err(FetchError::Failed("no such file here".into())));
        };
        if u64::try_from(row.size).unwrap_or(u64::MAX) > max_bytes {
            return Some(Err(FetchError::TooLarge { max: max_bytes }));
        }
        Some(match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Fetched {
                bytes,
                content_type: Some(row.content_type),
            }),
            Err(e) => Err(FetchError::Failed(e.to_string())),
        })
    }

    /// The copy of a remote file (made now unless Causeway holds one already, or is
    /// making it: then the copy under way).
    async fn copy(&self, a: &Attachment, origins: &[String]) -> Result<MediaRow, MediaError> {
        if let Ok(Some(m)) = self.store.media_by_source(&a.url).await {
            return Ok(m);
        }
        let gate = {
            let mut copying = self.copying.lock().unwrap_or_else(|p| p.into_inner());
            copying.entry(a.url.clone()).or_default().clone()
        };
        let turn = gate.lock().await;
        let copied = match self.store.media_by_source(&a.url).await {
            Ok(Some(m)) => Ok(m),
            _ => self.fetch(a, origins).await,
        };
        drop(turn);
        let mut copying = self.copying.lock().unwrap_or_else(|p| p.into_inner());
        // nobody else holds the gate (only the map and this call): the copy is done
        if Arc::strong_count(&gate) == 2 {
            copying.remove(&a.url);
        }
        copied
    }

    /// Fetch a remote file into the media directory (through the egress policy, within its
    /// time limit) and record it.
    async fn fetch(&self, a: &Attachment, origins: &[String]) -> Result<MediaRow, MediaError> {
        let name = if a.name.is_empty() { "file" } else { &a.name };
        let fail = |reason: String| MediaError::Fetch {
            name: name.to_string(),
            reason,
        };
        let keep = |reason: String| MediaError::Keep {
            name: name.to_string(),
            reason,
        };
        let too_large = |size| MediaError::TooLarge {
            name: name.to_string(),
            size,
            max: self.max_bytes,
        };
        if let Some(size) = a.size.filter(|s| *s > self.max_bytes) {
            return Err(too_large(size));
        }
        // One time limit for the whole copy: redirects, download and all.
        let deadline = tokio::time::Instant::now() + self.egress.timeout();
        let late = || fail("it took too long".into());
        let mut resp = tokio::time::timeout_at(deadline, self.egress.get(&a.url, origins))
            .await
            .map_err(|_| late())?
            .map_err(|e| match e {
                FetchError::TooLarge { .. } => too_large(self.max_bytes + 1),
                e => fail(e.to_string()),
            })?;
        if let Some(len) = resp.content_length().filter(|l| *l > self.max_bytes) {
            return Err(too_large(len));
        }
        let content_type = a
            .content_type
            .clone()
            .or_else(|| {
                resp.headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from)
            })
            .unwrap_or_else(|| "application/octet-stream".into());
        let token = format!("{:032x}", rand::random::<u128>());
        let part = self.dir.join(format!("{token}.part"));
        let mut file = tokio::fs::File::create(&part)
            .await
            .map_err(|e| keep(e.to_string()))?;
        let mut size: u64 = 0;
        let mut hash = Sha1::new();
        let copying = async {
            while let Some(chunk) = resp
                .chunk()
                .await
                .map_err(|e| fail(e.without_url().to_string()))?
            {
                size += chunk.len() as u64;
                if size > self.max_bytes {
                    return Err(too_large(size));
                }
                hash.update(&chunk);
                file.write_all(&chunk)
                    .await
                    .map_err(|e| keep(e.to_string()))?;
            }
            file.flush().await.map_err(|e| keep(e.to_string()))
        };
        let copied: Result<(), MediaError> = match tokio::time::timeout_at(deadline, copying).await
        {
            Ok(done) => done,
            Err(_) => Err(late()),
        };
        drop(file);
        if let Err(e) = copied {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        tokio::fs::rename(&part, self.dir.join(&token))
            .await
            .map_err(|e| keep(e.to_string()))?;
        let row = MediaRow {
            token,
            source: a.url.clone(),
            name: name.to_string(),
            content_type,
            size: i64::try_from(size).unwrap_or(i64::MAX),
            sha1: hex::encode(hash.finalize()),
        };
        self.store
            .add_media(&row)
            .await
            .map_err(|e| keep(e.to_string()))?;
        Ok(row)
    }

    /// Keep bytes Causeway was given (an XMPP user's avatar) and serve them. The same bytes
    /// from the same source are kept once.
    pub async fn keep_bytes(
        &self,
        source: &str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Attachment, MediaError> {
        let keep = |reason: String| MediaError::Keep {
            name: name.to_string(),
            reason,
        };
        if bytes.len() as u64 > self.max_bytes {
            return Err(MediaError::TooLarge {
                name: name.to_string(),
                size: bytes.len() as u64,
                max: self.max_bytes,
            });
        }
        let sha1 = hex::encode(Sha1::digest(&bytes));
        let source = format!("{source}#{sha1}");
        if let Ok(Some(m)) = self.store.media_by_source(&source).await {
            return Ok(self.served(&m));
        }
        let token = format!("{:032x}", rand::random::<u128>());
        let part = self.dir.join(format!("{token}.part"));
        tokio::fs::write(&part, &bytes)
            .await
            .map_err(|e| keep(e.to_string()))?;
        tokio::fs::rename(&part, self.dir.join(&token))
            .await
            .map_err(|e| keep(e.to_string()))?;
        let row = MediaRow {
            token,
            source,
            name: name.to_string(),
            content_type: content_type.to_string(),
            size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            sha1,
        };
        self.store
            .add_media(&row)
            .await
            .map_err(|e| keep(e.to_string()))?;
        Ok(self.served(&row))
    }

    fn served(&self, m: &MediaRow) -> Attachment {
        Attachment {
            url: self.url_of(m),
            name: m.name.clone(),
            content_type: Some(m.content_type.clone()),
            size: u64::try_from(m.size).ok(),
        }
    }

    /// A copy of a remote file, made if needed (avatars): its row and where it lies.
    pub async fn copy_of(
        &self,
        url: &str,
        origins: &[String],
    ) -> Result<(MediaRow, PathBuf), MediaError> {
        let a = Attachment {
            url: url.to_string(),
            name: "avatar".into(),
            content_type: None,
            size: None,
        };
        let m = self.copy(&a, origins).await?;
        let path = self.dir.join(&m.token);
        Ok((m, path))
    }

    /// What is known of a remote file without fetching it.
    pub async fn known(&self, url: &str) -> Option<MediaRow> {
        self.store.media_by_source(url).await.ok().flatten()
    }

    /// Remove copies older than `days` days (rows first: a file is never served without
    /// its row); how many.
    pub async fn expire(&self, days: u64) -> Result<usize, crate::store::StoreError> {
        let days = i64::try_from(days).unwrap_or(i64::MAX / 86_400_000);
        let before = crate::store::now_ms().saturating_sub(days.saturating_mul(86_400_000));
        let mut removed = 0;
        loop {
            let tokens = self.store.forget_media_before(before, 500).await?;
            for t in &tokens {
                if let Err(e) = tokio::fs::remove_file(self.dir.join(t)).await {
                    tracing::debug!(token = %t, "expired copy not removed: {e}");
                }
            }
            removed += tokens.len();
            if tokens.len() < 500 {
                return Ok(removed);
            }
        }
    }

    /// A served file: its row and where it lies.
    pub async fn open(&self, token: &str) -> Option<(MediaRow, PathBuf)> {
        if !token.chars().all(|c| c.is_ascii_hexdigit()) || token.len() != 32 {
            return None;
        }
        let row = self.store.media(token).await.ok()??;
        Some((row, self.dir.join(token)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_asked_for_at_once_is_fetched_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = hits.clone();
        let app = axum::Router::new().route(
            "/{name}",
            axum::routing::get(move || {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    // slow enough for every request below to arrive while it runs
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    ([("content-type", "image/png")], vec![7u8; 64])
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().expect("tempdir");
        let config = MediaConfig {
            dir: dir.path().to_path_buf(),
            ..MediaConfig::default()
        };
        let store = Store::open("sqlite::memory:", 1).await.expect("store");
        let egress = Arc::new(Egress::new(&Default::default()).expect("egress"));
        let media = Arc::new(Media::new(&config, "127.0.0.1:1", store, egress).expect("media"));
        // (the test's file server is on loopback: this network's own, as it were)
        let origins = [addr.to_string()];
        let mut on_disk = 0;
        // (copies asked for, distinct files among them)
        for (asks, files) in [(50, 1), (30, 3)] {
            hits.store(0, Ordering::SeqCst);
            let copies = (0..asks).map(|i| {
                let (media, url, origins) = (
                    media.clone(),
                    format!("http://{addr}/a{files}-{}.png", i % files),
                    origins.clone(),
                );
                tokio::spawn(async move {
                    media
                        .copy_of(&url, &origins)
                        .await
                        .map(|(row, _)| row.token)
                })
            });
            let mut tokens: Vec<String> = Vec::new();
            for c in copies {
                tokens.push(c.await.expect("task").expect("copied"));
            }
            tokens.sort();
            tokens.dedup();
            assert_eq!((hits.load(Ordering::SeqCst), tokens.len()), (files, files));
            on_disk += files;
            assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), on_disk);
            assert!(media.copying.lock().expect("lock").is_empty());
        }
    }

    /// Copies past their retention are removed, rows and files.
    #[tokio::test]
    async fn old_copies_are_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = MediaConfig {
            dir: dir.path().to_path_buf(),
            ..MediaConfig::default()
        };
        let store = Store::open("sqlite::memory:", 1).await.expect("store");
        let egress = Arc::new(Egress::new(&Default::default()).expect("egress"));
        let media = Media::new(&config, "127.0.0.1:1", store, egress).expect("media");
        let kept = media
            .keep_bytes("xmpp:a@x", "a.png", "image/png", vec![1, 2, 3])
            .await
            .expect("kept");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
        assert_eq!(media.expire(1).await.expect("expire"), 0, "a day old: kept");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(media.expire(0).await.expect("expire"), 1);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        assert!(media
            .read_ours(&kept.url, 10)
            .await
            .is_some_and(|r| r.is_err()));
    }

    #[test]
    fn names_are_made_safe() {
        for (raw, safe) in [
            ("photo.png", "photo.png"),
            ("../../etc/passwd", "_.._etc_passwd"),
            ("..", "file"),
            ("", "file"),
            ("naïve café.txt", "na_ve_caf_.txt"),
            ("a\r\nSet-Cookie: x", "a__Set-Cookie__x"),
        ] {
            assert_eq!(safe_name(raw), safe, "{raw:?}");
        }
        assert_eq!(safe_name(&"x".repeat(500)).len(), 100);
    }
}
