//! Network credentials kept in the store (a registered user's password or token) are sealed
//! with a key that is not in the store: ChaCha20-Poly1305 with a fresh nonce each time. A
//! stolen database file (or a backup of it) gives no credential without the key file.
//!
//! The key lives in `[store] secrets_key_file` (by default next to a SQLite store, as
//! `<store>.key`; `causeway.key` for PostgreSQL), created readable by Causeway only on first
//! start. Values written before sealing existed are read as they are and sealed at start-up.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use std::path::Path;

/// How a sealed value starts in the store.
const SEALED: &str = "sealed1:";
const KEY_LEN: usize = 32;

pub struct Sealer {
    key: LessSafeKey,
}

/// (never the key)
impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("a stored secret cannot be opened with this key (was the key file replaced?)")]
    Open,
    #[error("the key file {0}: {1}")]
    KeyFile(String, String),
}

impl Sealer {
    fn from_bytes(bytes: &[u8]) -> Option<Sealer> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes).ok()?;
        Some(Sealer {
            key: LessSafeKey::new(key),
        })
    }

    /// A key for this process only (an in-memory store).
    pub fn ephemeral() -> Sealer {
        let bytes: [u8; KEY_LEN] = rand::random();
        // (32 random bytes are always a valid key)
        Sealer::from_bytes(&bytes).unwrap_or_else(|| unreachable!("a 32-byte key"))
    }

    /// The key in `path` (hex), created with a random one, readable by this user only, if
    /// there is none.
    pub fn load_or_create(path: &Path) -> Result<Sealer, SealError> {
        let fail = |e: &dyn std::fmt::Display| {
            SealError::KeyFile(path.display().to_string(), e.to_string())
        };
        if !path.exists() {
            let bytes: [u8; KEY_LEN] = rand::random();
            crate::private::write(path, hex::encode(bytes).as_bytes()).map_err(|e| fail(&e))?;
        }
        crate::private::file(path).map_err(|e| fail(&e))?;
        let text = std::fs::read_to_string(path).map_err(|e| fail(&e))?;
        let bytes = hex::decode(text.trim()).map_err(|_| fail(&"not a hex key"))?;
        if bytes.len() != KEY_LEN {
            return Err(fail(&format!("a key is {KEY_LEN} bytes")));
        }
        Sealer::from_bytes(&bytes).ok_or_else(|| fail(&"not a usable key"))
    }

    /// `plain` sealed, as the store keeps it.
    pub fn seal(&self, plain: &str) -> String {
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut data = plain.as_bytes().to_vec();
        let nonce = Nonce::assume_unique_for_key(nonce_bytes);
        if self
            .key
            .seal_in_place_append_tag(nonce, Aad::from(SEALED.as_bytes()), &mut data)
            .is_err()
        {
            // (only for inputs of more than 256 GiB)
            return String::new();
        }
        let mut out = nonce_bytes.to_vec();
        out.extend(data);
        format!("{SEALED}{}", hex::encode(out))
    }

    /// What the store keeps, opened: sealed values with the key, older ones as they are.
    pub fn open(&self, stored: &str) -> Result<String, SealError> {
        let Some(sealed) = stored.strip_prefix(SEALED) else {
            return Ok(stored.to_string());
        };
        let bytes = hex::decode(sealed).map_err(|_| SealError::Open)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(SEALED.as_bytes()), &mut data)
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Open)
    }

    /// Whether a stored value is sealed already.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_sealed_and_opened_only_with_their_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cw.key");
        let a = Sealer::load_or_create(&path).expect("created");
        for plain in ["", "hunter2", "pässwörd 🎉", &"x".repeat(10_000)] {
            let sealed = a.seal(plain);
            assert!(Sealer::is_sealed(&sealed));
            if plain.len() >= 7 {
                assert!(!sealed.contains(plain), "{plain}");
            }
            assert_ne!(a.seal(plain), sealed, "a fresh nonce each time");
            assert_eq!(a.open(&sealed).expect("opens"), plain);
        }
        // the same key file gives the same key; another key opens nothing
        let again = Sealer::load_or_create(&path).expect("read");
        assert_eq!(again.open(&a.seal("k")).expect("opens"), "k");
        assert!(Sealer::ephemeral().open(&a.seal("k")).is_err());
        // values from before sealing are read as they are; damaged ones are refused
        assert_eq!(a.open("plain-old").expect("as is"), "plain-old");
        let mut damaged = a.seal("secret");
        let last = damaged.pop();
        damaged.push(if last == Some('0') { '1' } else { '0' });
        assert!(a.open(&damaged).is_err(), "a damaged value is refused");
        assert!(a.open("sealed1:zz").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        std::fs::write(&path, "short").expect("write");
        assert!(Sealer::load_or_create(&path).is_err());
    }
}
