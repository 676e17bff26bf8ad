//! Printable voucher cards: A4 sheets of 4×8 cards, or one 58 mm strip per
//! voucher for receipt printers. Pure: voucher rows in, HTML out.

use std::fmt::Write;

use qrcode::{Color, EcLevel, QrCode};

use crate::html::esc;

/// Cards per A4 sheet (4 columns × 8 rows).
pub const PER_SHEET: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    A4,
    Thermal,
}

impl Layout {
    /// `?layout=` value: absent or `a4` is A4, `thermal` the 58 mm strip.
    pub fn parse(v: Option<&str>) -> Result<Layout, String> {
        match v {
            None | Some("") | Some("a4") => Ok(Layout::A4),
            Some("thermal") => Ok(Layout::Thermal),
            Some(other) => Err(format!(
                "layout must be a4 or thermal, not {:?}",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// One voucher as printed.
pub struct Card {
    pub code: String,
    pub password: String,
    /// The sell price as stored (exact), if the batch has one.
    pub price: Option<String>,
    /// Validity in minutes, if the voucher has one.
    pub valid_minutes: Option<i64>,
}

/// `90` → `1 h 30 min`, `1440` → `1 day`, `4320` → `3 days`.
pub fn validity(minutes: i64) -> String {
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d} day{}", if d == 1 { "" } else { "s" }));
    }
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 || parts.is_empty() {
        parts.push(format!("{m} min"));
    }
    parts.join(" ")
}

/// `{base}/login?username=CODE&password=PASS`, both values URL-encoded; a
/// trailing `/` on the base is not doubled, and a base that already ends
/// in `/login` (as `set-site --hotspot-login-url` suggests) is used as is.
pub fn login_url(base: &str, code: &str, password: &str) -> String {
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("username", code)
        .append_pair("password", password)
        .finish();
    let base = base.trim_end_matches('/');
    if base.ends_with("/login") {
        format!("{base}?{q}")
    } else {
        format!("{base}/login?{q}")
    }
}

/// Light modules around the code, as the QR specification asks.
const QUIET: usize = 4;

/// The QR code of `data` as an inline SVG element (one unit per module,
/// sized by CSS; dark modules as one path of horizontal runs, which keeps
/// a sheet of 32 cards small). None when the data does not fit a QR code.
pub fn qr_svg(data: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let w = code.width();
    let colors = code.to_colors();
    let size = w + 2 * QUIET;
    let mut d = String::with_capacity(w * w);
    for (y, row) in colors.chunks(w).enumerate() {
        let mut x = 0;
        while x < w {
            if row[x] == Color::Dark {
                let start = x;
                while x < w && row[x] == Color::Dark {
                    x += 1;
                }
                let _ = write!(
                    d,
                    "M{} {}h{}v1h-{}z",
                    start + QUIET,
                    y + QUIET,
                    x - start,
                    x - start
                );
            } else {
                x += 1;
            }
        }
    }
    Some(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" \
         shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/>\
         <path fill=\"#000\" d=\"{d}\"/></svg>"
    ))
}

const A4_STYLE: &str = "\
@page{size:A4;margin:8mm}\
*{box-sizing:border-box}\
body{margin:0;font:9pt/1.25 system-ui,sans-serif;color:#000;background:#fff}\
.sheet{width:194mm;height:280mm;display:grid;grid-template-columns:repeat(4,48.5mm);\
grid-template-rows:repeat(8,35mm);break-after:page;page-break-after:always;overflow:hidden}\
.sheet:last-child{break-after:auto;page-break-after:auto}\
.card{border:.2mm dashed #888;padding:1.5mm 2mm;overflow:hidden}\
.top{display:flex;gap:1mm;height:21mm}\
.txt{flex:1;min-width:0;overflow:hidden}\
.site{font-weight:700;overflow:hidden;max-height:7.5mm}\
.price{font-size:11pt;font-weight:700}\
.code,.pass{font:700 10pt/1.25 ui-monospace,monospace;word-break:break-all}\
.qr svg{width:21mm;height:21mm;display:block}\
@media screen{body{background:#ddd}.sheet{background:#fff;margin:4mm auto}}\
";

const THERMAL_STYLE: &str = "\
@page{size:58mm 80mm;margin:2mm}\
*{box-sizing:border-box}\
body{margin:0;font:10pt/1.3 system-ui,sans-serif;color:#000;background:#fff}\
.card{width:54mm;height:76mm;text-align:center;break-after:page;page-break-after:always;overflow:hidden;padding:1mm}\
.card:last-child{break-after:auto;page-break-after:auto}\
.top{display:flex;flex-direction:column;align-items:center;text-align:center}\
.site{font-weight:700;font-size:11pt}\
.price{font-size:12pt;font-weight:700}\
.code,.pass{font:700 12pt/1.3 ui-monospace,monospace;word-break:break-all}\
.qr svg{width:32mm;height:32mm;display:block;margin:1mm auto}\
@media screen{body{background:#ddd}.card{background:#fff;margin:2mm auto;border:1px dashed #888}}\
";

fn card_html(out: &mut String, site: &str, card: &Card, login_base: Option<&str>) {
    let _ = write!(
        out,
        "<div class=\"card\"><div class=\"top\"><div class=\"txt\"><div class=\"site\">{}</div>",
        esc(site)
    );
    if let Some(p) = &card.price {
        let _ = write!(out, "<div class=\"price\">{}</div>", esc(p));
    }
    if let Some(m) = card.valid_minutes {
        let _ = write!(out, "<div class=\"valid\">{}</div>", validity(m));
    }
    out.push_str("</div>");
    if let Some(svg) =
        login_base.and_then(|base| qr_svg(&login_url(base, &card.code, &card.password)))
    {
        let _ = write!(out, "<div class=\"qr\">{svg}</div>");
    }
    let _ = write!(
        out,
        "</div><div>User <span class=\"code\">{}</span></div>\
         <div>Pass <span class=\"pass\">{}</span></div></div>",
        esc(&card.code),
        esc(&card.password)
    );
}

/// The whole printable page for `cards` of one batch.
pub fn render(
    site: &str,
    batch: &str,
    cards: &[Card],
    login_base: Option<&str>,
    layout: Layout,
) -> String {
    let style = match layout {
        Layout::A4 => A4_STYLE,
        Layout::Thermal => THERMAL_STYLE,
    };
    let mut out = String::with_capacity(1024 + cards.len() * 3000);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <link rel=\"icon\" href=\"data:,\"><title>Vouchers {} – {}</title><style>{style}</style></head><body>",
        esc(batch),
        esc(site)
    );
    match layout {
        Layout::A4 => {
            for sheet in cards.chunks(PER_SHEET) {
                out.push_str("<section class=\"sheet\">");
                for card in sheet {
                    card_html(&mut out, site, card, login_base);
                }
                out.push_str("</section>");
            }
        }
        Layout::Thermal => {
            for card in cards {
                card_html(&mut out, site, card, login_base);
            }
        }
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(code: &str) -> Card {
        Card {
            code: code.into(),
            password: "p&ss".into(),
            price: Some("5000".into()),
            valid_minutes: Some(1440),
        }
    }

    #[test]
    fn validity_reads_naturally() {
        assert_eq!(validity(1440), "1 day");
        assert_eq!(validity(4320 + 90), "3 days 1 h 30 min");
        assert_eq!(validity(30), "30 min");
        assert_eq!(validity(0), "0 min");
    }

    #[test]
    fn login_url_encodes_values() {
        assert_eq!(
            login_url("http://10.5.50.1/", "WIFI-A B", "p&ss=1"),
            "http://10.5.50.1/login?username=WIFI-A+B&password=p%26ss%3D1"
        );
        assert_eq!(
            login_url("http://hotspot.lan/login", "A", "B"),
            "http://hotspot.lan/login?username=A&password=B"
        );
    }

    #[test]
    fn a4_has_32_cards_per_sheet_and_escapes() {
        let cards: Vec<Card> = (0..40).map(|i| card(&format!("<C{i}>"))).collect();
        let html = render("s<1>", "b", &cards, Some("http://h"), Layout::A4);
        assert_eq!(html.matches("<section class=\"sheet\">").count(), 2);
        assert_eq!(html.matches("<div class=\"card\">").count(), 40);
        assert_eq!(html.matches("<svg").count(), 40);
        assert!(html.contains("&lt;C0&gt;") && !html.contains("<C0>"));
        assert!(html.contains("s&lt;1&gt;") && html.contains("p&amp;ss"));
        assert!(html.len() < 40 * 5000, "{} bytes", html.len());
    }

    #[test]
    fn no_qr_without_login_url() {
        let html = render("s", "b", &[card("A")], None, Layout::Thermal);
        assert!(!html.contains("<svg"));
    }

    #[test]
    fn layout_parse() {
        assert_eq!(Layout::parse(None), Ok(Layout::A4));
        assert_eq!(Layout::parse(Some("thermal")), Ok(Layout::Thermal));
        assert!(Layout::parse(Some("x")).is_err());
    }
}
