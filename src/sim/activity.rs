//! Random but plausible activity for the demo: voucher users come and go,
//! PPPoE clients connect and drop, traffic flows.

use super::SimHandle;
use super::router::Router;

/// xorshift64*: tiny, seedable, and plenty for picking demo events.
#[derive(Debug, Clone)]
pub struct Activity {
    state: u64,
}

impl Activity {
    pub fn new(seed: u64) -> Activity {
        Activity {
            // xorshift must not start at zero.
            state: seed | 1,
        }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn mac(&mut self, first: u8) -> String {
        let b = self.next().to_le_bytes();
        format!(
            "{first:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
            b[0], b[1], b[2], b[3], b[4]
        )
    }

    /// One round of events; returns a line per event for the demo's log.
    pub fn step(&mut self, sim: &SimHandle) -> Vec<String> {
        sim.router(|r| self.step_router(r))
    }

    fn step_router(&mut self, r: &mut Router) -> Vec<String> {
        let mut events = Vec::new();
        let roll = self.below(100);
        let name_of = |row: &super::tables::Row, key: &str| {
            String::from_utf8_lossy(row.bytes(key)).into_owned()
        };
        if roll < 40 {
            let idle: Vec<String> = r
                .hs_users
                .rows
                .iter()
                .filter(|u| !u.flag("disabled"))
                .filter(|u| {
                    r.hs_active
                        .rows
                        .iter()
                        .all(|a| a.bytes("user") != u.bytes("name"))
                })
                .map(|u| name_of(u, "name"))
                .collect();
            if !idle.is_empty() {
                let user = idle[self.below(idle.len())].clone();
                let ip = format!("10.5.50.{}", 2 + self.below(250));
                let mac = self.mac(0x02);
                if let Ok(id) = r.hotspot_login(user.as_bytes(), &ip, &mac) {
                    events.push(format!(
                        "hotspot login {user} {ip} {mac} ({})",
                        super::tables::format_id(id)
                    ));
                }
            }
        } else if roll < 65 {
            if !r.hs_active.rows.is_empty() {
                let i = self.below(r.hs_active.rows.len());
                let user = name_of(&r.hs_active.rows[i], "user");
                r.hotspot_logout(user.as_bytes());
                events.push(format!("hotspot logout {user}"));
            }
        } else if roll < 85 {
            let idle: Vec<String> = r
                .ppp_secrets
                .rows
                .iter()
                .filter(|s| !s.flag("disabled") && r.ppp_active.by_name(s.bytes("name")).is_none())
                .map(|s| name_of(s, "name"))
                .collect();
            if !idle.is_empty() {
                let name = idle[self.below(idle.len())].clone();
                let ip = format!("10.10.{}.{}", 1 + self.below(200), 2 + self.below(250));
                let caller = self.mac(0x04);
                if r.ppp_connect(name.as_bytes(), &ip, &caller).is_ok() {
                    events.push(format!("pppoe connect {name} {ip} {caller}"));
                }
            }
        } else if !r.ppp_active.rows.is_empty() {
            let i = self.below(r.ppp_active.rows.len());
            let name = name_of(&r.ppp_active.rows[i], "name");
            r.ppp_disconnect(name.as_bytes(), "hung-up");
            events.push(format!("pppoe disconnect {name}"));
        }
        // Bursts on top of the steady per-second rates.
        let users: Vec<Vec<u8>> = r
            .hs_active
            .rows
            .iter()
            .map(|a| a.bytes("user").to_vec())
            .collect();
        for user in users {
            if self.below(3) == 0 {
                let down = 50_000 + self.next() % 5_000_000;
                r.add_traffic(&user, down / 10, down);
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SeedData;

    #[test]
    fn steps_produce_events_and_keep_invariants() {
        let mut r = Router::new("sim", "7.16.2 (stable)", "hAP ac^2");
        let data = SeedData {
            hotspot_users: 20,
            pppoe_secrets: 10,
            ..SeedData::default()
        };
        crate::sim::seed::seed(&mut r, &data);
        let mut a = Activity::new(42);
        let mut n = 0;
        for _ in 0..200 {
            n += a.step_router(&mut r).len();
            r.advance(std::time::Duration::from_secs(3));
            for s in &r.hs_active.rows {
                assert!(r.hs_users.by_name(s.bytes("user")).is_some());
            }
        }
        assert!(n > 50, "only {n} events");
    }
}
