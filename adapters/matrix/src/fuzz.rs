//! Fuzz targets of the Matrix adapter (issue 16): property tests, on stable Rust, over
//! `org.matrix.custom.html` read (`convert::from_html`) and written (`to_html`), mentions by
//! name (`add_mentions`), reply fallbacks of plain bodies (`strip_reply_fallback`), and
//! Matrix user ids and puppet localparts (`ids`): what Matrix users and homeservers send, and
//! what XMPP users send to Matrix.
//!
//! Inputs are biased to what breaks parsers: markup nested thousands deep, runs of one
//! character thousands long, odd Unicode (combining marks, bidi controls, joiners, U+FFFD,
//! non-characters, NUL and controls, every line break), entity-like text, and mixtures of
//! all. Each case is at most 64 KiB and must finish within `budget()`.
//!
//! Cases per target: `CAUSEWAY_FUZZ_CASES` (default `DEFAULT_CASES`, what CI runs);
//! `scripts/fuzz [cases]` runs all targets of the workspace long, in release mode. A failure
//! is shrunk and its seed saved in `proptest-regressions/fuzz.txt` (committed: the
//! regression inputs), which every run replays first.

use crate::{convert, ids};
use causeway_api::fuzzing::{self, *};
use causeway_api::{hostile, Content, RemoteUserId, Style};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------------------
// The harness: causeway_api::fuzzing, failures kept beside this file.

fn fuzz<S>(name: &'static str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    fuzzing::fuzz(file!(), name, strategy, test)
}

// ---------------------------------------------------------------------------------------
// Generators

/// HTML as Matrix clients write it, tags broken and unknown, attributes hostile.
const HTML: &[&str] = &[
    "<b>",
    "</b>",
    "<strong>",
    "</strong>",
    "<i>",
    "</i>",
    "<em>",
    "</em>",
    "<del>",
    "</del>",
    "<s>",
    "<strike>",
    "<code>",
    "</code>",
    "<pre>",
    "</pre>",
    "<pre><code class=\"language-rust\">",
    "<pre><code class=\"language-\">",
    "</code></pre>",
    "<blockquote>",
    "</blockquote>",
    "<mx-reply>",
    "</mx-reply>",
    "<a href=\"https://x.y\">",
    "<a href=\"https://matrix.to/#/@alice:example.org\">",
    "<a href=\"https://matrix.to/#/@Alice:x\">",
    "<a href=\"https://matrix.to/#/@a%b:x\">",
    "<a href=\"javascript:alert(1)\">",
    "<a href='https://x.y/\"'>",
    "<a>",
    "</a>",
    "<br>",
    "<br/>",
    "</br>",
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<ul>",
    "<ol>",
    "<li>",
    "</li>",
    "</ul>",
    "<h1>",
    "</h1>",
    "<h6>",
    "<hr>",
    "<table><tr><td>",
    "</td></tr></table>",
    "<img alt=\":party:\" src=\"mxc://x/y\">",
    "<img>",
    "<script>",
    "</script>",
    "<style>",
    "<head>",
    "<span data-mx-spoiler>",
    "</span>",
    "<font color=red>",
    "<svg><math>",
    "<template>",
    "<select><option>",
    "<textarea>",
    "<plaintext>",
    "<xmp>",
    "<noscript>",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<!DOCTYPE html>",
    "<?xml?>",
    "<",
    ">",
    "</",
    "/>",
    "<b a=1>",
    "<b/>",
    "&",
    "&nbsp;",
    "&#x0;",
    "&#xD800;",
    "&#1114112;",
    "&NotAnEntity;",
    " ",
    "\n",
    "\n\n",
    "x",
    "word",
    "@Alice",
    "@al",
    "Al:",
    "> ",
];

/// HTML nested: (opening, closing).
const NESTS: &[(&str, &str)] = &[
    ("<b>", "</b>"),
    ("<i>", "</i>"),
    ("<blockquote>", "</blockquote>"),
    ("<a href=\"https://x.y\">", "</a>"),
    ("<pre><code>", "</code></pre>"),
    ("<ul><li>", "</li></ul>"),
    ("<mx-reply>", "</mx-reply>"),
    ("<p>", ""),
    ("<b a=1>", ""),
    ("<div>", "</div>"),
    ("<table><tr><td>", ""),
    ("<code>", "</code>"),
    ("<h1>", "</h1>"),
    ("<span>", "</span>"),
    ("<li>", ""),
];

fn text() -> BoxedStrategy<String> {
    fuzzing::text(HTML, NESTS)
}

/// Content as the core hands it to the adapter (`fuzzing::content`).
fn content() -> BoxedStrategy<Content> {
    fuzzing::content(text(), style())
}

/// Short hostile text (names, URLs, ids).
fn short_text() -> BoxedStrategy<String> {
    vec(piece(HTML), 0..5).prop_map(|v| v.concat()).boxed()
}

/// Matrix user ids, well-formed (as the spec has them, and historical ones) or not.
fn mxid_like() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "@[a-z0-9._=/+-]{1,20}:[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        2 => "@[!-9;-~]{1,20}:[a-zA-Z0-9.-]{1,20}",
        1 => "@[a-z]{1,8}:\\[[0-9a-f:]{2,16}\\](:[0-9]{1,5})?",
        1 => "[@!#$+%]?[a-zA-Z0-9%:@._=/+-]{0,24}",
        1 => short_text(),
    ]
    .boxed()
}

fn style() -> BoxedStrategy<Style> {
    prop_oneof![
        3 => Just(Style::Bold),
        3 => Just(Style::Italic),
        2 => Just(Style::Strike),
        2 => Just(Style::Code),
        1 => prop::option::of(short_text()).prop_map(Style::Pre),
        2 => Just(Style::Quote),
        1 => short_text().prop_map(Style::Link),
        1 => prop_oneof![
            mxid_like(),
            "[a-z0-9._=-]{1,12}%[a-z0-9.-]{1,12}",
        ]
        .prop_map(|s| Style::Mention(RemoteUserId::new(s))),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// Targets

#[test]
fn fuzz_from_html() {
    fuzz("from_html", text(), |html| {
        // as events.rs reads a formatted body: HTML only when tame, else the plain body
        if !convert::html_is_tame(&html) {
            let plain = timed("strip_reply_fallback", || {
                convert::strip_reply_fallback(&html)
            })?;
            return check(html.ends_with(plain), || "not a suffix".into());
        }
        let c = timed("from_html", || convert::from_html(&html))?;
        hostile::check_content(&c).map_err(TestCaseError::fail)?;
        check(c.text.trim_end() == c.text, || {
            "trailing whitespace kept".into()
        })?;
        // and written back (as what an XMPP user was shown)
        if let Some((back, _)) = timed("to_html", || convert::to_html(&c))? {
            let again = timed("from_html written", || convert::from_html(&back))?;
            hostile::check_content(&again).map_err(TestCaseError::fail)?;
        }
        Ok(())
    });
}

/// A Matrix body read, written back as HTML and read again keeps its text. Not a path
/// messages take (what is read from Matrix is written for XMPP), but where the reader and
/// the writer disagree on HTML.
#[test]
#[ignore = "finding: blocks inside inline spans or blocks (`<code><pre>`, `<pre>` in `<pre>`) \
            gain or lose a line break when written and read again"]
fn fuzz_from_html_round_trip() {
    fuzz("from_html_round_trip", text(), |html| {
        if !convert::html_is_tame(&html) {
            return Ok(());
        }
        let c = timed("from_html", || convert::from_html(&html))?;
        if let Some((back, _)) = timed("to_html", || convert::to_html(&c))? {
            let again = timed("from_html written", || convert::from_html(&back))?;
            check(again.text == c.text, || {
                format!(
                    "the text read, written and read again: {}",
                    diff(&c.text, &again.text)
                )
            })?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_to_html() {
    fuzz("to_html", content(), |c| {
        let Some((html, mentions)) = timed("to_html", || convert::to_html(&c))? else {
            return check(c.spans.is_empty(), || "spans and no HTML".into());
        };
        for m in &mentions {
            check(ids::remote_user(m).is_some(), || {
                format!("mentions {m:?}, not a user id")
            })?;
        }
        let read = timed("from_html", || convert::from_html(&html))?;
        hostile::check_content(&read).map_err(TestCaseError::fail)
    });
}

/// Members by display name: (name, Matrix id), names hostile.
fn members() -> BoxedStrategy<Vec<(String, String)>> {
    vec(
        (
            prop_oneof![
                3 => select(vec!["Alice", "alice", "Al", "Alice A", "é", "", "@", "a:b", "x", "İ"]).prop_map(String::from),
                1 => short_text(),
            ],
            mxid_like(),
        ),
        0..5,
    )
    .boxed()
}

#[test]
fn fuzz_add_mentions() {
    let strategy = (content(), members(), any::<bool>());
    fuzz("add_mentions", strategy, |(mut c, names, keep_spans)| {
        if !keep_spans {
            c.spans.clear();
        }
        // (from well-formed content: the contract's)
        c.spans
            .retain(|s| s.start <= s.end && s.end <= c.text.len());
        let before = c.spans.clone();
        let valid = hostile::check_content(&c).is_ok();
        timed("add_mentions", || convert::add_mentions(&mut c, &names))?;
        if valid {
            hostile::check_content(&c).map_err(TestCaseError::fail)?;
        }
        // the spans there were stay, and each one added mentions a member by a valid id
        for s in &before {
            check(c.spans.contains(s), || format!("{s:?} lost"))?;
        }
        for s in c.spans.iter().filter(|s| !before.contains(s)) {
            let Style::Mention(u) = &s.style else {
                return Err(TestCaseError::fail(format!("{s:?} added")));
            };
            let named = names
                .iter()
                .any(|(_, id)| ids::remote_user(id).as_ref() == Some(u));
            check(named, || format!("{u:?} mentioned"))?;
        }
        Ok(())
    });
}

#[test]
fn fuzz_strip_reply_fallback() {
    let body = prop_oneof![
        1 => text(),
        1 => (vec(short_text(), 0..4), text()).prop_map(|(quoted, rest)| {
            let mut s: String = quoted.iter().map(|q| format!("> {q}\n")).collect();
            s.push('\n');
            s.push_str(&rest);
            s
        }),
    ];
    fuzz("strip_reply_fallback", body, |body| {
        let kept = timed("strip_reply_fallback", || {
            convert::strip_reply_fallback(&body)
        })?;
        check(body.ends_with(kept), || "not a suffix".into())?;
        if kept.len() < body.len() {
            let cut = &body[..body.len() - kept.len()];
            check(
                cut.starts_with("> ")
                    && cut.ends_with("\n\n")
                    && cut[..cut.len() - 2].lines().all(|l| l.starts_with('>')),
                || format!("cut {cut:?}"),
            )?;
        }
        Ok(())
    });
}

/// A Matrix user (as the homeserver names it) as a remote id, and back.
#[test]
#[ignore = "finding: users with historical localparts (`@Alice:x`, `@&:x`) become remote ids \
            that `mxid` refuses: they cannot be mentioned or addressed from XMPP"]
fn fuzz_ids_users() {
    fuzz("ids_users", mxid_like(), |mx| {
        if let Some(u) = timed("remote_user", || ids::remote_user(&mx))? {
            let back = ids::mxid(u.as_str());
            check(back.as_deref() == Some(mx.as_str()), || {
                format!("{mx:?} -> {u:?} -> {back:?}")
            })?;
        }
        Ok(())
    });
}

/// A remote id as a Matrix user: a valid user id, that maps back.
#[test]
fn fuzz_ids_mxid() {
    let remote = prop_oneof![
        1 => mxid_like(),
        1 => (mxid_like(), mxid_like()).prop_map(|(a, b)| format!("{}%{}", a.trim_start_matches('@'), b)),
        1 => "[a-z0-9._=/+-]{1,8}%[a-z0-9.:%\\[\\]-]{0,12}",
    ];
    fuzz("ids_mxid", remote, |user| {
        if let Some(m) = timed("mxid", || ids::mxid(&user))? {
            let back = ids::remote_user(&m);
            check(back.is_some(), || {
                format!("{user:?} -> {m:?}, not a user id")
            })?;
            if !user.starts_with('@') {
                check(
                    back.as_ref().map(|b| b.as_str()) == Some(user.as_str()),
                    || format!("{user:?} -> {m:?} -> {back:?}"),
                )?;
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_ids_puppets() {
    let jid = prop_oneof![
        2 => "[a-zA-Z0-9._=%+-]{1,12}@[a-zA-Z0-9.-]{1,12}",
        1 => (short_text(), short_text()).prop_map(|(a, b)| format!("{a}@{b}")),
        1 => short_text(),
    ];
    let prefix = select(vec!["_xmpp_", "", "x=", "_"]);
    let strategy = (jid, prefix, short_text());
    fuzz("ids_puppets", strategy, |(jid, prefix, local)| {
        // a puppet's localpart and back
        let lp = timed("puppet_localpart", || ids::puppet_localpart(prefix, &jid))?;
        check(
            lp[prefix.len()..]
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'/' | b'=')),
            || format!("{jid:?} -> {lp:?}"),
        )?;
        let back = timed("puppet_jid", || ids::puppet_jid(prefix, &lp))?;
        let want = jid.to_lowercase();
        if want.contains('@') {
            check(back.as_deref() == Some(want.as_str()), || {
                format!("{jid:?} -> {lp:?} -> {back:?}")
            })?;
        }
        // any localpart: no panic
        let _ = timed("puppet_jid", || ids::puppet_jid(prefix, &local))?;
        Ok(())
    });
}
