//! JID localparts for remote ids: reversible, and safe under JID case-folding.
//!
//! `[a-z0-9.-]` and `%` stay (`user%server@gateway` is the usual gateway form, Matrix users
//! are `alice%matrix.org@matrix.<domain>`); `A-Z` become `_` + lowercase; `_` becomes `__`; the characters
//! XEP-0106 escapes (space " & ' / : < > @ \) become its `\hh` escapes, so what a
//! XEP-0106-aware client builds from a typed address is the same JID; every other byte
//! becomes `=hh`. The result is a valid, lowercase XMPP localpart, so two remote ids that
//! differ only in case never share a JID. Decoding accepts the canonical form only: one
//! remote id, one JID.

/// The characters XEP-0106 escapes, with their escapes.
const XEP0106: [(u8, &str); 10] = [
    (b' ', "\\20"),
    (b'"', "\\22"),
    (b'&', "\\26"),
    (b'\'', "\\27"),
    (b'/', "\\2f"),
    (b':', "\\3a"),
    (b'<', "\\3c"),
    (b'>', "\\3e"),
    (b'@', "\\40"),
    (b'\\', "\\5c"),
];

pub fn encode_local(id: &str) -> String {
    let mut out = String::with_capacity(id.len() + 8);
    for b in id.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'%' => out.push(b as char),
            b'A'..=b'Z' => {
                out.push('_');
                out.push(b.to_ascii_lowercase() as char);
            }
            b'_' => out.push_str("__"),
            _ => match XEP0106.iter().find(|(c, _)| *c == b) {
                Some((_, esc)) => out.push_str(esc),
                None => out.push_str(&format!("={b:02x}")),
            },
        }
    }
    out
}

pub fn decode_local(local: &str) -> Option<String> {
    let id = decode_any(local)?;
    (encode_local(&id) == local).then_some(id)
}

fn decode_any(local: &str) -> Option<String> {
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
            b'=' | b'\\' => {
                let hex = local.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b @ (b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'%') => {
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
                "=21_o_g_eh_h_v_w_sdv_ar_jzumhm\\3amatrix.org",
            ),
            ("tea room", "tea\\20room"),
            ("alice@matrix.org", "alice\\40matrix.org"),
            ("alice%matrix.org", "alice%matrix.org"),
            ("c:\\net", "c\\3a\\5cnet"),
            ("d'artagnan", "d\\27artagnan"),
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
            "dm+alice+_juliet\\40_example.org"
        );
    }

    #[test]
    fn hostile_localparts_do_not_decode() {
        // not canonical (another spelling of an id that has its own JID) or not decodable
        for bad in [
            "_", "_1", "=", "=zz", "=4", "UPPER", "a b", "=ff", "=41", "=20", "\\41", "\\zz",
        ] {
            assert_eq!(decode_local(bad), None, "{bad}");
        }
    }
}
