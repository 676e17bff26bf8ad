//! The `ingest_batch` arguments for a run of queued events.

use serde_json::{Value, json};

use crate::event::{Event, StreamId};

/// [`ingest_args`] serialized, one event at a time, so a batch never exists
/// as a whole JSON tree in memory (the agent runs on small boxes).
pub fn ingest_body(
    site: &str,
    stream: StreamId,
    prev_of_first: u64,
    events: &[Event],
) -> Result<Vec<u8>, serde_json::Error> {
    let stream_text = stream.to_string();
    let first = events.first().map_or(0, |e| e.seq);
    let last = events.last().map_or(0, |e| e.seq);
    let mut out = Vec::with_capacity(256 * events.len() + 256);
    out.extend_from_slice(b"{\"site_id\":");
    serde_json::to_writer(&mut out, site)?;
    out.extend_from_slice(b",\"batch\":{\"batch_id\":");
    serde_json::to_writer(&mut out, &format!("{stream_text}:{first}-{last}"))?;
    out.extend_from_slice(b",\"stream\":");
    serde_json::to_writer(&mut out, &stream_text)?;
    out.extend_from_slice(b",\"events\":[");
    let mut prev = prev_of_first;
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, &event_json(e, site, stream, prev))?;
        prev = e.seq;
    }
    out.extend_from_slice(b"]}}");
    Ok(out)
}

fn event_json(e: &Event, site: &str, stream: StreamId, prev: u64) -> Value {
    let mut v = e.to_json(site, stream);
    if let Value::Object(m) = &mut v {
        m.insert("prev".into(), prev.into());
    }
    v
}

/// `{"site_id", "batch": {"batch_id", "stream", "events"}}`, events oldest
/// first, each with `prev`: the seq of the event before it in the outbox
/// now (`prev_of_first` for the first one: the last acked seq). Using the
/// outbox order, not `seq - 1`, lets compaction and drops re-link the chain.
pub fn ingest_args(site: &str, stream: StreamId, prev_of_first: u64, events: &[Event]) -> Value {
    let stream_text = stream.to_string();
    let mut prev = prev_of_first;
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        out.push(event_json(e, site, stream, prev));
        prev = e.seq;
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

    #[test]
    fn streamed_body_equals_the_tree() {
        let stream = StreamId([7; 16]);
        let events = [ev(1), ev(2), ev(4)];
        let body = ingest_body("s\"x", stream, 0, &events).unwrap();
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, ingest_args("s\"x", stream, 0, &events));
    }
}
