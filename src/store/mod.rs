//! The store: the only module that knows SQL. SQLite (embedded default) or PostgreSQL, one
//! code path through sqlx's Any driver, with `$n` placeholders that both accept.

/// A query text built only from constants of this module (column lists, column names).
macro_rules! sql {
    ($($t:tt)*) => {
        sqlx::AssertSqlSafe(format!($($t)*))
    };
}

mod archive;
mod changes;
mod cursor;
mod intent;
mod login;
mod media;
mod message;
mod outbox;
mod portal;
mod puppet;
mod space;
mod state;
mod writer;
pub use state::NetworkState;
use writer::Writer;

pub use archive::{Archived, Page};
pub use changes::OccupantRow;
pub use media::MediaRow;
pub use message::MessageRow;
pub use outbox::{OutboxEntry, Record, Recorded};
pub use portal::{Access, PortalRow};
pub use puppet::PuppetRow;
pub use space::SpaceRow;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::sync::Arc;
use std::time::Duration;

/// A log this long (frames of a page each, 1000 = about 4 MB) is copied between two commits,
/// so that the next one starts it over (`Store::checkpoint`).
const LONG_LOG_FRAMES: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("the store's file: {0}")]
    File(#[from] std::io::Error),
    #[error("{0}")]
    Sealed(#[from] crate::secrets::SealError),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    /// Reads (several connections; WAL lets them run beside the writer).
    pool: AnyPool,
    /// Writes: on a SQLite file one connection of their own (`writer.rs`); on PostgreSQL
    /// the same pool.
    write: Writer,
    backend: Backend,
    /// A SQLite file in WAL mode, checkpointed by `checkpoint`.
    wal: bool,
    /// Puppets as last written (`puppet.rs`): a portal coming up upserts each of its
    /// members, and a thousand portals share the same members.
    puppets: puppet::Written,
    /// Seals the credentials kept in the store (`crate::secrets`); an in-memory store, or
    /// one opened without a key file, gets a key of this process only.
    sealer: Arc<crate::secrets::Sealer>,
}

fn pool_options(backend: Backend, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        // A ping before each use costs SQLite a round trip to its connection thread, for a
        // local file that cannot go away; PostgreSQL connections can.
        .test_before_acquire(backend == Backend::Postgres)
        .after_connect(move |conn, _| Box::pin(writer::prepare(conn, backend, false)))
}

/// Strips credentials from a database URL, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://<redacted>@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

async fn migrate(write: &Writer, backend: Backend) -> Result<()> {
    let mut conn = write.conn().await?;
    match backend {
        Backend::Sqlite => {
            sqlx::migrate!("./migrations/sqlite")
                .run_direct(None, &mut *conn, false)
                .await?
        }
        Backend::Postgres => {
            sqlx::migrate!("./migrations/postgres")
                .run_direct(None, &mut *conn, false)
                .await?
        }
    }
    Ok(())
}

impl Store {
    /// Connect and bring the schema up to date.
    pub async fn open(url: &str, max_connections: u32) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        // An in-memory SQLite database exists per connection: keep exactly one.
        let max = if url.contains(":memory:") {
            1
        } else {
            max_connections.max(1)
        };
        let file_sqlite = backend == Backend::Sqlite && !url.contains(":memory:");
        let (write, pool) = if file_sqlite {
            // (created readable by Causeway only; SQLite gives its side files the same mode)
            crate::private::sqlite_store(url)?;
            let write = Writer::sqlite_file(url).await?;
            migrate(&write, backend).await?;
            (write, pool_options(backend, max).connect(url).await?)
        } else {
            let pool = pool_options(backend, max).connect(url).await?;
            let write = Writer::Pool(pool.clone());
            migrate(&write, backend).await?;
            (write, pool)
        };
        Ok(Store {
            pool,
            write,
            backend,
            wal: file_sqlite,
            puppets: puppet::Written::default(),
            sealer: Arc::new(crate::secrets::Sealer::ephemeral()),
        })
    }

    /// Seal credentials with this key from now on, and seal those kept before sealing
    /// existed. Fails if a sealed credential does not open with it (another key file).
    pub async fn use_sealer(&mut self, sealer: crate::secrets::Sealer) -> Result<()> {
        self.sealer = Arc::new(sealer);
        self.seal_logins().await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Copy the SQLite write-ahead log into the database. Called every second; a no-op on
    /// PostgreSQL and in memory.
    ///
    /// The copy runs beside the writer (PASSIVE: neither waits for it nor blocks it). SQLite
    /// starts the log over only once all of it is copied, which a copy running beside steady
    /// writes never achieves: commits land while it runs, and the log grew without end (38
    /// MB a second under the bridge bench, each write extending the file). So once the log
    /// is long, the few frames written meanwhile are copied between two commits, and the
    /// next commit starts the log over, writing over pages the file already has.
    pub async fn checkpoint(&self) -> Result<()> {
        if !self.wal {
            return Ok(());
        }
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&self.pool)
            .await?;
        let frames: i64 = row.try_get(1)?;
        if frames >= LONG_LOG_FRAMES {
            let mut w = self.write.conn().await?;
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&mut *w)
                .await?;
        }
        Ok(())
    }

    /// Cheap liveness check for /health.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A named random secret, created once and kept (e.g. the occupant-id key).
    pub async fn secret(&self, key: &str) -> Result<String> {
        let fresh: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        sqlx::query("INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(&fresh)
            .execute(&mut *self.write.conn().await?)
            .await?;
        let row = sqlx::query("SELECT value FROM kv WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("value")?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.write.close().await;
    }
}

fn opt_str(row: &AnyRow, col: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A shared-room portal to hang test rows on.
    pub async fn portal(s: &Store, room: &str) -> PortalRow {
        s.upsert_portal(&PortalRow {
            id: 0,
            network: causeway_api::NetworkId::new("demo"),
            key: causeway_api::RoomKey::shared(room),
            jid_local: room.into(),
            kind: causeway_api::RoomKind::Channel,
            xmpp_user: None,
            name: room.into(),
            topic: None,
            space: None,
            avatar: None,
            access: Access::Open,
        })
        .await
        .expect("portal")
    }

    /// Stores to run the store tests on: SQLite (in memory and in a file) always, PostgreSQL when
    /// CAUSEWAY_TEST_POSTGRES names a database (scripts/test starts one).
    pub async fn stores() -> Vec<Store> {
        // A file too: its writer is the store's own connection (`writer.rs`), not a pool.
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let file = format!("sqlite://{}/store.db?mode=rwc", dir.display());
        let mut v = vec![
            Store::open("sqlite::memory:", 1).await.expect("sqlite"),
            Store::open(&file, 2).await.expect("sqlite file"),
        ];
        if let Ok(url) = std::env::var("CAUSEWAY_TEST_POSTGRES") {
            let s = Store::open(&url, 2).await.expect("postgres");
            // Each test gets a clean slate; tests using PostgreSQL run one at a time.
            for t in [
                "space_subscriber",
                "space",
                "user_login",
                "xmpp_user",
                "media",
                "occupant",
                "message",
                "reaction",
                "outbox",
                "portal",
                "puppet",
                "kv",
                "adapter_state",
            ] {
                sqlx::query(sql!("DELETE FROM {t}"))
                    .execute(&mut *s.write.conn().await.expect("writer"))
                    .await
                    .expect("clean");
            }
            v.push(s);
        }
        v
    }

    pub static PG_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        for (url, shown) in [
            ("postgres://u:pw@host/db", "postgres://<redacted>@host/db"),
            (
                "sqlite://causeway.db?mode=rwc",
                "sqlite://causeway.db?mode=rwc",
            ),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }

    #[tokio::test]
    async fn checkpoints_copy_the_whole_log_beside_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
        let s = Store::open(&url, 2).await.expect("open");
        let stanzas: Vec<String> = (0..200).map(|i| format!("<message id='{i}'/>")).collect();
        let record = [Record {
            rows: &[],
            stanzas: &stanzas,
        }];
        s.record_batch("gw.example", &record).await.expect("write");
        // the writer does not checkpoint by itself any more: frames wait in the log
        let before = sqlx::query("PRAGMA wal_checkpoint(NOOP)")
            .fetch_one(&s.pool)
            .await;
        let log = |r: &AnyRow| {
            (
                r.try_get::<i64, _>(1).unwrap_or(-1),
                r.try_get::<i64, _>(2).unwrap_or(-1),
            )
        };
        let (frames, done) = log(&before.expect("noop checkpoint"));
        assert!(
            frames > 0 && done < frames,
            "log {frames}, checkpointed {done}"
        );
        s.checkpoint().await.expect("checkpoint");
        let after = sqlx::query("PRAGMA wal_checkpoint(NOOP)")
            .fetch_one(&s.pool)
            .await
            .expect("noop");
        let (frames, done) = log(&after);
        assert_eq!(frames, done, "everything checkpointed");
    }

    /// A writer that never pauses still gets its log started over: the file stays small.
    /// Started over = the log header's checkpoint sequence number moved on (SQLite bumps it
    /// each time the log restarts), which does not depend on how fast the machine is.
    #[tokio::test]
    async fn the_log_starts_over_under_steady_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
        let s = Store::open(&url, 2).await.expect("open");
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let commits = std::sync::Arc::new(AtomicU64::new(0));
        let writer = tokio::spawn({
            let (s, stop, commits) = (s.clone(), stop.clone(), commits.clone());
            async move {
                let stanzas = vec!["<message>".to_string() + &"x".repeat(2000) + "</message>"];
                while !stop.load(Relaxed) {
                    let record = [Record {
                        rows: &[],
                        stanzas: &stanzas,
                    }];
                    s.record_batch("gw.example", &record).await.expect("write");
                    commits.fetch_add(1, Relaxed);
                }
            }
        });
        let wal = dir.path().join("cw.db-wal");
        // The log header's checkpoint sequence number (bytes 12..16, big-endian).
        let sequence = || -> Option<u32> {
            use std::io::Read;
            let mut head = [0u8; 16];
            std::fs::File::open(&wal).ok()?.read_exact(&mut head).ok()?;
            Some(u32::from_be_bytes([head[12], head[13], head[14], head[15]]))
        };
        let first = sequence();
        let mut last = first;
        let mut largest = 0;
        let started = std::time::Instant::now();
        // At least 3 s, and (on a slow machine, up to 20 s) until the log would have grown
        // to 64 MB without starting over: the checks below then have a wide margin.
        while started.elapsed() < Duration::from_secs(3)
            || (commits.load(Relaxed) < 16 * LONG_LOG_FRAMES as u64
                && started.elapsed() < Duration::from_secs(20))
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
            s.checkpoint().await.expect("checkpoint");
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            last = sequence().or(last);
        }
        stop.store(true, Relaxed);
        writer.await.expect("writer");
        let commits = commits.load(Relaxed);
        let restarts = last.unwrap_or(0).wrapping_sub(first.unwrap_or(0));
        assert!(
            restarts >= 3,
            "the log started over {restarts} times in {commits} commits"
        );
        // Each commit adds at least two pages (4 KiB each: the outbox row's, and
        // sqlite_sequence's) to the log, which without starting over grows past all of that
        // (measured: 288 MB over 17k commits; 12 MB with, 50 MB on a loaded machine).
        let written = commits * 2 * 4096;
        assert!(
            written >= 4 * LONG_LOG_FRAMES as u64 * 4096,
            "too few writes to tell: {commits} commits"
        );
        assert!(
            largest < written / 2,
            "log file grew to {largest} bytes over {commits} commits"
        );
    }

    #[tokio::test]
    async fn secret_is_created_once() {
        let _g = testing::PG_LOCK.lock().await;
        for s in testing::stores().await {
            let a = s.secret("k").await.expect("secret");
            assert_eq!(a.len(), 64);
            assert_eq!(s.secret("k").await.expect("again"), a);
        }
    }
}
