//! The linker's function order files (`.cargo/order/<target>.txt`, made by
//! scripts/order-file.sh): the shipped musl targets link with them, and
//! they put what every agent runs (monitoring, the HTTP endpoint idle)
//! ahead of what only some run (HTTP requests, a central side), so the
//! monitoring code is one contiguous block of pages in memory (docs/benchmarks.md, "Code in memory"). What this cannot
//! check without a profiling run: that the names are current; a stale name
//! only leaves its function out of the block (the bench's
//! "binary's own pages" figure shows it).

use std::fs;
use std::path::Path;

const TARGETS: [&str; 2] = ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn order(target: &str) -> Vec<String> {
    let path = root().join(".cargo/order").join(format!("{target}.txt"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(str::to_owned).collect()
}

/// A legacy-mangled name without its per-target hash (`17h<16 hex>E`).
fn unhashed(name: &str) -> &str {
    match name.len().checked_sub(20) {
        Some(at) if name[at..].starts_with("17h") && name.ends_with('E') => &name[..at],
        _ => name,
    }
}

#[test]
fn the_musl_targets_link_with_their_order_file() {
    let config: toml::Table = fs::read_to_string(root().join(".cargo/config.toml"))
        .unwrap()
        .parse()
        .unwrap();
    for target in TARGETS {
        let flags: Vec<&str> = config["target"][target]["rustflags"]
            .as_array()
            .unwrap_or_else(|| panic!("{target}: no rustflags"))
            .iter()
            .filter_map(|f| f.as_str())
            .collect();
        let want = format!("link-arg=--symbol-ordering-file=.cargo/order/{target}.txt");
        assert!(flags.contains(&want.as_str()), "{target}: {flags:?}");
        assert_eq!(
            config["target"][target]["linker"].as_str(),
            Some("rust-lld")
        );
        assert!(order(target).len() > 1000, "{target}: a short order file");
    }
}

#[test]
fn monitoring_comes_before_serving_http_requests() {
    for target in TARGETS {
        let names = order(target);
        let at = |module: &str| -> Vec<usize> {
            (0..names.len())
                .filter(|&i| names[i].contains(module))
                .collect()
        };
        let step = at("13mikrotik_edge7monitor4step");
        let decoder = at("13mikrotik_edge5proto7decoder");
        // What answers a request, not what listens (that runs idle too).
        let http: Vec<usize> = ["4http6routes", "4http4json", "4http5users", "4http7metrics"]
            .iter()
            .flat_map(|m| at(&format!("13mikrotik_edge{m}")))
            .collect();
        assert!(!step.is_empty() && !decoder.is_empty(), "{target}");
        assert!(http.len() >= 10, "{target}: {} HTTP functions", http.len());
        // Identical code folding gives a few HTTP functions the same code
        // as one monitoring runs: those are in its group.
        let last_step = step[step.len() - 1];
        let after = http.iter().filter(|&&i| i > last_step).count();
        assert!(
            after * 10 >= http.len() * 9,
            "{target}: {after} of {} HTTP functions after the monitor's step",
            http.len()
        );
    }
}

#[test]
fn aarch64_lists_the_functions_of_x86_64() {
    let x86: std::collections::BTreeSet<String> = order(TARGETS[0])
        .iter()
        .map(|n| unhashed(n).to_owned())
        .collect();
    let arm = order(TARGETS[1]);
    let missing: Vec<&String> = arm.iter().filter(|n| !x86.contains(unhashed(n))).collect();
    assert!(missing.is_empty(), "not run on x86_64: {missing:?}");
    let arm: std::collections::BTreeSet<&str> = arm.iter().map(|n| unhashed(n)).collect();
    let ours = |n: &&String| n.contains("13mikrotik_edge");
    let found = x86
        .iter()
        .filter(ours)
        .filter(|n| arm.contains(n.as_str()))
        .count();
    let total = x86.iter().filter(ours).count();
    // Most of the agent's own functions exist on both (inlining differs).
    assert!(
        found * 10 >= total * 8,
        "{found} of {total} found on aarch64"
    );
}
