//! The operator pages as HTML. Pure: rows in, HTML out; every value from
//! the database is escaped (`html::esc`).

use std::collections::HashMap;
use std::fmt::Write;

use crate::fleet::SiteSummary;
use crate::html::{csrf_field, esc, page, path_segment};
use crate::page_queries::BatchCounts;
use crate::site_lists::{AlertRow, SessionRow};
use crate::subscriptions::SubscriptionRow;
use crate::vouchers::STATUSES;

/// Seconds between the fleet page's refreshes.
pub const REFRESH_SECS: u32 = 30;

pub fn login(error: Option<&str>) -> String {
    let mut body = String::from("<h1>Log in</h1>");
    if let Some(e) = error {
        let _ = write!(body, "<p class=\"msg err\">{}</p>", esc(e));
    }
    body.push_str(
        "<form class=\"card\" method=\"post\" action=\"/login\">\
         <label>Operator token <input type=\"password\" name=\"token\" autocomplete=\"off\" \
         required autofocus></label><p class=\"muted\">From <code>mikrotik-central \
         add-operator NAME</code>. The page keeps a session cookie; the token is not stored \
         in the browser.</p><button>Log in</button></form>",
    );
    page("Log in", None, &body)
}

pub fn message(title: &str, text: &str, csrf: Option<&str>) -> String {
    page(
        title,
        csrf,
        &format!(
            "<h1>{}</h1><p class=\"msg err\">{}</p><p><a href=\"/\">Fleet</a></p>",
            esc(title),
            esc(text)
        ),
    )
}

/// Sorting (click a header), filtering (the box) and refreshing (the table
/// body re-fetched every REFRESH_SECS, sort and filter kept).
const FLEET_JS: &str = r#"(function(){
var t=document.getElementById('fleet'),f=document.getElementById('filter'),st={c:-1,d:1};
try{var s=JSON.parse(sessionStorage.getItem('fleet')||'{}');if(s.c!=null){st=s}if(s.q){f.value=s.q}}catch(e){}
function key(td){var v=td.getAttribute('data-v');return v!==null?parseFloat(v):td.textContent.trim().toLowerCase()}
function apply(){var b=t.tBodies[0],rows=Array.prototype.slice.call(b.rows),q=f.value.trim().toLowerCase();
if(st.c>=0){rows.sort(function(a,c){var x=key(a.cells[st.c]),y=key(c.cells[st.c]);return (x<y?-1:x>y?1:0)*st.d});rows.forEach(function(r){b.appendChild(r)})}
rows.forEach(function(r){r.hidden=q!==''&&r.textContent.toLowerCase().indexOf(q)<0});
var n=rows.filter(function(r){return !r.hidden}).length;document.getElementById('shown').textContent=n+' of '+rows.length+' sites';
try{sessionStorage.setItem('fleet',JSON.stringify({c:st.c,d:st.d,q:f.value}))}catch(e){}}
Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){if(!th.classList.contains('sort'))return;th.addEventListener('click',function(){st.d=st.c===i?-st.d:1;st.c=i;apply()})});
f.addEventListener('input',apply);
function refresh(){return fetch(location.pathname,{credentials:'same-origin'}).then(function(r){if(!r.ok)throw new Error(r.status);return r.text()}).then(function(h){var d=new DOMParser().parseFromString(h,'text/html'),nb=d.querySelector('#fleet tbody'),u=d.getElementById('updated');if(nb){t.replaceChild(nb,t.tBodies[0]);document.getElementById('updated').textContent=u?u.textContent:'';apply()}}).catch(function(){document.getElementById('updated').textContent='refresh failed, retrying'})}
window.fleetRefresh=refresh;setInterval(refresh,REFRESH*1000);apply();})();"#;

fn status_cell(status: &str) -> String {
    let rank = match status {
        "online" => 0,
        "stale" => 1,
        _ => 2,
    };
    format!(
        "<td data-v=\"{rank}\" class=\"{}\">{}</td>",
        esc(status),
        esc(status)
    )
}

/// Exact decimal text as a sort key (lossy is fine for sorting only).
fn sort_key(decimal: &str) -> String {
    decimal.parse::<f64>().map_or("0".into(), |v| v.to_string())
}

pub fn fleet(
    sites: &[SiteSummary],
    spark: &HashMap<String, Vec<i64>>,
    csrf: &str,
    now_utc: &str,
) -> String {
    let mut body = String::with_capacity(2000 + sites.len() * 900);
    let _ = write!(
        body,
        "<h1>Fleet</h1><p><input id=\"filter\" type=\"search\" placeholder=\"Filter sites\" \
         aria-label=\"Filter sites\"> <span id=\"shown\" class=\"muted\"></span> \
         <span class=\"muted\">updated <span id=\"updated\">{}</span></span></p>\
         <div class=\"scroll\"><table id=\"fleet\"><thead><tr>\
         <th class=\"sort\">Site</th><th class=\"sort\">Status</th><th class=\"sort\">Last upload</th>\
         <th class=\"sort\">Router</th><th class=\"sort n\">Online</th><th>24 h</th>\
         <th class=\"sort n\">Activated today</th><th class=\"sort n\">Revenue today</th>\
         <th class=\"sort n\">Open alerts</th></tr></thead><tbody>",
        esc(now_utc)
    );
    let flat = vec![0i64; crate::page_queries::HOURS];
    for s in sites {
        let name = match &s.name {
            Some(n) if n != &s.site_id => format!(
                "{} <span class=\"muted\">({})</span>",
                esc(n),
                esc(&s.site_id)
            ),
            _ => esc(&s.site_id),
        };
        let router = match s.router_connected {
            Some(true) => "connected",
            Some(false) => "disconnected",
            None => "unknown",
        };
        let _ = write!(
            body,
            "<tr><td><a href=\"/sites/{}\">{name}</a></td>{}<td>{}</td><td>{router}</td>\
             <td class=\"n\" data-v=\"{}\">{}</td><td>{}</td><td class=\"n\" data-v=\"{}\">{}</td>\
             <td class=\"n\" data-v=\"{}\">{}</td><td class=\"n\" data-v=\"{}\">{}</td></tr>",
            path_segment(&s.site_id),
            status_cell(&s.status),
            esc(s.last_upload.as_deref().unwrap_or("never")),
            s.active_sessions,
            s.active_sessions,
            crate::sparkline::svg(spark.get(&s.site_id).unwrap_or(&flat)),
            s.vouchers_activated_today,
            s.vouchers_activated_today,
            esc(&sort_key(&s.revenue_today)),
            esc(&s.revenue_today),
            s.open_alerts,
            s.open_alerts,
        );
    }
    body.push_str("</tbody></table></div>");
    if sites.is_empty() {
        body.push_str(
            "<p class=\"muted\">No sites yet: <code>mikrotik-central add-site NAME</code>.</p>",
        );
    }
    let _ = write!(
        body,
        "<noscript><meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\"></noscript>\
         <script>var REFRESH={REFRESH_SECS};{FLEET_JS}</script>"
    );
    page("Fleet", Some(csrf), &body)
}

/// The note on the site page after a write (`?done=KIND&target=NAME`): a
/// fixed sentence per kind, so a link cannot make the page say anything.
#[derive(Debug, PartialEq, Eq)]
pub enum Done<'a> {
    Batch(&'a str),
    Deleted(&'a str),
    Suspended(&'a str),
    Restored(&'a str),
    Acked(&'a str),
}

impl<'a> Done<'a> {
    pub fn parse(kind: Option<&str>, target: Option<&'a str>) -> Option<Done<'a>> {
        let t = target?;
        Some(match kind? {
            "batch" => Done::Batch(t),
            "deleted" => Done::Deleted(t),
            "suspended" => Done::Suspended(t),
            "active" => Done::Restored(t),
            "acked" => Done::Acked(t),
            _ => return None,
        })
    }

    fn html(&self, site: &str) -> String {
        match self {
            Done::Batch(b) => format!("Batch {} created. Print: {}", esc(b), cards_links(site, b)),
            Done::Deleted(c) => format!("Voucher {} deleted.", esc(c)),
            Done::Suspended(u) => format!("Subscription {} is suspended.", esc(u)),
            Done::Restored(u) => format!("Subscription {} is active.", esc(u)),
            Done::Acked(id) => format!("Alert {} acknowledged.", esc(id)),
        }
    }
}

/// Everything the site page shows.
pub struct SiteView<'a> {
    pub summary: &'a SiteSummary,
    pub sessions: &'a [SessionRow],
    pub batches: &'a [BatchCounts],
    pub subscriptions: &'a [SubscriptionRow],
    pub alerts: &'a [AlertRow],
    pub csrf: &'a str,
    /// What the write before this page did.
    pub done: Option<Done<'a>>,
}

fn action_form(site: &str, path: &str, label: &str, csrf: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/sites/{}/{path}\">{}<button>{label}</button></form>",
        path_segment(site),
        csrf_field(csrf)
    )
}

fn cards_links(site: &str, batch: &str) -> String {
    let base = format!(
        "/sites/{}/batches/{}/cards",
        path_segment(site),
        path_segment(batch)
    );
    format!("<a href=\"{base}\">cards (A4)</a> · <a href=\"{base}?layout=thermal\">58 mm</a>")
}

pub fn site(v: &SiteView) -> String {
    let s = v.summary;
    let site = &s.site_id;
    let mut b = String::with_capacity(8000);
    let _ = write!(
        b,
        "<h1>{}</h1><p>{} · last upload {} · today ({}, {}): <b>{}</b> activations, \
         revenue <b>{}</b> · {} open alerts</p>",
        esc(s.name.as_deref().unwrap_or(site)),
        format_args!("<span class=\"{0}\">{0}</span>", esc(&s.status)),
        esc(s.last_upload.as_deref().unwrap_or("never")),
        esc(&s.today),
        esc(&s.timezone),
        s.vouchers_activated_today,
        esc(&s.revenue_today),
        s.open_alerts
    );
    if let Some(d) = &v.done {
        let _ = write!(b, "<p class=\"msg\">{}</p>", d.html(site));
    }

    let _ = write!(b, "<h2>Online users ({})</h2>", v.sessions.len());
    b.push_str(
        "<div class=\"scroll\"><table id=\"online\"><thead><tr><th>User</th><th>Service</th>\
         <th>Address</th><th>MAC</th><th>Since</th><th class=\"n\">In</th><th class=\"n\">Out</th>\
         </tr></thead><tbody>",
    );
    for x in v.sessions {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            esc(&x.username),
            esc(&x.service),
            esc(x.address.as_deref().unwrap_or("")),
            esc(x.mac_address.as_deref().unwrap_or("")),
            esc(x.started_at.as_deref().unwrap_or("")),
            x.bytes_in.map(|n| n.to_string()).unwrap_or_default(),
            x.bytes_out.map(|n| n.to_string()).unwrap_or_default(),
        );
    }
    b.push_str("</tbody></table></div>");

    b.push_str("<h2>Vouchers by batch</h2><div class=\"scroll\"><table id=\"batches\"><thead><tr><th>Batch</th>");
    for st in STATUSES {
        let _ = write!(b, "<th class=\"n\">{st}</th>");
    }
    b.push_str("<th class=\"n\">total</th><th>Print</th></tr></thead><tbody>");
    for batch in v.batches {
        let _ = write!(
            b,
            "<tr><td>{}</td>",
            if batch.batch_id.is_empty() {
                "<span class=\"muted\">(none)</span>".to_string()
            } else {
                esc(&batch.batch_id)
            }
        );
        let mut total = 0;
        for st in STATUSES {
            let n = batch
                .by_status
                .iter()
                .find(|(k, _)| k == st)
                .map_or(0, |(_, n)| *n);
            total += n;
            let _ = write!(b, "<td class=\"n\">{n}</td>");
        }
        let _ = write!(
            b,
            "<td class=\"n\">{total}</td><td>{}</td></tr>",
            if batch.batch_id.is_empty() {
                String::new()
            } else {
                cards_links(site, &batch.batch_id)
            }
        );
    }
    b.push_str("</tbody></table></div>");

    let _ = write!(
        b,
        "<h2>New voucher batch</h2><form class=\"card\" id=\"new-batch\" method=\"post\" \
         action=\"/sites/{}/batches\">{}<div class=\"grid\">\
         <label>Count <input name=\"count\" type=\"number\" min=\"1\" max=\"10000\" value=\"32\" required></label>\
         <label>Profile <input name=\"profile\" required></label>\
         <label>Valid hours <input name=\"valid_hours\" inputmode=\"decimal\" value=\"24\" required></label>\
         <label>Sell <input name=\"sell\" inputmode=\"decimal\" required></label>\
         <label>Cost <input name=\"cost\" inputmode=\"decimal\"></label>\
         <label>Vendor <input name=\"vendor\"></label>\
         <label>Prefix <input name=\"prefix\"></label>\
         <label>Code length <input name=\"code_length\" type=\"number\" min=\"4\" max=\"16\" value=\"8\"></label>\
         <label>Batch id <input name=\"batch_id\" placeholder=\"generated\"></label>\
         </div><p><button>Create vouchers</button></p></form>\
         <form class=\"card\" id=\"delete-voucher\" method=\"post\" action=\"/sites/{}/vouchers/delete\">{}\
         <label>Delete voucher (code) <input name=\"code\" required></label><button>Delete</button></form>",
        path_segment(site),
        csrf_field(v.csrf),
        path_segment(site),
        csrf_field(v.csrf),
    );

    let _ = write!(b, "<h2>Subscriptions ({})</h2>", v.subscriptions.len());
    b.push_str(
        "<div class=\"scroll\"><table id=\"subscriptions\"><thead><tr><th>PPPoE user</th>\
         <th>Profile</th><th>Status</th><th class=\"n\">Sell</th><th></th></tr></thead><tbody>",
    );
    for x in v.subscriptions.iter().filter(|x| x.status != "deleted") {
        let user = path_segment(&x.pppoe_username);
        let button = if x.status == "suspended" {
            action_form(
                site,
                &format!("subscriptions/{user}/restore"),
                "Restore",
                v.csrf,
            )
        } else {
            action_form(
                site,
                &format!("subscriptions/{user}/suspend"),
                "Suspend",
                v.csrf,
            )
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{button}</td></tr>",
            esc(&x.pppoe_username),
            esc(x.profile_name.as_deref().unwrap_or("")),
            esc(&x.status),
            esc(x.sell.as_deref().unwrap_or("")),
        );
    }
    b.push_str("</tbody></table></div>");

    let _ = write!(b, "<h2>Open alerts ({})</h2>", v.alerts.len());
    b.push_str(
        "<div class=\"scroll\"><table id=\"alerts\"><thead><tr><th>At</th><th>Alert</th>\
         <th>Message</th><th></th></tr></thead><tbody>",
    );
    for a in v.alerts {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.at),
            esc(&a.name),
            esc(a.message.as_deref().unwrap_or("")),
            action_form(site, &format!("alerts/{}/ack", a.id), "Ack", v.csrf)
        );
    }
    b.push_str("</tbody></table></div>");
    page(s.name.as_deref().unwrap_or(site), Some(v.csrf), &b)
}

#[cfg(test)]
mod tests {
    use super::Done;

    #[test]
    fn notes_are_fixed_sentences() {
        assert_eq!(
            Done::parse(Some("suspended"), Some("c1")),
            Some(Done::Suspended("c1"))
        );
        assert_eq!(Done::parse(Some("Your session expired"), Some("x")), None);
        assert_eq!(Done::parse(Some("batch"), None), None);
        let html = Done::Batch("B<1>").html("s");
        assert!(html.starts_with("Batch B&lt;1&gt; created."), "{html}");
        assert!(
            html.contains("href=\"/sites/s/batches/B%3C1%3E/cards\""),
            "{html}"
        );
    }
}
