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

/// XEP-0106 escaping of a localpart typed by a person (e.g. "alice@matrix.org").
pub fn escape_xep0106(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' => out.push_str("\\20"),
            '"' => out.push_str("\\22"),
            '&' => out.push_str("\\26"),
            '\'' => out.push_str("\\27"),
            '/' => out.push_str("\\2f"),
            ':' => out.push_str("\\3a"),
            '<' => out.push_str("\\3c"),
            '>' => out.push_str("\\3e"),
            '@' => out.push_str("\\40"),
            '\\' => out.push_str("\\5c"),
            c => out.push(c),
        }
    }
    out
}

pub fn unescape_xep0106(s: &str) -> String {
    const CODES: [(&str, char); 10] = [
        ("20", ' '),
        ("22", '"'),
        ("26", '&'),
        ("27", '\''),
        ("2f", '/'),
        ("3a", ':'),
        ("3c", '<'),
        ("3e", '>'),
        ("40", '@'),
        ("5c", '\\'),
    ];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match after
            .get(..2)
            .and_then(|code| CODES.iter().find(|(c, _)| c.eq_ignore_ascii_case(code)))
        {
            Some((_, ch)) => {
                out.push(*ch);
                rest = &after[2..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
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
    fn hostile_localparts_do_not_decode() {
        for bad in ["_", "_1", "=", "=zz", "=4", "UPPER", "a b", "=ff"] {
            assert_eq!(decode_local(bad), None, "{bad}");
        }
    }

    #[test]
    fn xep0106() {
        let cases = [
            ("space cadet", "space\\20cadet"),
            ("call me \"ishmael\"", "call\\20me\\20\\22ishmael\\22"),
            ("at&t guy", "at\\26t\\20guy"),
            ("d'artagnan", "d\\27artagnan"),
            ("/.fanboy", "\\2f.fanboy"),
            ("::foo::", "\\3a\\3afoo\\3a\\3a"),
            ("<foo>", "\\3cfoo\\3e"),
            ("user@host", "user\\40host"),
            ("c:\\net", "c\\3a\\5cnet"),
            ("c:\\\\net", "c\\3a\\5c\\5cnet"),
        ];
        for (raw, escaped) in cases {
            assert_eq!(escape_xep0106(raw), escaped);
            assert_eq!(unescape_xep0106(escaped), raw);
        }
        assert_eq!(unescape_xep0106("a\\zz\\"), "a\\zz\\");
    }
}
