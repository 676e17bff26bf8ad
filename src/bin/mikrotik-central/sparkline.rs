//! A 24-hour sparkline of online sessions as inline SVG (no JavaScript).
//! Pure: hourly counts in, SVG out.

use std::fmt::Write;

const W: u32 = 120;
const H: u32 = 24;

/// `counts` oldest hour first (sessions online at any time in each hour).
/// The line is scaled to the largest count; the `title` gives the figures
/// to screen readers and on hover.
pub fn svg(counts: &[i64]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let n = counts.len().max(2) as f64 - 1.0;
    let mut pts = String::new();
    for (i, c) in counts.iter().enumerate() {
        let x = i as f64 * f64::from(W) / n;
        let y = f64::from(H - 1) - (*c).max(0) as f64 * f64::from(H - 2) / max as f64;
        let _ = write!(pts, "{}{x:.1},{y:.1}", if i == 0 { "" } else { " " });
    }
    let last = counts.last().copied().unwrap_or(0);
    let peak = counts.iter().copied().max().unwrap_or(0);
    let data: Vec<String> = counts.iter().map(i64::to_string).collect();
    let data = data.join(",");
    format!(
        "<svg class=\"spark\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" \
         role=\"img\" data-counts=\"{data}\"><title>sessions online per hour, last 24 h: this hour {last}, peak {peak}</title>\
         <polyline fill=\"none\" stroke=\"#1f6feb\" stroke-width=\"1.5\" points=\"{pts}\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn scales_to_the_peak() {
        let mut c = vec![0i64; 24];
        c[23] = 4;
        c[10] = 2;
        let s = super::svg(&c);
        assert!(s.contains("this hour 4, peak 4"));
        assert!(s.contains("0.0,23.0"));
        assert!(s.contains("120.0,1.0"));
        let points = s.split("points=\"").nth(1).unwrap();
        assert_eq!(points.matches(',').count(), 24);
    }

    #[test]
    fn empty_is_flat() {
        let s = super::svg(&[0; 24]);
        assert!(s.contains("peak 0"));
    }
}
