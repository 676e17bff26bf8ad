//! The `ingest_batch` arguments for a run of queued events.

use serde_json::{Value, json};

use crate::event::{Event, StreamId};

/// `{"site_id", "batch": {"batch_id", "stream", "events"}}`, events oldest
/// first, each with `prev`: the seq of the event before it in the outbox
/// now (`prev_of_first` for the first one: the last acked seq). Using the
/// outbox order, not `seq - 1`, lets compaction and drops re-link the chain.
pub fn ingest_args(site: &str, stream: StreamId, prev_of_first: u64, events: &[Event]) -> Value {
    let stream_text = stream.to_string();
    let mut prev = prev_of_first;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        let mut v = e.to_json(site, stream);
        if let Value::Object(m) = &mut v {
            m.insert("prev".into(), prev.into());
        }
        prev = e.seq;
        out.push(v);
    }
    let first = events.first().map_or(0, |e| e.seq);
    let last = events.last().map_or(0, |e| e.seq);
    json!({
        "site_id": site,
        "batch": {
            "batch_id": format!("{stream_text}:{first}-{last}"),
            "stream": stream_text,
            "events": out,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::event::{EventKind, RouterState};

    fn ev(seq: u64) -> Event {
        Event {
            seq,
            at: Timestamp::from_unix(1_700_000_000),
            kind: EventKind::Router {
                state: RouterState::Connected,
                reason: String::new(),
            },
        }
    }

    #[test]
    fn prev_follows_the_outbox_order() {
        let stream = StreamId([0xab; 16]);
        let v = ingest_args("site-a", stream, 3, &[ev(5), ev(6), ev(9)]);
        let s = "ab".repeat(16);
        assert_eq!(v["site_id"], "site-a");
        assert_eq!(v["batch"]["batch_id"], format!("{s}:5-9"));
        assert_eq!(v["batch"]["stream"], s);
        let events = v["batch"]["events"].as_array().unwrap();
        let pairs: Vec<_> = events
            .iter()
            .map(|e| (e["seq"].as_u64().unwrap(), e["prev"].as_u64().unwrap()))
            .collect();
        assert_eq!(pairs, [(5, 3), (6, 5), (9, 6)]);
        assert_eq!(events[0]["type"], "router");
        assert_eq!(events[0]["stream"], s);
        assert_eq!(events[0]["site"], "site-a");
    }
}
