//! Counters and gauges, rendered in the Prometheus text format by the HTTP listener.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(String, String), u64>>,
    connected: Mutex<BTreeMap<String, bool>>,
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    inner.join(",")
}

impl Metrics {
    pub fn inc(&self, name: &str, pairs: &[(&str, &str)]) {
        self.add(name, pairs, 1);
    }

    pub fn add(&self, name: &str, pairs: &[(&str, &str)], n: u64) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *c.entry((name.to_string(), labels(pairs))).or_default() += n;
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
        let mut last = "";
        for ((name, l), v) in c.iter() {
            if name != last {
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            let _ = writeln!(out, "{name}{{{l}}} {v}");
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
        m.set_connected("gw.example", true);
        let text = m.render(&[("causeway_outbox_depth", "unacknowledged stanzas", 4)]);
        for line in [
            "causeway_messages_bridged_total{network=\"demo\",direction=\"to_xmpp\"} 3",
            "causeway_errors_total{kind=\"a\\\"b\"} 1",
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
