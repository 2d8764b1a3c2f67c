//! The component stream's socket, with a way to write stanza text as it is.
//!
//! Stanzas reach the link already serialized (render.rs: the text the outbox keeps), so
//! the link writes that text instead of handing an element to the XML stream to encode
//! again. The XML stream still reads, and writes the handshake, the pings and the footer.
//!
//! Order: text queued with `Raw::push` goes out before anything the XML stream writes after
//! it. That is the stream's order as long as the XML stream has nothing buffered when text
//! is queued, which holds because every write through it (`send`) is flushed at once.
//!
//! What it reads passes `guard.rs` first: line breaks normalized, over-long names and values
//! shortened, elements nested too deep left out, so that no stanza a client can send ends
//! the stream in the parser or overflows the stack.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncBufRead, AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::TcpStream;

use super::guard::Guard;

/// Text waiting to be written, shared by the link and its socket (one task uses both).
#[derive(Clone, Default)]
pub(super) struct Raw(Arc<Mutex<Pending>>);

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    /// Of `bytes`, already written.
    written: usize,
}

impl Raw {
    /// Queue stanza text; it is written by the next flush (or write) of the stream.
    pub(super) fn push(&self, text: &str) {
        self.pending().bytes.extend_from_slice(text.as_bytes());
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        // Nothing panics while holding the lock; a poisoned one still holds whole stanzas.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub(super) struct Wire {
    io: BufStream<TcpStream>,
    raw: Raw,
    guard: Guard,
    /// Bytes read and guarded; `read` of them taken.
    guarded: Vec<u8>,
    read: usize,
}

impl Wire {
    pub(super) fn new(tcp: TcpStream) -> Self {
        Wire {
            io: BufStream::new(tcp),
            raw: Raw::default(),
            guard: Guard::default(),
            guarded: Vec::new(),
            read: 0,
        }
    }

    pub(super) fn raw(&self) -> Raw {
        self.raw.clone()
    }

    /// Write the queued text into the socket's buffer (ahead of anything written after it).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut p = self.raw.pending();
        while p.written < p.bytes.len() {
            let rest = p.bytes.get(p.written..).unwrap_or_default();
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            p.written += n;
        }
        p.bytes.clear();
        p.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Wire {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let got = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = got.len().min(buf.remaining());
        buf.put_slice(got.get(..n).unwrap_or_default());
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncBufRead for Wire {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        loop {
            if this.read < this.guarded.len() {
                return Poll::Ready(Ok(this.guarded.get(this.read..).unwrap_or_default()));
            }
            let got = ready!(Pin::new(&mut this.io).poll_fill_buf(cx))?;
            if got.is_empty() {
                return Poll::Ready(Ok(&[])); // end of stream
            }
            this.guarded.clear();
            this.read = 0;
            this.guard.feed(got, &mut this.guarded);
            let n = got.len();
            Pin::new(&mut this.io).consume(n);
            // (nothing to pass on when all that came was held back, e.g. the LF of a CR LF
            // or part of a long name: read on)
        }
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        self.read += amt;
    }
}

impl AsyncWrite for Wire {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Queued text goes out before what is written after it, each byte once, however much
    /// is queued (more than the socket's buffer) and however it is split.
    #[tokio::test]
    async fn queued_text_goes_out_first_and_once() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut got = String::new();
            s.read_to_string(&mut got).await.expect("read");
            got
        });
        let mut wire = Wire::new(TcpStream::connect(addr).await.expect("connect"));
        let raw = wire.raw();
        let big = "x".repeat(100_000);
        let mut want = String::new();
        for (queued, written) in [("<a/>", "<b/>"), (big.as_str(), "<c/>"), ("", "<d/>")] {
            raw.push(queued);
            wire.write_all(written.as_bytes()).await.expect("write");
            want.push_str(queued);
            want.push_str(written);
        }
        raw.push("<e/>");
        wire.flush().await.expect("flush");
        want.push_str("<e/>");
        wire.shutdown().await.expect("shutdown");
        drop(wire);
        assert_eq!(reader.await.expect("reader"), want);
    }
}
