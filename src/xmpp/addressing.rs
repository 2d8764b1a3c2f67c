//! JID localparts for remote ids: reversible, and safe under JID case-folding.
//!
//! `[a-z0-9.-]` stay; `A-Z` become `_` + lowercase; `_` becomes `__`; every other byte
//! becomes `=hh`. The result is a valid, lowercase XMPP localpart, so two remote ids that
//! differ only in case never share a JID.

pub fn encode_local(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 8);
    for b in id.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => out.push(b as char),
            b'A'..=b'Z' => {
                out.push('_');
                out.push(b.to_ascii_lowercase() as char);
            }
            b'_' => out.push_str("__"),
            _ => out.push_str(&format!("={b:02x}")),
        }
    }
    out
}

pub fn decode_local(local: &str) -> Option<String> {
    let bytes = local.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => {
                let next = *bytes.get(i + 1)?;
                match next {
                    b'_' => out.push(b'_'),
                    b'a'..=b'z' => out.push(next.to_ascii_uppercase()),
                    _ => return None,
                }
                i += 2;
            }
            b'=' => {
                let hex = local.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b @ (b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-') => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// The store key of the direct conversation between a puppet (by localpart) and an XMPP
/// user. Never a JID: `+` is a separator `encode_local` never emits, so keys cannot collide.
pub fn direct_portal_local(puppet_local: &str, xmpp_bare: &str) -> String {
    format!("dm+{puppet_local}+{}", encode_local(xmpp_bare))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_safe_encoding_round_trips() {
        let cases = [
            ("lobby", "lobby"),
            ("1045029384756473829", "1045029384756473829"),
            (
                "!OGEhHVWSdvArJzumhm:matrix.org",
                "=21_o_g_eh_h_v_w_sdv_ar_jzumhm=3amatrix.org",
            ),
            ("a_b", "a__b"),
            ("Ab", "_ab"),
            ("é", "=c3=a9"),
            ("", ""),
        ];
        for (id, local) in cases {
            assert_eq!(encode_local(id), local, "encode {id}");
            assert_eq!(decode_local(local).as_deref(), Some(id), "decode {local}");
        }
        assert_ne!(encode_local("Room"), encode_local("room"));
    }

    #[test]
    fn direct_portal_keys_do_not_collide() {
        let a = direct_portal_local("a.b", "c@x");
        let b = direct_portal_local("a", "b.c@x");
        assert_ne!(a, b);
        assert_eq!(
            direct_portal_local("alice", "Juliet@Example.org"),
            "dm+alice+_juliet=40_example.org"
        );
    }

    #[test]
    fn hostile_localparts_do_not_decode() {
        for bad in ["_", "_1", "=", "=zz", "=4", "UPPER", "a b", "=ff"] {
            assert_eq!(decode_local(bad), None, "{bad}");
        }
    }
}
