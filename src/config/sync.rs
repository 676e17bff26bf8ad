//! Typed settings for the full sync (reconciliation with the desired state).

use std::time::Duration;

use super::ConfigError;
use super::sources::{Sources, error};
use crate::reconcile::SuspendMode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// How often the desired state is fetched and reconciled.
    pub interval: Duration,
    pub suspend_mode: SuspendMode,
    /// The isolation profile (required in isolir mode).
    pub isolir_profile: Option<String>,
    /// Most router commands in flight at once when applying actions.
    pub max_in_flight: usize,
    /// How often the central side's `site_desired_version` is polled
    /// between full syncs (a moved version syncs at once); `None`: off.
    pub desired_poll: Option<Duration>,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            interval: Duration::from_secs(300),
            suspend_mode: SuspendMode::Disable,
            isolir_profile: None,
            max_in_flight: 16,
            desired_poll: Some(Duration::from_secs(10)),
        }
    }
}

pub(super) fn load_sync(src: &Sources<'_>) -> Result<SyncConfig, ConfigError> {
    let d = SyncConfig::default();
    let interval = src
        .secs("sync_secs")?
        .map_or(d.interval, Duration::from_secs);
    let suspend_mode = match src.string("suspend_mode")? {
        None => d.suspend_mode,
        Some(s) if s.eq_ignore_ascii_case("disable") => SuspendMode::Disable,
        Some(s) if s.eq_ignore_ascii_case("isolir") => SuspendMode::Isolir,
        Some(s) => {
            return Err(error(
                "suspend_mode",
                format!("expected disable|isolir, got {s:?}"),
            ));
        }
    };
    let isolir_profile = match src.string("isolir_profile")? {
        Some(s) if s.is_empty() => {
            return Err(error("isolir_profile", "expected a PPP profile name"));
        }
        other => other,
    };
    if suspend_mode == SuspendMode::Isolir && isolir_profile.is_none() {
        return Err(error(
            "isolir_profile",
            "required with suspend_mode = isolir (the PPP profile suspended customers are moved to)",
        ));
    }
    let max_in_flight = src
        .uint("sync_max_in_flight", 1..=256, "a number of commands 1-256")?
        .map_or(d.max_in_flight, |n| {
            usize::try_from(n).unwrap_or(d.max_in_flight)
        });
    let desired_poll = match src.uint(
        "desired_poll_secs",
        0..=86_400,
        "a whole number of seconds 0-86400 (0 = off)",
    )? {
        None => d.desired_poll,
        Some(0) => None,
        Some(n) => Some(Duration::from_secs(n)),
    };
    Ok(SyncConfig {
        interval,
        suspend_mode,
        isolir_profile,
        max_in_flight,
        desired_poll,
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::time::Duration;

    use crate::config::Config;
    use crate::reconcile::SuspendMode;

    fn load(vars: &[(&str, &str)]) -> Result<Config, crate::config::ConfigError> {
        let mut all = vec![
            ("MIKROTIK_EDGE_ROUTER_HOST", "r"),
            ("MIKROTIK_EDGE_ROUTER_USER", "u"),
            ("MIKROTIK_EDGE_ROUTER_PASSWORD", "p"),
        ];
        all.extend_from_slice(vars);
        let env = move |name: &str| {
            all.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        };
        Config::load(None, &env)
    }

    #[test]
    fn defaults_and_isolir() {
        let c = load(&[]).unwrap();
        assert_eq!(c.sync.interval.as_secs(), 300);
        assert_eq!(c.sync.suspend_mode, SuspendMode::Disable);
        assert_eq!(c.sync.max_in_flight, 16);
        let e = load(&[("MIKROTIK_EDGE_SUSPEND_MODE", "isolir")]).unwrap_err();
        assert!(
            e.to_string().contains("MIKROTIK_EDGE_ISOLIR_PROFILE"),
            "{e}"
        );
        let c = load(&[
            ("MIKROTIK_EDGE_SUSPEND_MODE", "isolir"),
            ("MIKROTIK_EDGE_ISOLIR_PROFILE", "isolir"),
            ("MIKROTIK_EDGE_SYNC_SECS", "60"),
        ])
        .unwrap();
        assert_eq!(c.sync.isolir_profile.as_deref(), Some("isolir"));
        assert_eq!(c.sync.interval.as_secs(), 60);
        assert!(load(&[("MIKROTIK_EDGE_SUSPEND_MODE", "x")]).is_err());
    }

    #[test]
    fn desired_poll_defaults_to_10_s_and_0_turns_it_off() {
        assert_eq!(
            load(&[]).unwrap().sync.desired_poll,
            Some(Duration::from_secs(10))
        );
        let c = load(&[("MIKROTIK_EDGE_DESIRED_POLL_SECS", "0")]).unwrap();
        assert_eq!(c.sync.desired_poll, None);
        let c = load(&[("MIKROTIK_EDGE_DESIRED_POLL_SECS", "3")]).unwrap();
        assert_eq!(c.sync.desired_poll, Some(Duration::from_secs(3)));
        // The file's key, and the environment over it.
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(
            &mut f,
            b"desired_poll_secs = 30\n[router]\nhost = \"r\"\nuser = \"u\"\npassword = \"p\"\n",
        )
        .unwrap();
        let no_env = |_: &str| None;
        let c = Config::load(Some(f.path()), &no_env).unwrap();
        assert_eq!(c.sync.desired_poll, Some(Duration::from_secs(30)));
        let env = |k: &str| (k == "MIKROTIK_EDGE_DESIRED_POLL_SECS").then(|| OsString::from("0"));
        let c = Config::load(Some(f.path()), &env).unwrap();
        assert_eq!(c.sync.desired_poll, None);
        let mut bad_file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(
            &mut bad_file,
            b"desired_poll_secs = \"10\"\n[router]\nhost = \"r\"\nuser = \"u\"\npassword = \"p\"\n",
        )
        .unwrap();
        let e = Config::load(Some(bad_file.path()), &no_env).unwrap_err();
        assert!(e.to_string().contains("desired_poll_secs"), "{e}");
        for bad in ["-1", "x", "86401", "1.5"] {
            let e = load(&[("MIKROTIK_EDGE_DESIRED_POLL_SECS", bad)]).unwrap_err();
            assert!(
                e.to_string()
                    .contains("desired_poll_secs (MIKROTIK_EDGE_DESIRED_POLL_SECS)"),
                "{bad}: {e}"
            );
        }
    }
}
