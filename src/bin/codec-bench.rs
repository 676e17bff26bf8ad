//! Decode throughput of the sans-IO codec, for `scripts/bench.sh` (feature
//! `sim`; never shipped). Records a stream of 10,000 `!re` sentences shaped
//! like `/ip/hotspot/user/print` rows, then decodes it repeatedly in
//! 16 KiB reads, as the client does (decoder plus reply parsing), and
//! prints MB/s.
//!
//! ```text
//! codec-bench [ROWS] [SECONDS]
//! ```

use std::time::{Duration, Instant};

use mikrotik_edge::proto::{Decoder, Reply, encode_sentence};

fn main() {
    let mut args = std::env::args().skip(1);
    let rows: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let mut stream = Vec::new();
    for i in 0..rows {
        let words = [
            "!re".to_owned(),
            format!("=.id=*{:X}", i + 1),
            format!("=name=WIFI-{:06}", (i * 7_919 + 104_729) % 1_000_000),
            format!("=password=WIFI-{i:06}"),
            format!("=profile=voucher-{}", if i % 2 == 0 { "1h" } else { "24h" }),
            format!(
                "=comment=VOUCHER_SYSTEM|BATCH-{:03}|5000|3000|1|V1|2025-01-01|admin||",
                i / 50
            ),
            "=disabled=false".to_owned(),
            format!("=uptime={}m{}s", i % 60, i % 59),
            format!("=bytes-in={}", i * 1_234),
            format!("=bytes-out={}", i * 9_876),
            ".tag=7".to_owned(),
        ];
        if let Err(e) = encode_sentence(&words, &mut stream) {
            eprintln!("codec-bench: {e}");
            std::process::exit(1);
        }
    }
    let started = Instant::now();
    let mut passes = 0u64;
    let mut attrs = 0usize;
    while started.elapsed() < Duration::from_secs(secs) {
        let mut dec = Decoder::default();
        for chunk in stream.chunks(16 * 1024) {
            dec.feed(chunk);
            loop {
                match dec.next_sentence() {
                    Ok(Some(s)) => match Reply::parse(s) {
                        Ok(r) => attrs += r.attrs.len(),
                        Err(e) => {
                            eprintln!("codec-bench: {e}");
                            std::process::exit(1);
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("codec-bench: {e}");
                        std::process::exit(1);
                    }
                }
            }
        }
        passes += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mb = (stream.len() as f64 * passes as f64) / 1e6;
    println!(
        "codec decode: {rows} !re sentences ({} bytes), {passes} passes, {:.0} MB/s, {:.1} M sentences/s ({attrs} attributes)",
        stream.len(),
        mb / elapsed,
        (rows as f64 * passes as f64) / elapsed / 1e6
    );
}
