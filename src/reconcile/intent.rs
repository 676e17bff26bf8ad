//! Local operator intents: the newest intent wins, wherever it was made.
//!
//! A change made through the agent's own user API (or `create-batch`) is
//! an operator intent like a central row edit. It goes to the central side
//! as an event, which updates the desired state there; until the desired
//! state shows it, the agent holds it here as an override of the desired
//! state, so no sync in between undoes it (and offline, for as long as the
//! WAN is down). Central answers with each row's `intent_at`, the time of
//! the newest intent it holds for that user: an override older than that
//! has been superseded (an operator changed the row centrally since) and
//! is dropped, so the newest intent wins either way.
//!
//! Pure: intents and the desired state in, the effective desired state out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::desired::{
    DesiredState, DesiredSubscription, DesiredVoucher, SubscriptionStatus, VoucherStatus,
};
use crate::clock::Timestamp;
use crate::event::Service;
use crate::name::Name;
use crate::password::Password;

/// What the operator asked for, locally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum IntentAction {
    /// The user was removed on purpose: never recreated.
    Deleted,
    /// A PPP secret disabled (suspended).
    Suspended,
    /// A PPP secret enabled again.
    Restored,
    /// A user created with these settings.
    Created {
        password: Password,
        profile: Name,
        comment: Name,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub action: IntentAction,
    /// When it was made (the agent's time in use).
    pub at: Timestamp,
}

/// The overrides held, the newest per user. Persisted by the sync driver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intents {
    pub held: BTreeMap<(Service, Name), Intent>,
    /// Desired users already reported as `recreate_blocked`.
    pub blocked: BTreeMap<(Service, Name), String>,
    /// Voucher comments seen on the router that carry an activation the
    /// desired state's comment lacks (its `voucher_activated` not yet
    /// applied centrally): a recreation uses them, so the term is kept.
    pub router_comments: BTreeMap<Name, Name>,
}

impl Intents {
    /// Records `intent` for `user`; a newer one replaces an older one.
    pub fn record(&mut self, service: Service, user: Name, intent: Intent) {
        match self.held.get(&(service, user.clone())) {
            Some(old) if old.at > intent.at => {}
            _ => {
                self.held.insert((service, user), intent);
            }
        }
    }

    /// Drops the overrides the desired state shows, or has superseded
    /// with a newer central intent. Returns how many were dropped.
    pub fn resolve(&mut self, desired: &DesiredState) -> usize {
        let before = self.held.len();
        self.held.retain(|(service, user), intent| {
            let (shown, central_at) = match service {
                Service::Hotspot => {
                    let v = desired.vouchers.iter().find(|v| &v.code == user);
                    (
                        voucher_shows(v, &intent.action),
                        v.and_then(|v| v.intent_at),
                    )
                }
                Service::Pppoe => {
                    let s = desired.subscriptions.iter().find(|s| &s.user == user);
                    (
                        subscription_shows(s, &intent.action),
                        s.and_then(|s| s.intent_at),
                    )
                }
            };
            let superseded = central_at.is_some_and(|c| c >= intent.at);
            !(shown || superseded)
        });
        before - self.held.len()
    }

    /// The desired state with the held overrides applied.
    pub fn apply(&self, desired: &DesiredState) -> DesiredState {
        let mut out = desired.clone();
        for ((service, user), intent) in &self.held {
            match service {
                Service::Hotspot => apply_voucher(&mut out.vouchers, user, intent),
                Service::Pppoe => apply_subscription(&mut out.subscriptions, user, intent),
            }
        }
        out
    }
}

fn voucher_shows(v: Option<&DesiredVoucher>, action: &IntentAction) -> bool {
    match action {
        IntentAction::Deleted => {
            v.is_none_or(|v| matches!(v.status, VoucherStatus::Deleted | VoucherStatus::Expired))
        }
        IntentAction::Created { .. } => v.is_some_and(|v| v.status != VoucherStatus::Deleted),
        // Not made for hotspot users; nothing to wait for.
        IntentAction::Suspended | IntentAction::Restored => true,
    }
}

fn subscription_shows(s: Option<&DesiredSubscription>, action: &IntentAction) -> bool {
    match action {
        IntentAction::Deleted => s.is_none_or(|s| s.status == SubscriptionStatus::Deleted),
        IntentAction::Created { .. } => s.is_some_and(|s| s.status != SubscriptionStatus::Deleted),
        IntentAction::Suspended => s.is_some_and(|s| s.status == SubscriptionStatus::Suspended),
        // Absent centrally: nothing will suspend it again.
        IntentAction::Restored => s.is_none_or(|s| s.status == SubscriptionStatus::Active),
    }
}

fn apply_voucher(list: &mut Vec<DesiredVoucher>, user: &Name, intent: &Intent) {
    let at = list.iter().position(|v| &v.code == user);
    match (&intent.action, at) {
        (IntentAction::Deleted, Some(i)) => list[i].status = VoucherStatus::Deleted,
        (IntentAction::Deleted, None) => list.push(DesiredVoucher {
            code: user.clone(),
            password: Password::default(),
            profile: Name::default(),
            comment: Name::default(),
            status: VoucherStatus::Deleted,
            intent_at: Some(intent.at),
        }),
        (
            IntentAction::Created {
                password,
                profile,
                comment,
            },
            at,
        ) => {
            let v = DesiredVoucher {
                code: user.clone(),
                password: password.clone(),
                profile: profile.clone(),
                comment: comment.clone(),
                status: VoucherStatus::Created,
                intent_at: Some(intent.at),
            };
            match at {
                Some(i) => list[i] = v,
                None => list.push(v),
            }
        }
        (IntentAction::Suspended | IntentAction::Restored, _) => {}
    }
}

fn apply_subscription(list: &mut Vec<DesiredSubscription>, user: &Name, intent: &Intent) {
    let at = list.iter().position(|s| &s.user == user);
    let status = match &intent.action {
        IntentAction::Deleted => SubscriptionStatus::Deleted,
        IntentAction::Suspended => SubscriptionStatus::Suspended,
        IntentAction::Restored => SubscriptionStatus::Active,
        IntentAction::Created {
            password,
            profile,
            comment,
        } => {
            let s = DesiredSubscription {
                user: user.clone(),
                password: password.clone(),
                profile: profile.clone(),
                comment: comment.clone(),
                status: SubscriptionStatus::Active,
                intent_at: Some(intent.at),
            };
            match at {
                Some(i) => list[i] = s,
                None => list.push(s),
            }
            return;
        }
    };
    match at {
        Some(i) => list[i].status = status,
        // A suspension of a secret central does not know: nothing to
        // enforce from here (the router already shows it).
        None if status == SubscriptionStatus::Deleted => list.push(DesiredSubscription {
            user: user.clone(),
            password: Password::default(),
            profile: Name::default(),
            comment: Name::default(),
            status,
            intent_at: Some(intent.at),
        }),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix(1_800_000_000 + s)
    }

    fn sub(user: &str, status: SubscriptionStatus, intent_at: Option<i64>) -> DesiredSubscription {
        DesiredSubscription {
            user: user.into(),
            password: Password(Some("pw".into())),
            profile: "pppoe-10M".into(),
            comment: "PPPOE_SYSTEM|".into(),
            status,
            intent_at: intent_at.map(t),
        }
    }

    fn voucher(code: &str, status: VoucherStatus, intent_at: Option<i64>) -> DesiredVoucher {
        DesiredVoucher {
            code: code.into(),
            password: Password(Some("pw".into())),
            profile: "voucher-1h".into(),
            comment: "VOUCHER_SYSTEM|B|1|1|1".into(),
            status,
            intent_at: intent_at.map(t),
        }
    }

    fn desired(v: Vec<DesiredVoucher>, s: Vec<DesiredSubscription>) -> DesiredState {
        DesiredState {
            vouchers: v,
            subscriptions: s,
            ..DesiredState::default()
        }
    }

    #[test]
    fn a_local_suspension_holds_until_central_shows_it() {
        let mut i = Intents::default();
        i.record(
            Service::Pppoe,
            "c1".into(),
            Intent {
                action: IntentAction::Suspended,
                at: t(10),
            },
        );
        // Central still says active (older intent): the override wins.
        let stale = desired(vec![], vec![sub("c1", SubscriptionStatus::Active, Some(0))]);
        assert_eq!(i.resolve(&stale), 0);
        assert_eq!(
            i.apply(&stale).subscriptions[0].status,
            SubscriptionStatus::Suspended
        );
        // Central shows the suspension: the override goes.
        let shown = desired(
            vec![],
            vec![sub("c1", SubscriptionStatus::Suspended, Some(10))],
        );
        assert_eq!(i.resolve(&shown), 1);
        assert!(i.held.is_empty());
    }

    #[test]
    fn a_newer_central_intent_wins_over_a_local_one() {
        let mut i = Intents::default();
        i.record(
            Service::Pppoe,
            "c1".into(),
            Intent {
                action: IntentAction::Suspended,
                at: t(10),
            },
        );
        // The operator restored it centrally after the local suspension.
        let newer = desired(
            vec![],
            vec![sub("c1", SubscriptionStatus::Active, Some(20))],
        );
        assert_eq!(i.resolve(&newer), 1);
        assert_eq!(i.apply(&newer), newer);
    }

    #[test]
    fn a_local_delete_is_never_undone_by_a_stale_desired_state() {
        let mut i = Intents::default();
        i.record(
            Service::Hotspot,
            "V1".into(),
            Intent {
                action: IntentAction::Deleted,
                at: t(5),
            },
        );
        let stale = desired(vec![voucher("V1", VoucherStatus::Active, Some(1))], vec![]);
        i.resolve(&stale);
        assert_eq!(i.apply(&stale).vouchers[0].status, VoucherStatus::Deleted);
        // Gone centrally altogether also shows it.
        assert_eq!(i.resolve(&desired(vec![], vec![])), 1);
    }

    #[test]
    fn older_intents_never_replace_newer_ones() {
        let mut i = Intents::default();
        let (a, b) = (
            Intent {
                action: IntentAction::Suspended,
                at: t(10),
            },
            Intent {
                action: IntentAction::Restored,
                at: t(5),
            },
        );
        i.record(Service::Pppoe, "c".into(), a.clone());
        i.record(Service::Pppoe, "c".into(), b);
        assert_eq!(i.held[&(Service::Pppoe, "c".into())], a);
    }

    proptest! {
        /// Whatever the order of a local and a central intent on one
        /// subscription, the effective status after resolving is the newer
        /// one's.
        #[test]
        fn the_newest_intent_wins(local_at in 0i64..100, central_at in 0i64..100,
                                  local_suspends in any::<bool>(), central_suspends in any::<bool>(),
                                  central_applied_local in any::<bool>()) {
            prop_assume!(local_at != central_at);
            let status = |s: bool| if s { SubscriptionStatus::Suspended } else { SubscriptionStatus::Active };
            let mut i = Intents::default();
            i.record(Service::Pppoe, "c".into(), Intent {
                action: if local_suspends { IntentAction::Suspended } else { IntentAction::Restored },
                at: t(local_at),
            });
            // Central applies the local event only if it is newer than its own.
            let (central_status, at) = if central_applied_local && local_at > central_at {
                (status(local_suspends), local_at)
            } else {
                (status(central_suspends), central_at)
            };
            let d = desired(vec![], vec![sub("c", central_status, Some(at))]);
            i.resolve(&d);
            let effective = i.apply(&d).subscriptions[0].status;
            let newest = if local_at > central_at { status(local_suspends) } else { status(central_suspends) };
            prop_assert_eq!(effective, newest);
        }
    }
}
