//! The connection's comings and goings: `router` events and the
//! connection alerts (decided by [`super::state::ConnectionBook`]), and
//! what is read of the router at each connect.

use std::time::Duration;

use super::{Agent, AgentError};
use crate::client::ConnectionEvent;
use crate::clock::Timestamp;
use crate::event::{EventKind, RouterState};
use crate::name::Name;
use crate::proto::Command;

impl Agent {
    pub(super) async fn record_connection_event(
        &mut self,
        ev: ConnectionEvent,
    ) -> Result<(), AgentError> {
        let now = Timestamp::now();
        let (state, reason) = match ev {
            ConnectionEvent::Connected => {
                if let Some(since) = self.book.connection.connected() {
                    let since = since.map_or_else(String::new, |t| {
                        format!(" (down since {})", self.alerts.clock_time(t))
                    });
                    let message = format!("Router {} reachable again{since}", self.alerts.router());
                    self.alerts
                        .raise("mikrotik_connection_restored", message)
                        .await?;
                }
                self.view.send_modify(|v| {
                    v.router_connected = true;
                    v.last_router_error = None;
                });
                (RouterState::Connected, String::new())
            }
            ConnectionEvent::Disconnected { reason } => {
                self.book.connection.disconnected(now);
                self.view.send_modify(|v| {
                    v.router_connected = false;
                    v.reconnects += 1;
                    v.last_router_error = Some(reason.clone());
                });
                (RouterState::Disconnected, reason)
            }
            ConnectionEvent::Error { reason, .. } => {
                let failed = self.book.connection.failed(&reason, now);
                if let Some((since, failures)) = failed.alert {
                    // Short and human: it may end up on a phone. The
                    // reason is in the `router` event beside it.
                    let message = format!(
                        "Router {} unreachable since {} ({} failed reconnect{})",
                        self.alerts.router(),
                        self.alerts.clock_time(since),
                        failures,
                        if failures == 1 { "" } else { "s" }
                    );
                    self.alerts
                        .raise("mikrotik_connection_failed", message)
                        .await?;
                }
                self.view.send_modify(|v| {
                    v.router_connected = false;
                    v.reconnects += 1;
                    v.last_router_error = Some(reason.clone());
                });
                if !failed.record {
                    return Ok(());
                }
                (RouterState::Error, reason)
            }
        };
        self.store
            .append(vec![(now, EventKind::Router { state, reason })])
            .await?;
        Ok(())
    }

    /// Times one cheap command over the shared session (the same one the
    /// keepalive uses) for the router round-trip metric.
    pub(super) async fn measure_rtt(&mut self) {
        let started = std::time::Instant::now();
        if self
            .router
            .execute(Command::new("/system/identity/print"))
            .await
            .is_ok()
        {
            self.record_rtt(started.elapsed());
        }
    }

    fn record_rtt(&self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.view.send_modify(|v| v.router_rtt_us = Some(us));
    }

    /// Reads who and what the router is, and when it booted.
    pub(super) async fn on_connected(&mut self) {
        self.clock.read_router_next();
        let timed_identity = async {
            let started = std::time::Instant::now();
            let r = self
                .router
                .execute(Command::new("/system/identity/print"))
                .await;
            (r, started.elapsed())
        };
        let ((identity, rtt), resource) = tokio::join!(
            timed_identity,
            self.router
                .execute(Command::new("/system/resource/print").proplist(&[
                    "uptime",
                    "version",
                    "board-name"
                ])),
        );
        if identity.is_ok() {
            self.record_rtt(rtt);
        }
        let identity = identity
            .ok()
            .and_then(|r| {
                r.rows
                    .first()
                    .map(|a| Name::new(a.get("name").unwrap_or_default()))
            })
            .unwrap_or_default();
        match resource {
            Ok(r) => {
                let Some(row) = r.rows.first() else { return };
                let field = |k| Name::new(row.get(k).unwrap_or_default());
                let uptime = row
                    .get("uptime")
                    .and_then(|u| crate::duration::parse_duration(u).ok());
                self.router_boot =
                    uptime.map(|u| Timestamp::now().plus_secs(-(u.as_secs() as i64)));
                let info = crate::status::RouterInfo {
                    identity,
                    board: field("board-name"),
                    version: field("version"),
                    boot: self.router_boot,
                };
                self.alerts.set_router(&info.identity.lossy());
                log::info!(
                    "router {}: {} RouterOS {}, up {}",
                    info.identity,
                    info.board,
                    info.version,
                    field("uptime")
                );
                self.view.send_modify(|v| v.router = Some(info));
            }
            Err(e) => log::warn!("cannot read /system/resource: {e}"),
        }
    }
}
