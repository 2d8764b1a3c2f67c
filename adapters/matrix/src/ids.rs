//! Matrix ids <-> what the core sees. Matrix users are `localpart%server` (their JID is
//! `localpart%server@matrix.<domain>`); XMPP users' puppets are `@<prefix><jid>:<server>`
//! with the JID written in the spec's suggested mapping (`=hh` for other bytes).

use causeway_api::RemoteUserId;

/// `@alice:example.org` -> `alice%example.org` (the id must be a valid user id).
pub fn remote_user(mxid: &str) -> Option<RemoteUserId> {
    let id = ruma::UserId::parse(mxid).ok()?;
    let local = id.localpart();
    (!local.contains('%')).then(|| RemoteUserId::new(format!("{local}%{}", id.server_name())))
}

/// `alice%example.org` (or a pasted `@alice:example.org`) -> `@alice:example.org`.
pub fn mxid(user: &str) -> Option<String> {
    if user.starts_with('@') {
        return remote_user(user).map(|_| user.to_string());
    }
    let (local, server) = user.split_once('%')?;
    let ok = !local.is_empty()
        && !server.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._=-/+".contains(&b));
    // (and a valid user id: the server name is checked too, `a%b%c` is no user)
    let mx = format!("@{local}:{server}");
    (ok && remote_user(&mx).is_some_and(|u| u.as_str() == user)).then_some(mx)
}

/// The puppet localpart of an XMPP user: `<prefix>` + the bare JID, lowercase, with every
/// byte outside `a-z 0-9 . _ - /` (and `=` itself) as `=hh`.
pub fn puppet_localpart(prefix: &str, bare_jid: &str) -> String {
    let mut out = String::from(prefix);
    for b in bare_jid.to_lowercase().bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("={b:02x}")),
        }
    }
    out
}

/// The bare JID behind a puppet localpart (the inverse of `puppet_localpart`).
pub fn puppet_jid(prefix: &str, localpart: &str) -> Option<String> {
    let rest = localpart.strip_prefix(prefix)?.as_bytes();
    let mut out = Vec::with_capacity(rest.len());
    let mut i = 0;
    while i < rest.len() {
        if rest[i] == b'=' {
            let hex = std::str::from_utf8(rest.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(rest[i]);
            i += 1;
        }
    }
    let jid = String::from_utf8(out).ok()?;
    jid.contains('@').then_some(jid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_both_ways() {
        for (mx, remote) in [
            ("@alice:example.org", "alice%example.org"),
            ("@bob.smith:matrix.org:8448", "bob.smith%matrix.org:8448"),
        ] {
            assert_eq!(remote_user(mx), Some(RemoteUserId::new(remote)));
            assert_eq!(mxid(remote).as_deref(), Some(mx));
            assert_eq!(mxid(mx).as_deref(), Some(mx));
        }
        for bad in [
            "alice",
            "%example.org",
            "alice%",
            "Alice%example.org",
            "a b%x",
            "a%b%c",
            "+%:",
            "a%not a server",
        ] {
            assert_eq!(mxid(bad), None, "{bad}");
        }
        assert_eq!(remote_user("!room:example.org"), None);
    }

    #[test]
    fn puppets_follow_the_suggested_mapping() {
        for (jid, local) in [
            ("juliet@example.org", "_xmpp_juliet=40example.org"),
            ("Romeo@Example.org", "_xmpp_romeo=40example.org"),
            ("a=b@x", "_xmpp_a=3db=40x"),
            ("é@x", "_xmpp_=c3=a9=40x"),
        ] {
            assert_eq!(puppet_localpart("_xmpp_", jid), local);
            assert_eq!(
                puppet_jid("_xmpp_", local).as_deref(),
                Some(jid.to_lowercase().as_str())
            );
        }
    }
}
