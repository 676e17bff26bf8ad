//! HTML building blocks for the operator pages: escaping and the shared
//! page frame (inline CSS, no external resources, so pages work offline on
//! a LAN and stay small on a phone).

use std::fmt::Write;

/// Text escaped for HTML element content and quoted attribute values.
/// Everything read from the database goes through here: router names and
/// comments can hold any character.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One path segment percent-encoded, for links built from site ids and
/// batch ids (which can hold `/`, `?` or spaces).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{font:15px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#f6f7f9}\
header{background:#1f3a5f;color:#fff;padding:.5em 1em;display:flex;gap:1em;align-items:center;flex-wrap:wrap}\
header a{color:#fff}header form{margin-left:auto}\
main{padding:1em;max-width:1200px;margin:auto}\
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}\
table{border-collapse:collapse;width:100%;background:#fff;font-size:.93em}\
th,td{padding:.3em .5em;border-bottom:1px solid #e3e5e8;text-align:left;vertical-align:middle}\
th{background:#eef1f5;cursor:default}th.sort{cursor:pointer;user-select:none}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.online{color:#18794e;font-weight:600}.stale{color:#b7791f;font-weight:600}.offline{color:#c53030;font-weight:600}\
.scroll{overflow-x:auto}.scroll td{white-space:nowrap}\
form.inline{display:inline;margin:0}\
button,input,select{font:inherit;padding:.25em .5em}\
.card{background:#fff;padding:1em;border:1px solid #e3e5e8;max-width:26em}\
.card label{display:block;margin:.3em 0}.card input{width:100%}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(9em,1fr));gap:.4em 1em}\
.msg{background:#fff4d6;border:1px solid #e6c770;padding:.5em 1em;margin:.5em 0}\
.err{background:#fde8e8;border-color:#e09a9a}\
.muted{color:#667}\
";

/// A whole page: `title` is plain text (escaped here), `body` is HTML.
/// `logout_csrf` adds the logout button for a logged-in operator.
pub fn page(title: &str, logout_csrf: Option<&str>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + STYLE.len() + 600);
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\">\
         <title>{}</title><style>{STYLE}</style></head><body>\
         <header><a href=\"/\"><b>mikrotik-central</b></a>",
        esc(title)
    );
    if let Some(csrf) = logout_csrf {
        let _ = write!(
            out,
            "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" \
             value=\"{}\"><button>Log out</button></form>",
            esc(csrf)
        );
    }
    let _ = write!(out, "</header><main>{body}</main></body></html>");
    out
}

/// A hidden CSRF field for a page form.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(csrf)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>\"a\"&'b'</script>"),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
        assert_eq!(esc("héllo"), "héllo");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(path_segment("site-1_x.y~"), "site-1_x.y~");
    }
}
