//! XEP-0444 sends a user's full reaction set each time; networks add and remove one reaction
//! at a time. These turn one into the other.

/// What to add and what to remove to go from `old` to `new` (order of `new` kept for adds).
pub fn diff(old: &[String], new: &[String]) -> (Vec<String>, Vec<String>) {
    let mut adds = Vec::new();
    for e in new {
        if !old.contains(e) && !adds.contains(e) {
            adds.push(e.clone());
        }
    }
    let removes = old.iter().filter(|e| !new.contains(e)).cloned().collect();
    (adds, removes)
}

/// The set after one remote change.
pub fn apply(old: &[String], emoji: &str, added: bool) -> Vec<String> {
    let mut set: Vec<String> = old.iter().filter(|e| *e != emoji).cloned().collect();
    if added {
        set.push(emoji.to_string());
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn diffs() {
        type Case<'a> = (&'a [&'a str], &'a [&'a str], &'a [&'a str], &'a [&'a str]);
        let cases: &[Case] = &[
            (&[], &["👍"], &["👍"], &[]),
            (&["👍"], &[], &[], &["👍"]),
            (&["👍", "🎉"], &["🎉", "❤️"], &["❤️"], &["👍"]),
            (&["👍"], &["👍"], &[], &[]),
            (&[], &["👍", "👍"], &["👍"], &[]),
            (&["a", "b", "c"], &["c", "b", "a"], &[], &[]),
        ];
        for (old, new, adds, removes) in cases {
            assert_eq!(
                diff(&v(old), &v(new)),
                (v(adds), v(removes)),
                "{old:?} -> {new:?}"
            );
            // applying the diff one change at a time reaches the new set
            let mut set = v(old);
            for a in adds.iter() {
                set = apply(&set, a, true);
            }
            for r in removes.iter() {
                set = apply(&set, r, false);
            }
            let mut want = v(new);
            want.dedup();
            set.sort();
            want.sort();
            assert_eq!(set, want);
        }
    }

    #[test]
    fn changes() {
        assert_eq!(apply(&v(&["a"]), "b", true), v(&["a", "b"]));
        assert_eq!(
            apply(&v(&["a"]), "a", true),
            v(&["a"]),
            "adding twice keeps one"
        );
        assert_eq!(
            apply(&v(&["a"]), "z", false),
            v(&["a"]),
            "removing an absent one"
        );
        assert_eq!(apply(&v(&["a", "b"]), "a", false), v(&["b"]));
    }
}
