//! Who may see a channel, computed as Discord's Permissions topic documents it: base
//! permissions from the guild's roles (the owner has all; else @everyone's and each of the
//! member's roles' OR-ed; ADMINISTRATOR gives all), then the channel's overwrites in order
//! (@everyone's deny then allow, the member's roles' denies then allows taken together, the
//! member's own deny then allow). Discord sends the pieces, never the result, so a channel
//! hidden from @everyone is known only by computing it.

use serenity::model::channel::{PermissionOverwrite, PermissionOverwriteType};
use std::collections::HashMap;

pub const ADMINISTRATOR: u64 = 1 << 3;
pub const VIEW_CHANNEL: u64 = 1 << 10;
/// Also lets one see every private thread.
pub const MANAGE_THREADS: u64 = 1 << 34;
pub const ALL: u64 = u64::MAX;

/// Whom an overwrite is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Role(u64),
    Member(u64),
}

/// One of a channel's permission overwrites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overwrite {
    pub target: Target,
    pub allow: u64,
    pub deny: u64,
}

impl Overwrite {
    /// None for a kind of target this adapter does not know (serenity's enum is open).
    pub fn of(o: &PermissionOverwrite) -> Option<Overwrite> {
        let target = match o.kind {
            PermissionOverwriteType::Role(r) => Target::Role(r.get()),
            PermissionOverwriteType::Member(u) => Target::Member(u.get()),
            _ => return None,
        };
        Some(Overwrite {
            target,
            allow: o.allow.bits(),
            deny: o.deny.bits(),
        })
    }
}

/// The member asked about. `user` 0 with no roles is @everyone: anyone at all in the guild.
#[derive(Clone, Copy, Debug)]
pub struct Who<'a> {
    pub user: u64,
    pub roles: &'a [u64],
    pub owner: bool,
}

impl Who<'_> {
    pub const EVERYONE: Who<'static> = Who {
        user: 0,
        roles: &[],
        owner: false,
    };
}

/// Base permissions in a guild whose roles (the @everyone role's id is the guild's) have
/// these permissions. A role the guild does not list gives nothing.
pub fn base(guild: u64, roles: &HashMap<u64, u64>, who: Who<'_>) -> u64 {
    if who.owner {
        return ALL;
    }
    let of = |r: &u64| roles.get(r).copied().unwrap_or(0);
    let p = who.roles.iter().fold(of(&guild), |p, r| p | of(r));
    if p & ADMINISTRATOR != 0 {
        ALL
    } else {
        p
    }
}

/// Permissions in a channel with these overwrites, from base permissions.
pub fn in_channel(base: u64, guild: u64, who: Who<'_>, overwrites: &[Overwrite]) -> u64 {
    if base & ADMINISTRATOR != 0 {
        return ALL;
    }
    let find = |t: Target| overwrites.iter().find(|o| o.target == t);
    let apply = |p: u64, allow: u64, deny: u64| (p & !deny) | allow;
    let mut p = base;
    if let Some(o) = find(Target::Role(guild)) {
        p = apply(p, o.allow, o.deny);
    }
    let (allow, deny) = who
        .roles
        .iter()
        .filter(|r| **r != guild)
        .filter_map(|r| find(Target::Role(*r)))
        .fold((0, 0), |(a, d), o| (a | o.allow, d | o.deny));
    p = apply(p, allow, deny);
    if let Some(o) = find(Target::Member(who.user)).filter(|_| who.user != 0) {
        p = apply(p, o.allow, o.deny);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUILD: u64 = 1;
    const USER: u64 = 2;
    const MODS: u64 = 3;
    const MUTED: u64 = 4;
    const ADMINS: u64 = 5;
    const SEND: u64 = 1 << 11;
    const TALK: u64 = VIEW_CHANNEL | SEND;

    fn role(id: u64, allow: u64, deny: u64) -> Overwrite {
        Overwrite {
            target: Target::Role(id),
            allow,
            deny,
        }
    }

    fn member(id: u64, allow: u64, deny: u64) -> Overwrite {
        Overwrite {
            target: Target::Member(id),
            allow,
            deny,
        }
    }

    /// (case, @everyone's permissions, the member's roles, owner, overwrites, may view)
    type Case = (
        &'static str,
        u64,
        &'static [u64],
        bool,
        Vec<Overwrite>,
        bool,
    );

    #[test]
    fn who_may_view_is_computed_as_discord_documents() {
        let hide = role(GUILD, 0, VIEW_CHANNEL);
        let cases: Vec<Case> = vec![
            ("open channel", TALK, &[], false, vec![], true),
            ("@everyone without VIEW", 0, &[], false, vec![], false),
            ("@everyone denied", TALK, &[], false, vec![hide], false),
            ("the owner sees all", 0, &[], true, vec![hide], true),
            (
                "an ADMINISTRATOR role",
                TALK,
                &[ADMINS],
                false,
                vec![hide],
                true,
            ),
            (
                "ADMINISTRATOR on @everyone",
                ADMINISTRATOR,
                &[],
                false,
                vec![hide],
                true,
            ),
            (
                "a role allowed",
                TALK,
                &[MODS],
                false,
                vec![hide, role(MODS, VIEW_CHANNEL, 0)],
                true,
            ),
            (
                "another role allowed",
                TALK,
                &[MUTED],
                false,
                vec![hide, role(MODS, VIEW_CHANNEL, 0)],
                false,
            ),
            (
                "one role's allow beats another's deny",
                TALK,
                &[MODS, MUTED],
                false,
                vec![role(MUTED, 0, VIEW_CHANNEL), role(MODS, VIEW_CHANNEL, 0)],
                true,
            ),
            (
                "a role's deny beats @everyone's allow",
                0,
                &[MUTED],
                false,
                vec![role(GUILD, VIEW_CHANNEL, 0), role(MUTED, 0, VIEW_CHANNEL)],
                false,
            ),
            (
                "the member allowed",
                TALK,
                &[],
                false,
                vec![hide, member(USER, VIEW_CHANNEL, 0)],
                true,
            ),
            (
                "the member's deny beats a role's allow",
                TALK,
                &[MODS],
                false,
                vec![role(MODS, VIEW_CHANNEL, 0), member(USER, 0, VIEW_CHANNEL)],
                false,
            ),
            (
                "another member allowed",
                TALK,
                &[],
                false,
                vec![hide, member(99, VIEW_CHANNEL, 0)],
                false,
            ),
            (
                "an unknown role gives nothing",
                0,
                &[77],
                false,
                vec![],
                false,
            ),
        ];
        let mut roles = HashMap::from([(MODS, SEND), (MUTED, 0), (ADMINS, ADMINISTRATOR)]);
        for (what, everyone, has, owner, overwrites, view) in cases {
            roles.insert(GUILD, everyone);
            let who = Who {
                user: USER,
                roles: has,
                owner,
            };
            let p = in_channel(base(GUILD, &roles, who), GUILD, who, &overwrites);
            assert_eq!(p & VIEW_CHANNEL != 0, view, "{what}");
        }
    }

    #[test]
    fn everyone_is_no_member_in_particular() {
        // A member overwrite never applies to @everyone, whatever its id.
        let roles = HashMap::from([(GUILD, VIEW_CHANNEL)]);
        let o = [member(0, 0, VIEW_CHANNEL)];
        let p = in_channel(base(GUILD, &roles, Who::EVERYONE), GUILD, Who::EVERYONE, &o);
        assert_ne!(p & VIEW_CHANNEL, 0);
    }
}
