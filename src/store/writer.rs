//! Where the store's writes go.
//!
//! On a SQLite file: one connection of its own behind an async lock. Writers queue in Rust
//! instead of in SQLite's busy handler (which sleeps in millisecond steps), and nothing pings
//! it: sqlx's pool pings a connection each time it is given back, which for SQLite is a trip
//! to the connection's thread and back, as dear as a statement (BENCHMARKS.md, 2026-12-01).
//! On PostgreSQL (and in-memory SQLite, which lives in its one pooled connection): the pool.

use super::{Backend, Result, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Connection};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};

#[derive(Clone, Debug)]
pub(super) enum Writer {
    One(Arc<One>),
    Pool(AnyPool),
}

#[derive(Debug)]
pub(super) struct One {
    url: String,
    conn: Arc<Mutex<Option<AnyConnection>>>,
    /// A statement failed in a way that may have left the connection unusable: replace it.
    broken: AtomicBool,
}

/// A connection to write with, held until dropped.
pub(super) struct WriteConn {
    conn: Held,
    /// Inside statements of our own that end a transaction (see `open_transaction`).
    open: bool,
}

enum Held {
    One(
        OwnedMappedMutexGuard<Option<AnyConnection>, AnyConnection>,
        Arc<One>,
    ),
    Pool(PoolConnection<Any>),
}

impl Deref for WriteConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.conn {
            Held::One(c, _) => c,
            Held::Pool(c) => c,
        }
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.conn {
            Held::One(c, _) => c,
            Held::Pool(c) => c,
        }
    }
}

impl WriteConn {
    /// Do not use this connection again (it may be inside a transaction that failed).
    pub(super) fn discard(&mut self) {
        match &mut self.conn {
            Held::One(_, one) => one.broken.store(true, Ordering::Relaxed),
            Held::Pool(c) => c.close_on_drop(),
        }
    }

    /// About to run statements that BEGIN and COMMIT a transaction in one text (sqlx's
    /// `Transaction` does not know of it). Until `closed_transaction`, dropping this (a
    /// cancelled future: sqlx's worker then stops before the COMMIT) discards the connection,
    /// so no later write runs inside a transaction nobody ends.
    pub(super) fn open_transaction(&mut self) {
        self.open = true;
    }

    pub(super) fn closed_transaction(&mut self) {
        self.open = false;
    }
}

impl Drop for WriteConn {
    fn drop(&mut self) {
        if self.open {
            self.discard();
        }
    }
}

/// Settings every SQLite connection gets; `writer` for the one that writes.
pub(super) async fn prepare(
    conn: &mut AnyConnection,
    backend: Backend,
    writer: bool,
) -> std::result::Result<(), sqlx::Error> {
    if backend != Backend::Sqlite {
        return Ok(());
    }
    if writer {
        // Checkpoints run beside the writer (`Store::checkpoint`), not inside a commit,
        // where they stalled a message for milliseconds.
        sqlx::query("PRAGMA wal_autocheckpoint = 0")
            .execute(&mut *conn)
            .await?;
        // A log that grew in a burst is cut back to 64 MiB when it starts over.
        sqlx::query("PRAGMA journal_size_limit = 67108864")
            .execute(&mut *conn)
            .await?;
    }
    for pragma in [
        "PRAGMA busy_timeout = 10000",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
        // Statement journals of multi-row inserts in memory, not in a temporary file
        // created and deleted per statement.
        "PRAGMA temp_store = MEMORY",
    ] {
        sqlx::query(pragma).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn connect_one(url: &str) -> Result<AnyConnection> {
    let options: sqlx::any::AnyConnectOptions = url.parse()?;
    let mut conn = options.connect().await?;
    prepare(&mut conn, Backend::Sqlite, true).await?;
    Ok(conn)
}

impl Writer {
    /// The writer of a SQLite file at `url`, connected (WAL mode set).
    pub(super) async fn sqlite_file(url: &str) -> Result<Writer> {
        let mut conn = connect_one(url).await?;
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(&mut conn)
            .await?;
        Ok(Writer::One(Arc::new(One {
            url: url.to_string(),
            conn: Arc::new(Mutex::new(Some(conn))),
            broken: AtomicBool::new(false),
        })))
    }

    /// Wait for the connection (SQLite file: the one; otherwise from the pool).
    pub(super) async fn conn(&self) -> Result<WriteConn> {
        match self {
            Writer::Pool(p) => Ok(WriteConn {
                conn: Held::Pool(p.acquire().await?),
                open: false,
            }),
            Writer::One(one) => {
                let mut guard = one.conn.clone().lock_owned().await;
                if one.broken.swap(false, Ordering::Relaxed) {
                    if let Some(old) = guard.take() {
                        let _ = old.close().await;
                    }
                }
                if guard.is_none() {
                    *guard = Some(connect_one(&one.url).await?);
                }
                match OwnedMutexGuard::try_map(guard, |c| c.as_mut()) {
                    Ok(c) => Ok(WriteConn {
                        conn: Held::One(c, one.clone()),
                        open: false,
                    }),
                    Err(_) => Err(StoreError::Corrupt("the writer has no connection".into())),
                }
            }
        }
    }

    pub(super) async fn close(&self) {
        match self {
            Writer::Pool(p) => p.close().await,
            Writer::One(one) => {
                if let Some(c) = one.conn.lock().await.take() {
                    let _ = c.close().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Record, Store};

    #[tokio::test]
    async fn a_transaction_left_open_is_not_inherited() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/cw.db?mode=rwc", dir.path().display());
        let s = Store::open(&url, 2).await.expect("open");
        {
            // a group commit cancelled between its BEGIN and its COMMIT
            let mut c = s.write.conn().await.expect("conn");
            c.open_transaction();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *c)
                .await
                .expect("begin");
        }
        let stanzas = ["<message id='a'/>".to_string()];
        let r = s
            .record_batch(
                "gw.example",
                &[Record {
                    rows: &[],
                    stanzas: &stanzas,
                }],
            )
            .await
            .expect("the next write starts clean");
        assert!(r.seq.is_some());
        // committed: the readers see it
        assert_eq!(s.outbox_depth().await.expect("depth"), 1);
    }
}
