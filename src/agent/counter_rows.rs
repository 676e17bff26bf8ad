//! The active lists' counters alone (`.id`, `uptime`, bytes), read at the
//! usage interval while the listens keep the rest of the agent's copy
//! current: a third of a full read's reply bytes at 5,000 sessions.

use super::rows::{ValueWarning, parse_counters, warn};
use crate::event::Service;
use crate::name::Id;
use crate::proto::Attrs;

/// What a counters read asks of each list; PPPoE byte counters live on
/// `/interface` ([`super::rows::PPPOE_IFACE_PROPS`]), read alongside.
pub const HOTSPOT_ACTIVE_COUNTER_PROPS: &[&str] = &HOTSPOT_ARRAY;
const HOTSPOT_ARRAY: [&str; 4] = [".id", "uptime", "bytes-in", "bytes-out"];
pub const PPP_ACTIVE_COUNTER_PROPS: &[&str] = &PPP_ARRAY;
const PPP_ARRAY: [&str; 2] = [".id", "uptime"];

/// One active row's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveCounters {
    pub id: Id,
    pub uptime_secs: Option<u64>,
    pub bytes_in: Option<u64>,
    pub bytes_out: Option<u64>,
}

/// Accumulates a counters read of one active list.
pub struct CounterRows {
    service: Service,
    pub rows: Vec<ActiveCounters>,
    /// Rows whose `.id` did not parse: the read cannot be matched to the
    /// copy, so the list is read in full.
    pub bad_ids: usize,
    pub warnings: Vec<ValueWarning>,
}

impl CounterRows {
    pub fn new(service: Service) -> CounterRows {
        CounterRows {
            service,
            rows: Vec::new(),
            bad_ids: 0,
            warnings: Vec::new(),
        }
    }

    /// The `.proplist` of this list's counters read.
    pub fn props(service: Service) -> &'static [&'static str] {
        match service {
            Service::Hotspot => HOTSPOT_ACTIVE_COUNTER_PROPS,
            Service::Pppoe => PPP_ACTIVE_COUNTER_PROPS,
        }
    }

    pub fn push(&mut self, a: &Attrs) {
        let table = crate::commands::active(self.service);
        let warnings = &mut self.warnings;
        let mut warn = |field: &'static str, raw: &[u8]| {
            warn(warnings, ValueWarning::new(table, field, raw));
        };
        let (raw_id, uptime, bytes_in, bytes_out) = match self.service {
            Service::Hotspot => {
                let [id, uptime, bytes_in, bytes_out] = a.fields(HOTSPOT_ARRAY);
                (id, uptime, bytes_in, bytes_out)
            }
            Service::Pppoe => {
                let [id, uptime] = a.fields(PPP_ARRAY);
                (id, uptime, None, None)
            }
        };
        let raw_id = raw_id.unwrap_or_default();
        let Some(id) = Id::parse(raw_id) else {
            warn(".id", raw_id);
            self.bad_ids += 1;
            return;
        };
        let (uptime_secs, bytes_in, bytes_out) =
            parse_counters(&mut warn, uptime, bytes_in, bytes_out);
        self.rows.push(ActiveCounters {
            id,
            uptime_secs,
            bytes_in,
            bytes_out,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::rows::test_attrs as attrs;

    #[test]
    fn hotspot_counters_parse_and_flag_bad_values() {
        let mut rows = CounterRows::new(Service::Hotspot);
        rows.push(&attrs(&[
            (".id", b"*1A"),
            ("uptime", b"1h2m3s"),
            ("bytes-in", b"12345"),
            ("bytes-out", b"lots"),
        ]));
        rows.push(&attrs(&[(".id", b"nope"), ("uptime", b"1s")]));
        assert_eq!(
            rows.rows,
            [ActiveCounters {
                id: Id(0x1a),
                uptime_secs: Some(3723),
                bytes_in: Some(12345),
                bytes_out: None,
            }]
        );
        assert_eq!(rows.bad_ids, 1);
        let fields: Vec<_> = rows.warnings.iter().map(|w| w.field).collect();
        assert_eq!(fields, ["bytes-out", ".id"]);
    }

    #[test]
    fn ppp_counters_have_the_uptime_only() {
        let mut rows = CounterRows::new(Service::Pppoe);
        rows.push(&attrs(&[(".id", b"*2"), ("uptime", b"6w6d18:33:07")]));
        assert_eq!(rows.rows[0].id, Id(2));
        assert_eq!(rows.rows[0].uptime_secs, Some(4_213_987));
        assert_eq!(rows.rows[0].bytes_in, None);
        assert!(rows.warnings.is_empty());
    }
}
