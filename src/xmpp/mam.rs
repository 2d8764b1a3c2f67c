//! XEP-0313 message archive queries on a room: the query as plain data (data form + XEP-0059
//! result set), and the result stanzas built from archived messages.

use super::ns;
use super::outbound::{rfc3339, Outgoing};
use super::{set_attr, Attrs};
use tokio_xmpp::minidom::Element;

/// Largest page served, whatever `max` asks.
pub const MAX_PAGE: usize = 250;
/// Page size when the client gives none.
pub const DEFAULT_PAGE: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MamQuery {
    pub queryid: Option<String>,
    /// Unix ms bounds, inclusive.
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub max: usize,
    /// RSM: the page after this archive id.
    pub after: Option<String>,
    /// RSM: the page before this archive id; Some(None) = the last page (empty `<before/>`).
    pub before: Option<Option<String>>,
    /// Only these archive ids (urn:xmpp:mam:2#extended `ids`).
    pub ids: Vec<String>,
}

pub fn parse_query(q: &Element) -> Result<MamQuery, String> {
    let mut out = MamQuery {
        queryid: q.attr("queryid").map(String::from),
        max: DEFAULT_PAGE,
        ..MamQuery::default()
    };
    if let Some(form) = q.get_child("x", ns::DATA) {
        for f in form.children().filter(|f| f.is("field", ns::DATA)) {
            let values: Vec<String> = f
                .children()
                .filter(|v| v.is("value", ns::DATA))
                .map(|v| v.text().trim().to_string())
                .collect();
            let one = values.first().cloned().unwrap_or_default();
            match f.attr("var").unwrap_or("") {
                "FORM_TYPE" => {
                    if one != ns::MAM {
                        return Err(format!("unknown form type {one}"));
                    }
                }
                "start" => out.start = Some(parse_stamp(&one)?),
                "end" => out.end = Some(parse_stamp(&one)?),
                "after-id" => out.after = Some(one),
                "before-id" => out.before = Some(Some(one)),
                "ids" => out.ids = values,
                // a room archive holds one conversation: `with` cannot narrow it further
                other => return Err(format!("the archive cannot filter by '{other}'")),
            }
        }
    }
    if let Some(set) = q.get_child("set", ns::RSM) {
        if let Some(m) = set.get_child("max", ns::RSM) {
            out.max = m
                .text()
                .trim()
                .parse()
                .map_err(|_| "max is not a number".to_string())?;
        }
        if let Some(a) = set.get_child("after", ns::RSM) {
            out.after = Some(a.text().trim().to_string());
        }
        if let Some(b) = set.get_child("before", ns::RSM) {
            let t = b.text().trim().to_string();
            out.before = Some((!t.is_empty()).then_some(t));
        }
    }
    out.max = out.max.min(MAX_PAGE);
    Ok(out)
}

/// XEP-0082 date-time ("2026-11-30T12:00:00Z", fraction and offset optional) to Unix ms.
pub fn parse_stamp(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not an XEP-0082 date-time");
    let s = s.trim();
    let (date, time) = s.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [y, m, d] = d[..] else { return Err(bad()) };
    let (clock, offset_min) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else {
        let at = time.rfind(['+', '-']).ok_or_else(bad)?;
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off[1..].split_once(':').ok_or_else(bad)?;
        let oh: i64 = oh.parse().map_err(|_| bad())?;
        let om: i64 = om.parse().map_err(|_| bad())?;
        if !(0..=23).contains(&oh) || !(0..=59).contains(&om) {
            return Err(bad());
        }
        (c, sign * (oh * 60 + om))
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let t: Vec<i64> = hms
        .split(':')
        .map(|p| p.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let [hh, mm, ss] = t[..] else {
        return Err(bad());
    };
    // (years and offsets bounded: the arithmetic below cannot overflow)
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || !(0..=9999).contains(&y)
        || !(0..=23).contains(&hh)
        || !(0..=59).contains(&mm)
        || !(0..=60).contains(&ss)
        || offset_min.abs() > 24 * 60
    {
        return Err(bad());
    }
    let millis: i64 = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().take(3).collect();
        if !frac.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        format!("{digits:0<3}").parse().map_err(|_| bad())?
    };
    // Howard Hinnant's days_from_civil.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 86_400 + hh * 3600 + mm * 60 + ss) - offset_min * 60) * 1000 + millis)
}

/// One archived message as a result: `<message><result><forwarded><delay/><message/>`.
pub fn result(
    room: &str,
    to: &str,
    queryid: Option<&str>,
    archive_id: &str,
    stamp: i64,
    message: Outgoing,
) -> Outgoing {
    // forwarded stanzas are client stanzas (XEP-0297)
    let message = match message.to_element() {
        Some(m) => super::xml::as_client(&m),
        // (not reached: messages are written well-formed; an empty one says something broke)
        None => {
            tracing::error!(room, archive_id, "an archived message does not read as XML");
            Element::bare("message", "jabber:client")
        }
    };
    let mut res = Element::builder("result", ns::MAM)
        .at("id", archive_id)
        .build();
    if let Some(q) = queryid {
        set_attr(&mut res, "queryid", q);
    }
    let forwarded = Element::builder("forwarded", ns::FORWARD)
        .append(
            Element::builder("delay", ns::DELAY)
                .at("stamp", rfc3339(stamp))
                .build(),
        )
        .append(message)
        .build();
    res.append_child(forwarded);
    let el = Element::builder("message", ns::STREAM)
        .at("from", room)
        .at("to", to)
        .at("id", format!("mam-{}", rand::random::<u64>()))
        .append(res)
        .build();
    Outgoing {
        stanza: el.into(),
        durable: false,
    }
}

/// The end of a query, answering its IQ: `<fin complete>` with the page's first and last
/// ids and the count.
pub fn fin(
    room: &str,
    to: &str,
    iq_id: &str,
    complete: bool,
    first: Option<&str>,
    last: Option<&str>,
    count: i64,
) -> Outgoing {
    let mut set = Element::builder("set", ns::RSM).build();
    if let Some(f) = first {
        set.append_child(Element::builder("first", ns::RSM).append(f).build());
    }
    if let Some(l) = last {
        set.append_child(Element::builder("last", ns::RSM).append(l).build());
    }
    set.append_child(
        Element::builder("count", ns::RSM)
            .append(count.to_string())
            .build(),
    );
    let fin = Element::builder("fin", ns::MAM)
        .at("complete", if complete { "true" } else { "false" })
        .append(set)
        .build();
    super::outbound::iq_result(room, to, iq_id, Some(fin))
}

/// The fields a query may use (answer to an iq get of the query element).
pub fn form() -> Element {
    let field = |var: &str, typ: &str| {
        Element::builder("field", ns::DATA)
            .at("var", var)
            .at("type", typ)
            .build()
    };
    let mut ft = field("FORM_TYPE", "hidden");
    ft.append_child(Element::builder("value", ns::DATA).append(ns::MAM).build());
    Element::builder("query", ns::MAM)
        .append(
            Element::builder("x", ns::DATA)
                .at("type", "form")
                .append(ft)
                .append(field("start", "text-single"))
                .append(field("end", "text-single"))
                .append(field("before-id", "text-single"))
                .append(field("after-id", "text-single"))
                .append(field("ids", "text-multi"))
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_parse_and_round_trip() {
        for ms in [0, 951_782_400_123, 1_795_000_000_000, -86_400_000] {
            assert_eq!(parse_stamp(&rfc3339(ms)), Ok(ms));
        }
        for (s, ms) in [
            ("2026-11-18T11:06:40Z", 1_795_000_000_000),
            ("2026-11-18T12:06:40+01:00", 1_795_000_000_000),
            ("2026-11-18T11:06:40.5Z", 1_795_000_000_500),
            ("2026-11-18T11:06:40.123456Z", 1_795_000_000_123),
        ] {
            assert_eq!(parse_stamp(s), Ok(ms), "{s}");
        }
        for bad in [
            "",
            "2026-11-18",
            "2026-13-01T00:00:00Z",
            "x-y-zTa:b:cZ",
            "2026-11-18T25:00:00Z",
            "2026-11-18T10:00:00.1aZ",
            "2026-11-18T10:00Z",
        ] {
            assert!(parse_stamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn queries_parse() {
        let q = |inner: &str| -> Result<MamQuery, String> {
            let el: Element = format!("<query xmlns='urn:xmpp:mam:2' queryid='q'>{inner}</query>")
                .parse()
                .expect("xml");
            parse_query(&el)
        };
        let plain = q("").expect("plain");
        assert_eq!(
            (plain.max, plain.queryid.as_deref()),
            (DEFAULT_PAGE, Some("q"))
        );
        let last = q("<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set>")
            .expect("last page");
        assert_eq!((last.max, last.before), (10, Some(None)));
        let after = q(
            "<set xmlns='http://jabber.org/protocol/rsm'><max>100000</max><after>s9</after></set>",
        )
        .expect("after");
        assert_eq!((after.max, after.after.as_deref()), (MAX_PAGE, Some("s9")));
        let form = q("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='start'><value>1970-01-01T00:00:01Z</value></field></x>").expect("form");
        assert_eq!(form.start, Some(1000));
        for bad in [
            "<x xmlns='jabber:x:data'><field var='with'><value>a@b</value></field></x>",
            "<x xmlns='jabber:x:data'><field var='start'><value>yesterday</value></field></x>",
            "<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>",
        ] {
            assert!(q(bad).is_err(), "{bad}");
        }
    }
}
