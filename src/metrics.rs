//! Counters and gauges, rendered in the Prometheus text format by the HTTP listener.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    /// name -> rendered labels -> count (looked up without allocating but for the labels).
    counters: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    connected: Mutex<BTreeMap<String, bool>>,
}

/// `k="v",...` with values escaped as the text format asks (one pass, one allocation).
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + v.len() + 4).sum());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

impl Metrics {
    pub fn inc(&self, name: &str, pairs: &[(&str, &str)]) {
        self.add(name, pairs, 1);
    }

    pub fn add(&self, name: &str, pairs: &[(&str, &str)], n: u64) {
        let l = labels(pairs);
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let by_labels = match c.get_mut(name) {
            Some(m) => m,
            None => c.entry(name.to_string()).or_default(),
        };
        match by_labels.get_mut(&l) {
            Some(v) => *v += n,
            None => {
                by_labels.insert(l, n);
            }
        }
    }

    pub fn set_connected(&self, domain: &str, up: bool) {
        self.connected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(domain.to_string(), up);
    }

    /// Every configured stream is up (and at least one is configured).
    pub fn all_connected(&self) -> bool {
        let c = self.connected.lock().unwrap_or_else(|p| p.into_inner());
        !c.is_empty() && c.values().all(|v| *v)
    }

    pub fn connected(&self) -> BTreeMap<String, bool> {
        self.connected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The Prometheus exposition; gauges read elsewhere (outbox depth) are passed in.
    pub fn render(&self, gauges: &[(&str, &str, i64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# TYPE causeway_stream_connected gauge");
        for (domain, up) in self.connected() {
            let _ = writeln!(
                out,
                "causeway_stream_connected{{{}}} {}",
                labels(&[("domain", &domain)]),
                u8::from(up)
            );
        }
        for (name, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for (name, by_labels) in c.iter() {
            let _ = writeln!(out, "# TYPE {name} counter");
            for (l, v) in by_labels {
                let _ = writeln!(out, "{name}{{{l}}} {v}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.inc(
            "causeway_messages_bridged_total",
            &[("network", "demo"), ("direction", "to_xmpp")],
        );
        m.add(
            "causeway_messages_bridged_total",
            &[("network", "demo"), ("direction", "to_xmpp")],
            2,
        );
        m.inc("causeway_errors_total", &[("kind", "a\"b")]);
        m.inc("causeway_errors_total", &[("kind", "c\\d\ne")]);
        m.set_connected("gw.example", true);
        let text = m.render(&[("causeway_outbox_depth", "unacknowledged stanzas", 4)]);
        for line in [
            "causeway_messages_bridged_total{network=\"demo\",direction=\"to_xmpp\"} 3",
            "causeway_errors_total{kind=\"a\\\"b\"} 1",
            "causeway_errors_total{kind=\"c\\\\d\\ne\"} 1",
            "causeway_stream_connected{domain=\"gw.example\"} 1",
            "causeway_outbox_depth 4",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert!(m.all_connected());
        m.set_connected("gw.example", false);
        assert!(!m.all_connected());
    }
}
