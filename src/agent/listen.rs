//! The two `listen` commands that make logins and logouts instant: one per
//! active list, multiplexed on the router connection with their own `.tag`.
//! Rows are typed here (`.dead=yes` rows carry only the `.id`); what they
//! mean is decided by [`crate::monitor::apply_listen`].

use crate::client::{ClientError, Item, ReplyStream, Router};
use crate::event::Service;
use crate::monitor::ListenChange;
use crate::name::Id;
use crate::proto::{Attrs, Command};

use super::rows::{HOTSPOT_ACTIVE_PROPS, PPP_ACTIVE_PROPS, SessionRows, ValueWarning};

/// What one listen produced.
#[derive(Debug)]
pub enum Heard {
    Change(ListenChange),
    /// A row that did not parse (logged once by the driver).
    Skipped(Vec<ValueWarning>),
    /// The listen ended: refused (`!trap`, e.g. `no such command` on a
    /// router without listen there), interrupted, or the session ended.
    /// The poll covers that list until the next connection.
    Ended {
        service: Service,
        why: String,
    },
}

struct Follow {
    stream: ReplyStream,
    rows: SessionRows,
}

/// The listens of the current connection; none while disconnected.
#[derive(Default)]
pub struct Listens {
    hotspot: Option<Follow>,
    ppp: Option<Follow>,
}

/// Listen rows waiting to be handled before the listen is given up for
/// this connection (the poll then covers the list): a burst of this many
/// changes is far beyond a site's logins, and a router flooding the
/// listen must not grow the agent's memory.
const MAX_UNREAD: usize = 4096;

pub fn path(service: Service) -> &'static str {
    match service {
        Service::Hotspot => "/ip/hotspot/active",
        Service::Pppoe => "/ppp/active",
    }
}

impl Listens {
    /// Starts both listens on the current connection. A failure to send
    /// (the connection just dropped) leaves that list to the poll.
    pub fn open(&mut self, router: &Router) -> Vec<Heard> {
        let mut ended = Vec::new();
        for service in [Service::Hotspot, Service::Pppoe] {
            let props = match service {
                Service::Hotspot => HOTSPOT_ACTIVE_PROPS,
                Service::Pppoe => PPP_ACTIVE_PROPS,
            };
            let cmd = Command::new(format!("{}/listen", path(service))).proplist(props);
            let slot = self.slot(service);
            match router.stream_bounded(cmd, MAX_UNREAD) {
                Ok(stream) => {
                    *slot = Some(Follow {
                        stream,
                        rows: SessionRows::new(service),
                    })
                }
                Err(e) => {
                    *slot = None;
                    ended.push(Heard::Ended {
                        service,
                        why: e.to_string(),
                    });
                }
            }
        }
        ended
    }

    /// Drops both listens (dropping a stream cancels its command).
    pub fn close(&mut self) {
        self.hotspot = None;
        self.ppp = None;
    }

    pub fn is_open(&self) -> bool {
        self.hotspot.is_some() || self.ppp.is_some()
    }

    fn slot(&mut self, service: Service) -> &mut Option<Follow> {
        match service {
            Service::Hotspot => &mut self.hotspot,
            Service::Pppoe => &mut self.ppp,
        }
    }

    /// The next thing either listen produced; never resolves while none
    /// is open.
    pub async fn next(&mut self) -> Heard {
        async fn recv(f: &mut Option<Follow>) -> Option<Result<Item, ClientError>> {
            match f {
                Some(f) => f.stream.next().await,
                None => std::future::pending().await,
            }
        }
        let (service, item) = tokio::select! {
            r = recv(&mut self.hotspot) => (Service::Hotspot, r),
            r = recv(&mut self.ppp) => (Service::Pppoe, r),
        };
        let slot = self.slot(service);
        let why = match item {
            Some(Ok(Item::Row(attrs))) => {
                if let Some(follow) = slot.as_mut() {
                    return follow.heard(service, attrs);
                }
                return Heard::Skipped(Vec::new());
            }
            Some(Ok(Item::Trap(t))) => t.message,
            Some(Ok(Item::Done(_))) => "ended".to_owned(),
            Some(Err(e)) => e.to_string(),
            None => "ended".to_owned(),
        };
        *slot = None;
        Heard::Ended { service, why }
    }
}

impl Follow {
    fn heard(&mut self, service: Service, attrs: Attrs) -> Heard {
        if matches!(attrs.get(".dead"), Some(b"yes") | Some(b"true")) {
            return match attrs.get(".id").and_then(Id::parse) {
                Some(id) => Heard::Change(ListenChange::Removed { service, id }),
                None => Heard::Skipped(Vec::new()),
            };
        }
        self.rows.push(&attrs);
        let warnings = std::mem::take(&mut self.rows.warnings);
        match self.rows.rows.pop() {
            Some(row) => Heard::Change(ListenChange::Upsert(row)),
            None => Heard::Skipped(warnings),
        }
    }
}
