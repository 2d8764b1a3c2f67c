//! Permissions as Discord's Permissions topic documents them: bits in a string, a member's
//! base permissions from the guild's roles ("Permission Hierarchy": the owner has all, else
//! @everyone's and each of their roles' OR-ed, ADMINISTRATOR gives all), then the channel's
//! overwrites ("Permission Overwrites": @everyone's deny then allow, the member's roles' denies
//! then allows together, the member's own deny then allow). Threads take their parent
//! channel's permissions ("Inherited Permissions"); a private thread is seen only by its
//! members and by those who may manage threads.

use serde_json::{json, Value};

pub const ADMINISTRATOR: u64 = 1 << 3;
pub const VIEW_CHANNEL: u64 = 1 << 10;
pub const SEND_MESSAGES: u64 = 1 << 11;
pub const MANAGE_THREADS: u64 = 1 << 34;
/// Every permission ("ALL" in Discord's pseudocode).
pub const ALL: u64 = u64::MAX;
/// What the fake's roles get unless told otherwise (Discord's default for @everyone:
/// viewing channels, sending messages, reactions, history, ...; no ADMINISTRATOR).
pub const DEFAULT: u64 = 2_248_473_465_835_073;

/// Whom an overwrite is for: Discord's overwrite `type`, 0 (role) or 1 (member).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Role(String),
    Member(String),
}

/// One entry of a channel's `permission_overwrites`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overwrite {
    pub target: Target,
    pub allow: u64,
    pub deny: u64,
}

impl Overwrite {
    /// An overwrite for a role; @everyone's role id is the guild's id.
    pub fn role(id: &str, allow: u64, deny: u64) -> Self {
        Self {
            target: Target::Role(id.into()),
            allow,
            deny,
        }
    }

    pub fn member(id: &str, allow: u64, deny: u64) -> Self {
        Self {
            target: Target::Member(id.into()),
            allow,
            deny,
        }
    }

    /// The overwrite object: `{id, type, allow, deny}`, bits as strings.
    pub fn to_json(&self) -> Value {
        let (id, kind) = match &self.target {
            Target::Role(id) => (id, 0),
            Target::Member(id) => (id, 1),
        };
        json!({"id": id, "type": kind, "allow": self.allow.to_string(), "deny": self.deny.to_string()})
    }

    /// Read an overwrite object back (None when it is not one).
    pub fn from_json(v: &Value) -> Option<Self> {
        let id = v["id"].as_str()?.to_string();
        let target = match v["type"].as_u64()? {
            0 => Target::Role(id),
            1 => Target::Member(id),
            _ => return None,
        };
        Some(Self {
            target,
            allow: bits(&v["allow"]),
            deny: bits(&v["deny"]),
        })
    }
}

/// Whether two lists of overwrites say the same, in any order (a channel is synced with its
/// category when they do).
pub fn same(a: &[Overwrite], b: &[Overwrite]) -> bool {
    a.len() == b.len() && a.iter().all(|o| b.contains(o))
}

/// A permission bit set as Discord serializes it (a string; numbers are read too).
pub fn bits(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_u64())
        .unwrap_or(0)
}

/// The member asked about: their id, their roles, whether they own the guild.
pub struct Member<'a> {
    pub user: &'a str,
    pub roles: &'a [String],
    pub owner: bool,
}

/// Base permissions in the guild. `role_perms` gives a role's permissions (None for a role
/// the guild does not have).
pub fn base(guild: &str, m: &Member<'_>, role_perms: impl Fn(&str) -> Option<u64>) -> u64 {
    if m.owner {
        return ALL;
    }
    let mut p = role_perms(guild).unwrap_or(0);
    for r in m.roles {
        p |= role_perms(r).unwrap_or(0);
    }
    if p & ADMINISTRATOR != 0 {
        return ALL;
    }
    p
}

/// Permissions in a channel with these overwrites, from the member's base permissions.
pub fn in_channel(base: u64, guild: &str, m: &Member<'_>, overwrites: &[Overwrite]) -> u64 {
    if base & ADMINISTRATOR != 0 {
        return ALL;
    }
    let mut p = base;
    let find = |t: &Target| overwrites.iter().find(|o| o.target == *t);
    if let Some(o) = find(&Target::Role(guild.into())) {
        p &= !o.deny;
        p |= o.allow;
    }
    let (mut allow, mut deny) = (0, 0);
    for r in m.roles.iter().filter(|r| r.as_str() != guild) {
        if let Some(o) = find(&Target::Role(r.clone())) {
            allow |= o.allow;
            deny |= o.deny;
        }
    }
    p &= !deny;
    p |= allow;
    if let Some(o) = find(&Target::Member(m.user.into())) {
        p &= !o.deny;
        p |= o.allow;
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUILD: &str = "1";
    const USER: &str = "2";
    const MODS: &str = "3";
    const MUTED: &str = "4";
    const ADMINS: &str = "5";
    const TALK: u64 = VIEW_CHANNEL | SEND_MESSAGES;

    struct Case {
        what: &'static str,
        everyone: u64,
        roles: &'static [&'static str],
        owner: bool,
        overwrites: Vec<Overwrite>,
        view: bool,
    }

    fn role_perms(everyone: u64) -> impl Fn(&str) -> Option<u64> {
        move |r| match r {
            GUILD => Some(everyone),
            MODS => Some(SEND_MESSAGES),
            MUTED => Some(0),
            ADMINS => Some(ADMINISTRATOR),
            _ => None,
        }
    }

    fn cases() -> Vec<Case> {
        let hide = || Overwrite::role(GUILD, 0, VIEW_CHANNEL);
        let case = |what, everyone, roles, owner, overwrites, view| Case {
            what,
            everyone,
            roles,
            owner,
            overwrites,
            view,
        };
        vec![
            case("open channel", TALK, &[], false, vec![], true),
            case("@everyone has no VIEW", 0, &[], false, vec![], false),
            case("@everyone denied", TALK, &[], false, vec![hide()], false),
            case("owner sees all", 0, &[], true, vec![hide()], true),
            case(
                "ADMINISTRATOR role",
                TALK,
                &[ADMINS],
                false,
                vec![hide()],
                true,
            ),
            case(
                "ADMINISTRATOR on @everyone",
                ADMINISTRATOR,
                &[],
                false,
                vec![hide()],
                true,
            ),
            case(
                "role allowed",
                TALK,
                &[MODS],
                false,
                vec![hide(), Overwrite::role(MODS, VIEW_CHANNEL, 0)],
                true,
            ),
            case(
                "another role allowed",
                TALK,
                &[MUTED],
                false,
                vec![hide(), Overwrite::role(MODS, VIEW_CHANNEL, 0)],
                false,
            ),
            case(
                "a role's allow beats another role's deny",
                TALK,
                &[MODS, MUTED],
                false,
                vec![
                    Overwrite::role(MUTED, 0, VIEW_CHANNEL),
                    Overwrite::role(MODS, VIEW_CHANNEL, 0),
                ],
                true,
            ),
            case(
                "role deny beats @everyone allow",
                0,
                &[MUTED],
                false,
                vec![
                    Overwrite::role(GUILD, VIEW_CHANNEL, 0),
                    Overwrite::role(MUTED, 0, VIEW_CHANNEL),
                ],
                false,
            ),
            case(
                "member allowed",
                TALK,
                &[],
                false,
                vec![hide(), Overwrite::member(USER, VIEW_CHANNEL, 0)],
                true,
            ),
            case(
                "member deny beats role allow",
                TALK,
                &[MODS],
                false,
                vec![
                    Overwrite::role(MODS, VIEW_CHANNEL, 0),
                    Overwrite::member(USER, 0, VIEW_CHANNEL),
                ],
                false,
            ),
            case(
                "another member's overwrite",
                TALK,
                &[],
                false,
                vec![hide(), Overwrite::member("99", VIEW_CHANNEL, 0)],
                false,
            ),
            case(
                "unknown role counts for nothing",
                0,
                &["77"],
                false,
                vec![],
                false,
            ),
        ]
    }

    #[test]
    fn permissions_are_computed_as_discord_documents() {
        for c in cases() {
            let roles: Vec<String> = c.roles.iter().map(|r| r.to_string()).collect();
            let m = Member {
                user: USER,
                roles: &roles,
                owner: c.owner,
            };
            let b = base(GUILD, &m, role_perms(c.everyone));
            let p = in_channel(b, GUILD, &m, &c.overwrites);
            assert_eq!(p & VIEW_CHANNEL != 0, c.view, "{}", c.what);
        }
    }

    #[test]
    fn overwrites_read_back_what_they_write() {
        let o = Overwrite::member("42", VIEW_CHANNEL, SEND_MESSAGES);
        let v = o.to_json();
        assert_eq!(v["type"], 1);
        assert_eq!(v["allow"], "1024");
        assert_eq!(Overwrite::from_json(&v), Some(o));
    }
}
