//! What one XMPP user may create (`[bridge.quotas]`): new 1:1 conversations and
//! registrations per hour, rooms joined at once. Each is a bounded count per user: a user
//! over the quota gets `resource-constraint`, and the books forget the oldest users first.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Users remembered per kind of event, at most.
const MAX_USERS: usize = 100_000;
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Per {
    /// A 1:1 conversation with a remote user the gateway had none with.
    NewDirect,
    Registration,
}

#[derive(Default)]
pub struct Quotas {
    limits: crate::config::QuotaConfig,
    /// (kind, bare JID) -> when, in the last hour.
    hourly: Mutex<HashMap<(Per, String), VecDeque<Instant>>>,
    /// bare JID -> rooms joined (network, portal id).
    joined: Mutex<HashMap<String, HashSet<(String, i64)>>>,
}

impl Quotas {
    pub fn new(limits: crate::config::QuotaConfig) -> Quotas {
        Quotas {
            limits,
            ..Quotas::default()
        }
    }

    /// Count one `per` for `user`; false (not counted) when the hour's quota is used up.
    pub fn take(&self, per: Per, user: &str) -> bool {
        let limit = match per {
            Per::NewDirect => self.limits.new_direct_per_hour,
            Per::Registration => self.limits.registrations_per_hour,
        };
        let mut book = self.hourly.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if book.len() >= MAX_USERS && !book.contains_key(&(per, user.to_string())) {
            // Forget users whose hour is over; if that frees too little, the older half of
            // the rest. Each scan frees an eighth of the book at least, so the scans cost
            // nothing per user in the long run, however many users come.
            book.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < HOUR));
            if book.len() > MAX_USERS - MAX_USERS / 8 {
                let mut last: Vec<Instant> =
                    book.values().filter_map(|t| t.back().copied()).collect();
                let mid = last.len() / 2;
                let (_, cut, _) = last.select_nth_unstable(mid);
                let cut = *cut;
                book.retain(|_, times| times.back().is_some_and(|t| *t > cut));
            }
        }
        let times = book.entry((per, user.to_string())).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= HOUR)
        {
            times.pop_front();
        }
        if times.len() >= limit {
            return false;
        }
        times.push_back(now);
        true
    }

    /// A user joins a room; false when they are in as many rooms as they may be.
    pub fn join(&self, user: &str, room: (&str, i64)) -> bool {
        let mut joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        let rooms = joined.entry(user.to_string()).or_default();
        let key = (room.0.to_string(), room.1);
        if rooms.contains(&key) {
            return true;
        }
        if rooms.len() >= self.limits.rooms_joined {
            return false;
        }
        rooms.insert(key);
        true
    }

    /// A user left a room (their last session there).
    pub fn leave(&self, user: &str, room: (&str, i64)) {
        let mut joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rooms) = joined.get_mut(user) {
            rooms.remove(&(room.0.to_string(), room.1));
            if rooms.is_empty() {
                joined.remove(user);
            }
        }
    }

    /// Rooms joined before a restart count as joined (even past the quota: they were
    /// allowed then).
    pub fn rejoined(&self, user: &str, room: (&str, i64)) {
        let mut joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        joined
            .entry(user.to_string())
            .or_default()
            .insert((room.0.to_string(), room.1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuotaConfig;

    /// Users past the book's size (one server with many JIDs): the book stays bounded and
    /// each new user costs little, not a scan of the whole book.
    #[test]
    fn a_full_book_stays_bounded_and_cheap() {
        let q = Quotas::new(QuotaConfig::default());
        for i in 0..MAX_USERS {
            assert!(q.take(Per::NewDirect, &format!("u{i}@x")));
        }
        let t = Instant::now();
        for i in 0..20_000 {
            assert!(q.take(Per::NewDirect, &format!("more{i}@x")));
        }
        assert!(q.hourly.lock().expect("book").len() <= MAX_USERS);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn quotas_count_per_user_and_kind() {
        let q = Quotas::new(QuotaConfig {
            new_direct_per_hour: 2,
            registrations_per_hour: 1,
            rooms_joined: 2,
        });
        // (kind, user, allowed)
        let steps = [
            (Per::NewDirect, "a@x", true),
            (Per::NewDirect, "a@x", true),
            (Per::NewDirect, "a@x", false),
            (Per::NewDirect, "b@x", true),
            (Per::Registration, "a@x", true),
            (Per::Registration, "a@x", false),
        ];
        for (per, user, allowed) in steps {
            assert_eq!(q.take(per, user), allowed, "{per:?} {user}");
        }
        assert!(q.join("a@x", ("demo", 1)) && q.join("a@x", ("demo", 2)));
        assert!(q.join("a@x", ("demo", 1)), "the same room again");
        assert!(!q.join("a@x", ("demo", 3)));
        q.leave("a@x", ("demo", 1));
        assert!(q.join("a@x", ("demo", 3)));
        q.rejoined("a@x", ("demo", 9));
        assert!(!q.join("a@x", ("demo", 4)));
    }
}
