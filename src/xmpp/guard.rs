//! What the component reads, made safe for its parser before it parses.
//!
//! tokio-xmpp's parser (rxml, whose limits cannot be set from here) gives up on things a
//! server legitimately passes on from any client, and a parse error ends the stream: every
//! user of the gateway lost it until the reconnect, and whoever sent the stanza could do it
//! again; building a deeply nested element overflowed the stack. So, reading the server's
//! bytes:
//! - line breaks are normalized as XML 1.0 (2.11) has every parser do: CR LF and a lone CR
//!   become LF (rxml rejects a lone CR in an attribute value, which Prosody writes when a
//!   client sent `&#xD;` there);
//! - a name (element or attribute) longer than `LIMIT` bytes becomes `long-name-<hash>`, the
//!   same in the start and end tags (rxml stops at 8 KiB); no protocol uses such names;
//! - an attribute value longer than `LIMIT` bytes is cut there, between characters and
//!   outside entity references (ids and JIDs are far shorter: a JID is at most 3 KiB), and
//!   `#<hash>` of what was cut off is appended;
//!
//! Two names or two values that differed stay different: the hashes are keyed with a key
//! drawn for each stream, so a sender cannot make two long attributes (or two namespace
//! declarations cut to one prefix) collide into a duplicate attribute, which rxml would
//! answer by ending the stream for every user of the domain.
//! - elements nested deeper than `MAX_DEPTH` (the stream's root counting as one) are left
//!   out: building deep elements recurses once a level (xso's builder, minidom's drop) and
//!   a 50 KiB stanza of nested elements overflowed the stack, aborting the process.
//!
//! The server's output is well-formed XML without comments, processing instructions or
//! CDATA after the stream header (RFC 6120 4.7.4, 11.1), which is all this reader follows:
//! text, tags, attribute names and quoted values.

use std::hash::{BuildHasher, Hasher};

/// The longest name or attribute value passed on as it is.
const LIMIT: usize = 4096;

/// The deepest element passed on: the stream's root is 1, a stanza 2, so a stanza's payload
/// may nest 30 levels (XMPP payloads nest a handful).
const MAX_DEPTH: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Text,
    /// Just after `<`.
    Open,
    /// In an element or attribute name.
    Name,
    /// In a tag, between names and values.
    Tag,
    /// In an attribute value quoted with this byte.
    Value(u8),
    /// `<?...>` or `<!...>` (only in the stream's prologue): passed on to `>`.
    Other,
}

pub(crate) struct Guard {
    state: State,
    after_cr: bool,
    /// The key of this stream's hashes.
    keys: std::collections::hash_map::RandomState,
    /// The name being read (up to LIMIT + 1 bytes), its full length, and the hash of what
    /// came past the first LIMIT + 1 bytes.
    name: Vec<u8>,
    name_len: usize,
    name_tail: std::collections::hash_map::DefaultHasher,
    /// Of the value being read: bytes seen, whether it was cut (then the hash of what was
    /// cut off), whether in `&...;`.
    value_len: usize,
    cut: bool,
    value_tail: std::collections::hash_map::DefaultHasher,
    entity: bool,
    /// Elements open; the tag being read is an end tag, or ends with `/>`.
    depth: usize,
    end_tag: bool,
    empty: bool,
    /// Leaving out an element too deep, opened at this depth: nothing passes until it ends.
    skip: Option<usize>,
}

impl Default for Guard {
    fn default() -> Self {
        Guard {
            state: State::Text,
            after_cr: false,
            keys: std::collections::hash_map::RandomState::new(),
            name: Vec::new(),
            name_len: 0,
            name_tail: Default::default(),
            value_len: 0,
            cut: false,
            value_tail: Default::default(),
            entity: false,
            depth: 0,
            end_tag: false,
            empty: false,
            skip: None,
        }
    }
}

/// How many bytes from the start of `bytes` (at most `max`) are neither a CR nor `stop`.
fn plain_run(bytes: &[u8], max: usize, stop: impl Fn(u8) -> bool) -> usize {
    bytes
        .iter()
        .take(max)
        .position(|&b| b == b'\r' || stop(b))
        .unwrap_or(bytes.len().min(max))
}

impl Guard {
    /// Pass `input` (the next bytes read, in any pieces) on to `out`, made safe.
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len());
        let mut rest = input;
        while !rest.is_empty() {
            // Runs of text, and of values not yet long, pass at once up to the next byte
            // that matters.
            let run = if self.after_cr {
                0
            } else {
                match self.state {
                    State::Text => plain_run(rest, usize::MAX, |b| b == b'<'),
                    State::Name => {
                        let run = plain_run(rest, usize::MAX, |b| {
                            b.is_ascii_whitespace() || matches!(b, b'=' | b'/' | b'>')
                        });
                        let (name, after) = rest.split_at(run);
                        name.iter().for_each(|&b| self.name_byte(b));
                        rest = after;
                        0
                    }
                    State::Value(q) if !self.cut && !self.entity => {
                        let room = LIMIT.saturating_sub(self.value_len);
                        plain_run(rest, room, |b| b == q || b == b'&')
                    }
                    _ => 0,
                }
            };
            if run > 0 {
                let (plain, after) = rest.split_at(run);
                self.put(plain, out);
                if matches!(self.state, State::Value(_)) {
                    self.value_len += run;
                }
                rest = after;
                continue;
            }
            let Some((&b, after)) = rest.split_first() else {
                break;
            };
            rest = after;
            let b = match b {
                b'\r' => {
                    self.after_cr = true;
                    b'\n'
                }
                b'\n' if self.after_cr => {
                    self.after_cr = false;
                    continue;
                }
                _ => {
                    self.after_cr = false;
                    b
                }
            };
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Text => {
                if b == b'<' {
                    // (written once it is known whether the tag passes)
                    self.state = State::Open;
                    self.end_tag = false;
                    self.empty = false;
                } else {
                    self.put(&[b], out);
                }
            }
            State::Open => match b {
                b'/' => {
                    // an end tag: its name follows
                    self.end_tag = true;
                    self.put(b"</", out);
                }
                b'?' | b'!' => {
                    self.state = State::Other;
                    self.put(&[b'<', b], out);
                }
                _ => {
                    if !self.end_tag {
                        if self.skip.is_none() && self.depth >= MAX_DEPTH {
                            self.skip = Some(self.depth);
                        }
                        self.put(b"<", out);
                    }
                    self.start_name(b);
                }
            },
            State::Other => {
                if b == b'>' {
                    self.state = State::Text;
                }
                self.put(&[b], out);
            }
            State::Name => {
                if b.is_ascii_whitespace() || matches!(b, b'=' | b'/' | b'>') {
                    self.end_name(out);
                    self.state = State::Tag;
                    self.byte(b, out);
                } else {
                    self.name_byte(b);
                }
            }
            State::Tag => match b {
                b'>' => {
                    self.state = State::Text;
                    self.put(&[b], out);
                    if self.end_tag {
                        self.depth = self.depth.saturating_sub(1);
                    } else if !self.empty {
                        self.depth += 1;
                    }
                    if self.skip == Some(self.depth) {
                        self.skip = None; // the element left out has ended
                    }
                }
                b'\'' | b'"' => {
                    self.state = State::Value(b);
                    self.value_len = 0;
                    self.cut = false;
                    self.entity = false;
                    self.put(&[b], out);
                }
                b'/' => {
                    self.empty = !self.end_tag;
                    self.put(&[b], out);
                }
                b'=' => self.put(&[b], out),
                _ if b.is_ascii_whitespace() => self.put(&[b], out),
                _ => self.start_name(b),
            },
            State::Value(quote) => {
                if b == quote {
                    if self.cut {
                        let mark = format!("#{:016x}", self.value_tail.finish());
                        self.put(mark.as_bytes(), out);
                    }
                    self.state = State::Tag;
                    self.put(&[b], out);
                    return;
                }
                self.value_len += 1;
                // Cut only where a character starts, outside an entity reference.
                let boundary = !self.entity && (b & 0xC0) != 0x80;
                if self.value_len > LIMIT && boundary && !self.cut {
                    self.cut = true;
                    self.value_tail = self.keys.build_hasher();
                }
                if self.cut {
                    self.value_tail.write_u8(b);
                } else {
                    match b {
                        b'&' => self.entity = true,
                        b';' => self.entity = false,
                        _ => {}
                    }
                    self.put(&[b], out);
                }
            }
        }
    }

    fn start_name(&mut self, b: u8) {
        self.state = State::Name;
        self.name.clear();
        self.name_len = 0;
        self.name_byte(b);
    }

    fn name_byte(&mut self, b: u8) {
        self.name_len += 1;
        if self.name.len() <= LIMIT {
            self.name.push(b);
            if self.name.len() > LIMIT {
                self.name_tail = self.keys.build_hasher();
            }
        } else {
            self.name_tail.write_u8(b);
        }
    }

    fn end_name(&mut self, out: &mut Vec<u8>) {
        if self.name_len > LIMIT {
            let mut h = self.keys.build_hasher();
            h.write(&self.name);
            h.write_u64(self.name_tail.finish());
            let short = format!("long-name-{:016x}", h.finish());
            self.put(short.as_bytes(), out);
        } else if self.skip.is_none() {
            out.extend_from_slice(&self.name);
        }
    }

    /// Pass bytes on, unless an element too deep is being left out.
    fn put(&self, bytes: &[u8], out: &mut Vec<u8>) {
        if self.skip.is_none() {
            out.extend_from_slice(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_xmpp::minidom::Element;

    thread_local! {
        /// One key for a test's guards, so that their outputs compare.
        static KEYS: std::collections::hash_map::RandomState = Default::default();
    }

    fn keyed() -> Guard {
        Guard {
            keys: KEYS.with(Clone::clone),
            ..Guard::default()
        }
    }

    fn guarded(pieces: &[&[u8]]) -> String {
        let mut g = keyed();
        let mut out = Vec::new();
        for p in pieces {
            g.feed(p, &mut out);
        }
        String::from_utf8(out).expect("utf-8 in, utf-8 out")
    }

    /// The same output whether the bytes come at once, one by one, or in two halves.
    fn all_ways(input: &str) -> String {
        let whole = guarded(&[input.as_bytes()]);
        let bytes: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
        assert_eq!(guarded(&bytes), whole, "byte by byte");
        let (a, b) = input.as_bytes().split_at(input.len() / 2);
        assert_eq!(guarded(&[a, b]), whole, "in halves");
        whole
    }

    #[test]
    fn ordinary_stanzas_pass_as_they_are() {
        for s in [
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='x' from='gw'>",
            "<message from='a@b/c' to=\"r@gw\" type='groupchat' id='1'><body xml:lang='en'>x &amp; y &lt; z &#x1F389; é 🎉</body></message>",
            "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>",
            "<presence\n  from='a'\tto='b' ><x a = 'v'/></presence>",
        ] {
            assert_eq!(all_ways(s), s);
        }
    }

    #[test]
    fn line_breaks_are_normalized() {
        // (read, passed on)
        let cases = [
            ("<a x='a\rb'/>", "<a x='a\nb'/>"),
            ("<a x='a\r\nb'>c\r\n\rd</a>", "<a x='a\nb'>c\n\nd</a>"),
            ("é\r🎉\r\r\n", "é\n🎉\n\n"),
        ];
        for (read, passed) in cases {
            assert_eq!(all_ways(read), passed, "{read:?}");
        }
    }

    #[test]
    fn long_values_are_cut_between_characters_and_outside_entities() {
        // (as written, as read)
        for (unit, read) in [
            ("x", "x"),
            ("é", "é"),
            ("🎉", "🎉"),
            ("&amp;", "&"),
            ("a&#x1F389;", "a🎉"),
        ] {
            let times = 2 * LIMIT / unit.len() + 3;
            let value = unit.repeat(times);
            let xml = format!("<a xmlns='u' v='{value}' w=\"ok\">t</a>");
            let out = all_ways(&xml);
            let el: Element = out.parse().expect("well-formed after the cut");
            let (v, hash) = el.attr("v").expect("v").rsplit_once('#').expect("marked");
            assert_eq!(hash.len(), 16, "{unit}: the hash of what was cut off");
            assert!(read.repeat(times).starts_with(v), "{unit}: a prefix");
            assert!(out.len() < xml.len() && v.len() <= LIMIT, "{unit}: cut");
            assert_eq!(el.attr("w"), Some("ok"));
            assert_eq!(el.text(), "t");
        }
    }

    /// Values (or names) that differed only past the cut stay different: two namespace
    /// declarations cut to one prefix would make `a:x` and `b:x` one attribute twice, which
    /// ends the stream.
    #[test]
    fn cut_values_and_long_names_never_collide() {
        let prefix = "u".repeat(LIMIT + 10);
        let xml = format!(
            "<message xmlns='jabber:client'><p xmlns:a='{prefix}1' xmlns:b='{prefix}2' a:x='1' b:x='2' v='{prefix}1' w='{prefix}2'/></message>"
        );
        let out = all_ways(&xml);
        let el: Element = out.parse().expect("no duplicate attribute after the cut");
        let p = el.children().next().expect("p");
        assert_ne!(p.attr("v"), p.attr("w"));
        assert!(p.attr("v").is_some_and(|v| v.len() < LIMIT + 20));
        // equal values stay equal (the same stream, the same key)
        let same = all_ways(&format!("<r xmlns='u' v='{prefix}1' w='{prefix}1'/>"));
        let r: Element = same.parse().expect("well-formed");
        assert_eq!(r.attr("v"), r.attr("w"));
        // a name written as the replacement of another one does not meet it: the key is
        // the stream's own
        let long = "n".repeat(LIMIT + 1);
        let mut g = keyed();
        let mut first = Vec::new();
        g.feed(format!("<r xmlns='u' {long}='1'/>").as_bytes(), &mut first);
        let first = String::from_utf8(first).expect("utf-8");
        let replaced = first
            .split_whitespace()
            .find(|w| w.starts_with("long-name-"))
            .and_then(|w| w.split('=').next())
            .expect("renamed")
            .to_string();
        let mut other = Vec::new();
        Guard::default().feed(
            format!("<r xmlns='u' {replaced}='x' {long}='1'/>").as_bytes(),
            &mut other,
        );
        let other: Element = String::from_utf8(other)
            .expect("utf-8")
            .parse()
            .expect("no collision with a name chosen in advance");
        assert_eq!(other.attr(replaced.as_str()), Some("x"));
    }

    #[test]
    fn long_names_are_replaced_alike_in_start_and_end_tags() {
        let long = "n".repeat(LIMIT + 1);
        let other = "m".repeat(3 * LIMIT);
        let xml = format!(
            "<message xmlns='jabber:client'><{long} xmlns='urn:x' {other}='1' b='2'><{long}/></{long}><{other}/><ok/></message>"
        );
        let out = all_ways(&xml);
        let el: Element = out.parse().expect("well-formed after the renaming");
        let names: Vec<&str> = el.children().map(|c| c.name()).collect();
        assert_eq!(names.len(), 3);
        assert!(names[0].starts_with("long-name-") && names[1].starts_with("long-name-"));
        assert_ne!(names[0], names[1]);
        assert_eq!(names[2], "ok");
        let first = el.children().next().expect("first");
        assert_eq!(first.attr("b"), Some("2"));
        assert_eq!(first.children().next().map(|c| c.name()), Some(names[0]));
        // a name of exactly LIMIT bytes is kept
        let edge = "e".repeat(LIMIT);
        assert_eq!(all_ways(&format!("<{edge}/>")), format!("<{edge}/>"));
    }

    /// The depth of the deepest element (the root is 1).
    fn depth(el: &Element) -> usize {
        1 + el.children().map(depth).max().unwrap_or(0)
    }

    #[test]
    fn elements_too_deep_are_left_out() {
        // (levels of <d> inside the root, the depth passed on)
        for (levels, passed) in [
            (MAX_DEPTH - 1, MAX_DEPTH),
            (MAX_DEPTH, MAX_DEPTH),
            (MAX_DEPTH + 1, MAX_DEPTH),
            (10 * MAX_DEPTH, MAX_DEPTH),
        ] {
            let xml = format!(
                "<r xmlns='u'>{}<e a='>'/>text{}<ok/><d/></r>",
                "<d x='1'>".repeat(levels),
                "</d>".repeat(levels)
            );
            let out = all_ways(&xml);
            let el: Element = out.parse().expect("well-formed after leaving out");
            assert_eq!(depth(&el), passed, "{levels} levels");
            let names: Vec<&str> = el.children().map(|c| c.name()).collect();
            assert_eq!(
                names,
                ["d", "ok", "d"],
                "{levels} levels: what follows stays"
            );
        }
    }
}
