//! `GET /metrics` in the Prometheus text format (version 0.0.4), written by
//! hand: a dozen series do not justify a metrics crate in the agent.

use std::fmt::Write;

use crate::status::{POLL_BUCKETS, View};
use crate::store::OutboxStats;

/// The exposition. `stats` is `None` when the state file could not be read.
pub(crate) fn render(view: &View, stats: Option<&OutboxStats>) -> String {
    let mut out = String::with_capacity(4096);

    let h = &view.poll_histogram;
    let mut buckets: Vec<(String, f64)> = Vec::with_capacity(POLL_BUCKETS.len() + 1);
    let mut cumulative = 0u64;
    for (i, bound) in POLL_BUCKETS.iter().enumerate() {
        cumulative += h.counts[i];
        buckets.push((format!("{{le=\"{bound}\"}}"), cumulative as f64));
    }
    cumulative += h.counts[POLL_BUCKETS.len()];
    buckets.push(("{le=\"+Inf\"}".to_owned(), cumulative as f64));
    {
        let name = "mikrotik_edge_poll_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time of one successful poll cycle (read, step, commit)."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (labels, v) in &buckets {
            let _ = writeln!(out, "{name}_bucket{labels} {}", number(*v));
        }
        let _ = writeln!(out, "{name}_sum {}", number(h.sum_secs));
        let _ = writeln!(out, "{name}_count {}", h.count);
    }
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {}", number(*v));
        }
    };
    let u = &view.users;
    metric(
        "mikrotik_edge_users_online",
        "gauge",
        "Active sessions at the last poll, by service.",
        &[
            ("{service=\"hotspot\"}", u.hotspot_active as f64),
            ("{service=\"pppoe\"}", u.ppp_active as f64),
        ],
    );
    metric(
        "mikrotik_edge_users",
        "gauge",
        "Hotspot users and PPP secrets on the router at the last poll, by service.",
        &[
            ("{service=\"hotspot\"}", u.hotspot_users as f64),
            ("{service=\"pppoe\"}", u.ppp_secrets as f64),
        ],
    );
    if let Some(s) = stats {
        metric(
            "mikrotik_edge_events_pending",
            "gauge",
            "Events in the outbox now, waiting for upload.",
            &[("", s.pending as f64)],
        );
        metric(
            "mikrotik_edge_events_queued_since_start_total",
            "counter",
            "Events added to the outbox since the agent started, from every source \
             (monitor, sync, user API, alerts).",
            &[("", s.queued_since_start as f64)],
        );
    }
    metric(
        "mikrotik_edge_events_uploaded_since_start_total",
        "counter",
        "Events the central side acknowledged since the agent started, including a \
         backlog queued before the start.",
        &[("", view.uplink.uploaded as f64)],
    );
    metric(
        "mikrotik_edge_router_connected",
        "gauge",
        "1 while the API session to the router is up.",
        &[("", if view.router_connected { 1.0 } else { 0.0 })],
    );
    metric(
        "mikrotik_edge_router_reconnects_total",
        "counter",
        "Router sessions lost and connection attempts failed since start.",
        &[("", view.reconnects as f64)],
    );
    if let Some(us) = view.router_rtt_us {
        metric(
            "mikrotik_edge_router_rtt_seconds",
            "gauge",
            "Round trip of /system/identity/print at the last (re)connect or forced poll.",
            &[("", us as f64 / 1e6)],
        );
    }
    metric(
        "mikrotik_edge_polls_total",
        "counter",
        "Successful poll cycles since start.",
        &[("", view.polls as f64)],
    );
    metric(
        "mikrotik_edge_poll_failures_total",
        "counter",
        "Poll cycles skipped because the router reads failed.",
        &[("", view.poll_failures as f64)],
    );
    if let Some(t) = view.last_poll {
        metric(
            "mikrotik_edge_last_successful_poll_timestamp_seconds",
            "gauge",
            "Unix time of the last successful poll.",
            &[("", t.unix() as f64)],
        );
    }
    if let Some(c) = &view.clock {
        let label = format!("{{source=\"{}\"}}", c.source.as_str());
        metric(
            "mikrotik_edge_clock_trusted",
            "gauge",
            "1 while the wall clock is trusted, labelled by where the trust comes from.",
            &[(&label, if c.trusted { 1.0 } else { 0.0 })],
        );
        if let Some(skew) = c.skew_secs {
            metric(
                "mikrotik_edge_clock_skew_seconds",
                "gauge",
                "Agent wall clock minus the reference clock (router NTP or central).",
                &[("", skew as f64)],
            );
        }
    }
    metric(
        "mikrotik_edge_start_time_seconds",
        "gauge",
        "Unix time the agent started.",
        &[("", view.started_at.unix() as f64)],
    );
    out
}

/// Integers without a fraction, the rest as Rust prints floats (which
/// Prometheus parses).
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::StreamId;

    #[test]
    fn histogram_is_cumulative_and_series_are_typed() {
        let mut view = View::new("s".into(), StreamId([0; 16]), Arc::default());
        view.poll_histogram.observe(0.01);
        view.poll_histogram.observe(0.3);
        view.poll_histogram.observe(100.0);
        view.router_rtt_us = Some(1500);
        view.clock = Some(crate::monitor::ClockVerdict {
            trusted: false,
            source: crate::event::ClockSource::None,
            skew_secs: Some(-90),
            best_now: crate::clock::Timestamp::from_unix(0),
            mono_secs: 0,
        });
        let text = render(
            &view,
            Some(&OutboxStats {
                pending: 7,
                queued_since_start: 12,
                ..Default::default()
            }),
        );
        assert!(text.contains("mikrotik_edge_poll_duration_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("mikrotik_edge_poll_duration_seconds_bucket{le=\"0.5\"} 2\n"));
        assert!(text.contains("mikrotik_edge_poll_duration_seconds_bucket{le=\"60\"} 2\n"));
        assert!(text.contains("mikrotik_edge_poll_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("mikrotik_edge_poll_duration_seconds_count 3\n"));
        assert!(text.contains("mikrotik_edge_events_pending 7\n"));
        assert!(text.contains("mikrotik_edge_events_queued_since_start_total 12\n"));
        assert!(text.contains("mikrotik_edge_events_uploaded_since_start_total 0\n"));
        assert!(text.contains("mikrotik_edge_router_rtt_seconds 0.0015\n"));
        assert!(text.contains("mikrotik_edge_clock_trusted{source=\"none\"} 0\n"));
        assert!(text.contains("mikrotik_edge_clock_skew_seconds -90\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("mikrotik_edge_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
