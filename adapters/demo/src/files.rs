//! The demo network's own file server (like a network's CDN): user avatars as small PNGs and
//! a couple of files the bot shares. Plain HTTP/1.0 on loopback, GET only.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A solid-colour PNG, `size` x `size` (stored deflate blocks: no compressor needed).
pub fn png(size: u32, rgb: [u8; 3]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend(crc32(&body).to_be_bytes());
    }
    // each scanline: filter byte 0 (none), then the pixels
    let mut line = vec![0u8];
    for _ in 0..size {
        line.extend_from_slice(&rgb);
    }
    let raw = line.repeat(size as usize);
    // zlib stream of stored blocks
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, b) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = b.len() as u16;
        z.extend(len.to_le_bytes());
        z.extend((!len).to_le_bytes());
        z.extend_from_slice(b);
    }
    let (mut a, mut bsum) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        bsum = (bsum + a) % 65_521;
    }
    z.extend(((bsum << 16) | a).to_be_bytes());
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut ihdr = Vec::new();
    ihdr.extend(size.to_be_bytes());
    ihdr.extend(size.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// A stable colour per name.
pub fn colour(name: &str) -> [u8; 3] {
    let h = name.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    [
        (h >> 16) as u8 | 0x40,
        (h >> 8) as u8 | 0x40,
        h as u8 | 0x40,
    ]
}

/// What a path serves: (content type, bytes).
pub fn content(path: &str) -> Option<(&'static str, Vec<u8>)> {
    if let Some(user) = path
        .strip_prefix("/avatar/")
        .and_then(|p| p.strip_suffix(".png"))
    {
        return Some(("image/png", png(48, colour(user))));
    }
    match path {
        "/files/hello.txt" => Some((
            "text/plain; charset=utf-8",
            b"Hello from the demo network.\n".to_vec(),
        )),
        "/files/picture.png" => Some(("image/png", png(256, [0x33, 0x99, 0xcc]))),
        _ => None,
    }
}

/// Serve until the listener fails; each connection answers one GET.
pub async fn serve(listener: TcpListener) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]);
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
            let reply = match content(&path) {
                Some((ctype, body)) => {
                    let mut r = format!(
                        "HTTP/1.0 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend(body);
                    r
                }
                None => b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            };
            let _ = sock.write_all(&reply).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pngs_are_well_formed() {
        let p = png(3, [1, 2, 3]);
        assert_eq!(&p[..8], &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a]);
        assert_eq!(&p[12..16], b"IHDR");
        assert_eq!(&p[p.len() - 8..p.len() - 4], b"IEND");
        // IEND's CRC is a constant of the format
        assert_eq!(&p[p.len() - 4..], &[0xae, 0x42, 0x60, 0x82]);
        assert!(
            png(256, [0; 3]).len() > 196_608,
            "large images span several stored blocks"
        );
        assert_ne!(colour("alice"), colour("bob"));
        assert!(content("/avatar/alice.png").is_some() && content("/etc/passwd").is_none());
    }
}
