//! Which users the agent manages: those whose profile matches the
//! service's pattern, and those whose comment is ours for the service,
//! whatever their profile. A PPPoE customer moved to the isolation
//! profile, or a voucher whose profile an operator changed, stays managed
//! (logged, expired) while its comment says `PPPOE_SYSTEM`/`VOUCHER_SYSTEM`.

use super::glob::glob_match;
use crate::event::Service;

/// The comment marks a user of ours for this service.
pub fn ours_by_comment(service: Service, comment: &[u8]) -> bool {
    let marker: &[u8] = match service {
        Service::Hotspot => b"VOUCHER_SYSTEM",
        Service::Pppoe => b"PPPOE_SYSTEM",
    };
    comment.starts_with(marker) && matches!(comment.get(marker.len()), None | Some(b'|'))
}

/// Managed: by profile pattern, or by comment.
pub fn is_managed(service: Service, pattern: &str, profile: &[u8], comment: &[u8]) -> bool {
    glob_match(pattern, profile) || ours_by_comment(service, comment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_profile_or_by_our_comment() {
        let pppoe = |profile: &str, comment: &str| {
            is_managed(
                Service::Pppoe,
                "*pppoe*",
                profile.as_bytes(),
                comment.as_bytes(),
            )
        };
        assert!(pppoe("pppoe-10M", ""));
        assert!(pppoe(
            "isolir",
            "PPPOE_SYSTEM|B|1|1|C|S|2026-01-01|sync|isolir=pppoe-10M"
        ));
        assert!(pppoe("isolir", "PPPOE_SYSTEM"));
        assert!(!pppoe("isolir", "hand made"));
        assert!(!pppoe("isolir", "PPPOE_SYSTEMS|x"));
        // A voucher comment does not make a PPP secret ours.
        assert!(!pppoe("isolir", "VOUCHER_SYSTEM|B"));
        assert!(is_managed(
            Service::Hotspot,
            "*voucher*",
            b"default",
            b"VOUCHER_SYSTEM|B|5000|4000|0.5"
        ));
    }
}
