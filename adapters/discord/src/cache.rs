//! What the adapter knows of Discord, kept current from the gateway: guilds, channels and
//! threads, members' display names and avatars, roles, our webhooks; and what decides who
//! may see each channel (the owner, roles' permissions, members' roles, channels'
//! overwrites: `perms.rs`).

use crate::markdown::Names;
use crate::perms::{self, Overwrite, Who};
use causeway_api::{RemoteSpaceId, RoomInfo, RoomKey, RoomKind, SpaceInfo, UserInfo};
use serenity::model::channel::{ChannelType, GuildChannel};
use serenity::model::guild::{Guild, Member, PartialGuild, Role};
use serenity::model::user::User;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text and announcement channels: rooms.
    Text,
    /// Categories: nested spaces.
    Category,
    /// Forum and media channels: nested spaces whose posts (threads) are rooms.
    Forum,
    /// Threads and forum posts: rooms.
    Thread,
    /// Voice, stage and the rest: not bridged.
    Other,
}

impl Kind {
    fn of(t: ChannelType) -> Kind {
        match t {
            ChannelType::Text | ChannelType::News => Kind::Text,
            ChannelType::Category => Kind::Category,
            ChannelType::Forum => Kind::Forum,
            ChannelType::Unknown(16) => Kind::Forum,
            ChannelType::PublicThread | ChannelType::PrivateThread | ChannelType::NewsThread => {
                Kind::Thread
            }
            _ => Kind::Other,
        }
    }

    pub fn is_room(self) -> bool {
        matches!(self, Kind::Text | Kind::Thread)
    }
}

#[derive(Clone, Debug)]
pub struct Chan {
    pub id: u64,
    pub guild: u64,
    pub name: String,
    pub kind: Kind,
    pub parent: Option<u64>,
    pub topic: Option<String>,
    pub position: i64,
    /// The channel's permission overwrites (threads have none: their parent's apply).
    pub overwrites: Vec<Overwrite>,
    /// A private thread: seen only by its members and those who may manage threads.
    pub private: bool,
    /// Who started a thread (the one member of a private thread the adapter knows).
    pub creator: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Person {
    pub name: String,
    pub avatar: Option<String>,
    pub bot: bool,
    /// The member's roles in the guild (empty for a user's record outside guilds).
    pub roles: Vec<u64>,
}

pub struct GuildRec {
    pub name: String,
    pub icon: Option<String>,
    pub owner: u64,
    /// Role names, for mentions.
    pub roles: HashMap<u64, String>,
    /// Each role's permissions (@everyone's under the guild's id).
    pub permissions: HashMap<u64, u64>,
}

/// What decides who may see one channel: its guild and the overwrites that apply to it.
pub struct Access<'a> {
    guild: u64,
    rec: Option<&'a GuildRec>,
    overwrites: &'a [Overwrite],
    private: bool,
    creator: Option<u64>,
}

impl Access<'_> {
    /// Whether this member (or `Who::EVERYONE`) may see the channel. Nothing is known of a
    /// guild not yet seen: no one may.
    pub fn may_view(&self, who: Who<'_>) -> bool {
        let Some(g) = self.rec else {
            return false;
        };
        let base = perms::base(self.guild, &g.permissions, who);
        let p = perms::in_channel(base, self.guild, who, self.overwrites);
        let invited = who.user != 0 && self.creator == Some(who.user);
        p & perms::VIEW_CHANNEL != 0 && (!self.private || invited || p & perms::MANAGE_THREADS != 0)
    }

    /// Whether a member with these roles may see the channel.
    pub fn member_may_view(&self, user: u64, roles: &[u64]) -> bool {
        let owner = self.rec.is_some_and(|g| g.owner == user);
        self.may_view(Who { user, roles, owner })
    }
}

/// A channel's webhook: id and token.
#[derive(Clone)]
pub struct Hook {
    pub id: u64,
    pub token: String,
}

pub struct Cache {
    pub cdn: String,
    pub bot: u64,
    pub guilds: HashMap<u64, GuildRec>,
    pub channels: HashMap<u64, Chan>,
    /// (guild, user) -> as shown in that guild.
    pub members: HashMap<(u64, u64), Person>,
    /// user -> as shown anywhere (global name).
    pub users: HashMap<u64, Person>,
    /// channel -> its webhook (threads use their parent's).
    pub hooks: HashMap<u64, Hook>,
    /// Ids of every webhook we own: their messages are our own echoes.
    pub ours: HashSet<u64>,
    /// Guilds announced in READY whose GUILD_CREATE has not come yet.
    pub pending: HashSet<u64>,
    /// Guilds whose member list was asked for (REQUEST_GUILD_MEMBERS): chunks seen so far.
    pub chunks_awaited: HashMap<u64, u32>,
    /// Per guild, the names `@Nick` mentions are matched against (longest first); made when
    /// needed, dropped when a member's name changes.
    names: HashMap<u64, Arc<Vec<(String, String)>>>,
}

/// Room keys are channel ids.
pub fn room_key(channel: u64) -> RoomKey {
    RoomKey::shared(channel.to_string())
}

pub fn channel_of(key: &RoomKey) -> Option<u64> {
    key.room.as_str().parse().ok()
}

impl Cache {
    pub fn new(cdn: &str) -> Self {
        Self {
            cdn: cdn.trim_end_matches('/').to_string(),
            bot: 0,
            guilds: HashMap::new(),
            channels: HashMap::new(),
            members: HashMap::new(),
            users: HashMap::new(),
            hooks: HashMap::new(),
            ours: HashSet::new(),
            pending: HashSet::new(),
            chunks_awaited: HashMap::new(),
            names: HashMap::new(),
        }
    }

    pub fn guild(&mut self, g: &Guild) {
        let gid = g.id.get();
        self.pending.remove(&gid);
        let icon = g.icon.as_ref().map(|h| h.to_string());
        let rec = self.guild_rec(gid, &g.name, icon, g.owner_id.get(), g.roles.values());
        self.guilds.insert(gid, rec);
        self.channels.retain(|_, c| c.guild != gid);
        for c in g.channels.values().chain(g.threads.iter()) {
            self.channel(c);
        }
        for m in g.members.values() {
            self.member(gid, m);
        }
    }

    fn guild_rec<'r>(
        &self,
        gid: u64,
        name: &str,
        icon: Option<String>,
        owner: u64,
        roles: impl Iterator<Item = &'r Role> + Clone,
    ) -> GuildRec {
        GuildRec {
            name: name.to_string(),
            icon: icon.map(|h| format!("{}/icons/{gid}/{h}.png", self.cdn)),
            owner,
            roles: roles
                .clone()
                .map(|r| (r.id.get(), r.name.clone()))
                .collect(),
            permissions: roles.map(|r| (r.id.get(), r.permissions.bits())).collect(),
        }
    }

    /// GUILD_UPDATE: name, icon, owner and roles (its channels and members are not in it).
    pub fn guild_update(&mut self, g: &PartialGuild) {
        let gid = g.id.get();
        if self.guilds.contains_key(&gid) {
            let icon = g.icon.as_ref().map(|h| h.to_string());
            let rec = self.guild_rec(gid, &g.name, icon, g.owner_id.get(), g.roles.values());
            self.guilds.insert(gid, rec);
        }
    }

    /// A role created or changed.
    pub fn role(&mut self, guild: u64, r: &Role) {
        if let Some(g) = self.guilds.get_mut(&guild) {
            g.roles.insert(r.id.get(), r.name.clone());
            g.permissions.insert(r.id.get(), r.permissions.bits());
        }
    }

    /// A role deleted: gone from the guild and from its members.
    pub fn remove_role(&mut self, guild: u64, role: u64) {
        if let Some(g) = self.guilds.get_mut(&guild) {
            g.roles.remove(&role);
            g.permissions.remove(&role);
        }
        for (_, p) in self.members.iter_mut().filter(|((g, _), _)| *g == guild) {
            p.roles.retain(|r| *r != role);
        }
    }

    pub fn channel(&mut self, c: &GuildChannel) -> Chan {
        let chan = Chan {
            id: c.id.get(),
            guild: c.guild_id.get(),
            name: c.name.clone(),
            kind: Kind::of(c.kind),
            parent: c.parent_id.map(|p| p.get()),
            topic: c.topic.clone().filter(|t| !t.is_empty()),
            position: i64::from(c.position),
            overwrites: c
                .permission_overwrites
                .iter()
                .filter_map(Overwrite::of)
                .collect(),
            private: c.kind == ChannelType::PrivateThread,
            creator: c.owner_id.map(|u| u.get()),
        };
        self.channels.insert(chan.id, chan.clone());
        chan
    }

    pub fn user(&mut self, u: &User) -> Person {
        let p = Person {
            name: u.global_name.clone().unwrap_or_else(|| u.name.clone()),
            avatar: Some(self.avatar(u)),
            bot: u.bot,
            roles: Vec::new(),
        };
        self.users.insert(u.id.get(), p.clone());
        p
    }

    pub fn member(&mut self, guild: u64, m: &Member) {
        let mut p = self.user(&m.user);
        if let Some(n) = m.nick.clone().filter(|n| !n.is_empty()) {
            p.name = n;
        }
        p.roles = m.roles.iter().map(|r| r.get()).collect();
        if let Some(h) = &m.avatar {
            p.avatar = Some(format!(
                "{}/guilds/{guild}/users/{}/avatars/{h}.png",
                self.cdn, m.user.id
            ));
        }
        self.set_member(guild, m.user.id.get(), p);
    }

    /// Record how a user shows in a guild.
    pub fn set_member(&mut self, guild: u64, user: u64, p: Person) {
        let renamed = self
            .members
            .get(&(guild, user))
            .is_none_or(|old| old.name != p.name);
        if renamed {
            self.names.remove(&guild);
        }
        self.members.insert((guild, user), p);
    }

    pub fn remove_member(&mut self, guild: u64, user: u64) {
        if self.members.remove(&(guild, user)).is_some() {
            self.names.remove(&guild);
        }
    }

    fn avatar(&self, u: &User) -> String {
        match &u.avatar {
            Some(h) => format!("{}/avatars/{}/{h}.png", self.cdn, u.id),
            None => format!("{}/embed/avatars/{}.png", self.cdn, (u.id.get() >> 22) % 6),
        }
    }

    /// How a user shows in a guild.
    pub fn person(&self, guild: Option<u64>, user: u64) -> Option<&Person> {
        guild
            .and_then(|g| self.members.get(&(g, user)))
            .or_else(|| self.users.get(&user))
    }

    pub fn user_info(&self, guild: Option<u64>, user: u64) -> Option<UserInfo> {
        let p = self.person(guild, user)?;
        Some(UserInfo {
            id: causeway_api::RemoteUserId::new(user.to_string()),
            display_name: p.name.clone(),
            avatar_url: p.avatar.clone(),
            is_bot: p.bot,
        })
    }

    /// The space a room or nested space sits in: its category or forum, else its guild.
    /// A thread sits where its parent channel sits (a forum post sits in the forum).
    pub fn space_of(&self, c: &Chan) -> RemoteSpaceId {
        let parent = c.parent.and_then(|p| self.channels.get(&p));
        let holder = match (c.kind, parent) {
            (Kind::Thread, Some(p)) if p.kind == Kind::Forum => Some(p.id),
            (Kind::Thread, Some(p)) => p.parent,
            (_, Some(p)) if matches!(p.kind, Kind::Category | Kind::Forum) => Some(p.id),
            _ => None,
        };
        RemoteSpaceId::new(holder.unwrap_or(c.guild).to_string())
    }

    /// A room with (up to a thousand of) its members: those who may see it (Discord lists a
    /// channel's members that way too; a restricted room must not show the others).
    pub fn room_info(&self, channel: u64) -> Option<RoomInfo> {
        let mut info = self.room_summary(channel)?;
        let c = self.channels.get(&channel)?;
        let access = self.access(c);
        info.members = self
            .members
            .iter()
            .filter(|((g, u), _)| *g == c.guild && *u != self.bot)
            .filter(|((_, u), p)| access.member_may_view(*u, &p.roles))
            .take(1000)
            .filter_map(|((g, u), _)| self.user_info(Some(*g), *u))
            .collect();
        Some(info)
    }

    /// What decides who may see a channel; a thread is seen by those who see its parent.
    pub fn access<'a>(&'a self, c: &'a Chan) -> Access<'a> {
        let parent = c.parent.and_then(|p| self.channels.get(&p));
        let holder = match (c.kind, parent) {
            (Kind::Thread, Some(p)) => p,
            _ => c,
        };
        Access {
            guild: c.guild,
            rec: self.guilds.get(&c.guild),
            overwrites: &holder.overwrites,
            private: c.private,
            creator: c.creator,
        }
    }

    /// Not everyone in the guild may see the channel: @everyone (no roles, not the owner)
    /// may not view it.
    pub fn restricted(&self, c: &Chan) -> bool {
        !self.access(c).may_view(Who::EVERYONE)
    }

    /// The rooms of a guild, each with whether it is restricted.
    pub fn restrictions(&self, guild: u64) -> HashMap<u64, bool> {
        self.channels
            .values()
            .filter(|c| c.guild == guild && c.kind.is_room())
            .map(|c| (c.id, self.restricted(c)))
            .collect()
    }

    /// A room without its members (listings and changes: a guild's channels would each
    /// carry the same thousand members).
    pub fn room_summary(&self, channel: u64) -> Option<RoomInfo> {
        let c = self.channels.get(&channel).filter(|c| c.kind.is_room())?;
        Some(RoomInfo {
            key: room_key(c.id),
            name: c.name.clone(),
            topic: c.topic.clone(),
            kind: RoomKind::Channel,
            space: Some(self.space_of(c)),
            avatar_url: self.guilds.get(&c.guild).and_then(|g| g.icon.clone()),
            members: Vec::new(),
            xmpp_user: None,
            restricted: self.restricted(c),
        })
    }

    pub fn rooms(&self) -> Vec<RoomInfo> {
        let mut chans: Vec<&Chan> = self
            .channels
            .values()
            .filter(|c| c.kind.is_room())
            .collect();
        chans.sort_by_key(|c| (c.guild, c.position, c.id));
        chans
            .iter()
            .filter_map(|c| self.room_summary(c.id))
            .collect()
    }

    /// A guild, category or forum as a space.
    pub fn space(&self, id: u64) -> Option<SpaceInfo> {
        let (name, avatar, guild) = match (self.guilds.get(&id), self.channels.get(&id)) {
            (Some(g), _) => (g.name.clone(), g.icon.clone(), id),
            (None, Some(c)) if matches!(c.kind, Kind::Category | Kind::Forum) => {
                let icon = self.guilds.get(&c.guild).and_then(|g| g.icon.clone());
                (c.name.clone(), icon, c.guild)
            }
            _ => return None,
        };
        let sid = id.to_string();
        let mut inside: Vec<&Chan> = self
            .channels
            .values()
            .filter(|c| c.guild == guild && c.id != id && self.space_of(c).as_str() == sid)
            .collect();
        inside.sort_by_key(|c| (c.kind == Kind::Thread, c.position, c.id));
        Some(SpaceInfo {
            id: RemoteSpaceId::new(sid.clone()),
            name,
            avatar_url: avatar,
            rooms: inside
                .iter()
                .filter(|c| c.kind.is_room())
                .map(|c| room_key(c.id))
                .collect(),
            children: inside
                .iter()
                .filter(|c| matches!(c.kind, Kind::Category | Kind::Forum))
                .map(|c| RemoteSpaceId::new(c.id.to_string()))
                .collect(),
        })
    }

    /// Display names of a guild's members, for `@Nick` mentions (longest first).
    pub fn mentionable(&mut self, guild: u64) -> Arc<Vec<(String, String)>> {
        if let Some(n) = self.names.get(&guild) {
            return n.clone();
        }
        let mut v: Vec<(String, String)> = self
            .members
            .iter()
            .filter(|((g, u), _)| *g == guild && *u != self.bot)
            .map(|((_, u), p)| (p.name.clone(), u.to_string()))
            .collect();
        v.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let v = Arc::new(v);
        self.names.insert(guild, v.clone());
        v
    }

    /// The channel whose webhook posts into `channel` (a thread's parent), and the thread.
    pub fn hook_target(&self, channel: u64) -> Option<(u64, Option<u64>)> {
        let c = self.channels.get(&channel)?;
        match (c.kind, c.parent) {
            (Kind::Thread, Some(p)) => Some((p, Some(channel))),
            (Kind::Text, _) => Some((channel, None)),
            _ => None,
        }
    }
}

/// Names in one guild, for reading mentions.
pub struct GuildNames<'a> {
    pub cache: &'a Cache,
    pub guild: Option<u64>,
}

impl Names for GuildNames<'_> {
    fn user(&self, id: &str) -> Option<String> {
        let id = id.parse().ok()?;
        self.cache.person(self.guild, id).map(|p| p.name.clone())
    }
    fn channel(&self, id: &str) -> Option<String> {
        let id: u64 = id.parse().ok()?;
        self.cache.channels.get(&id).map(|c| c.name.clone())
    }
    fn role(&self, id: &str) -> Option<String> {
        let id: u64 = id.parse().ok()?;
        self.cache
            .guilds
            .get(&self.guild?)
            .and_then(|g| g.roles.get(&id))
            .map(|r| r.trim_start_matches('@').to_string())
    }
}
