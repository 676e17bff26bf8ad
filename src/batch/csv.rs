//! The `create-batch` file: one header line, then one user per line.
//!
//! ```text
//! service,name,password,profile,valid_hours,batch_id,price_sell,price_cost,vendor_id,customer_id,subscription_id,created_by
//! hotspot,V0001,k3x9,voucher-1h,1,B-2026-11,5000,4000,v1,,,admin
//! pppoe,cust-17,s3cret,pppoe-10M,,B-2026-11,150000,,,C17,S17,admin
//! ```
//!
//! Columns are matched by header name, in any order; `service`, `name` and
//! `profile` are required, the rest optional (unknown columns are refused,
//! so a typo never drops a value). `service` is `hotspot` (a voucher:
//! `valid_hours` required, 1-87600) or `pppoe` (a secret). Fields may be
//! quoted (`"a,b"`, `""` for a quote); values are bytes, kept as given.
//! The comment is built in the system format (`VOUCHER_SYSTEM|…` or
//! `PPPOE_SYSTEM|…`, `created_date` = today); `|` is refused in the fields
//! that go into it. The whole file is checked before anything is sent: any
//! bad line and nothing is created.

use std::collections::HashMap;
use std::fmt;

use crate::comment::SystemComment;
use crate::event::Service;
use crate::name::Name;

pub const COLUMNS: &[&str] = &[
    "service",
    "name",
    "password",
    "profile",
    "valid_hours",
    "batch_id",
    "price_sell",
    "price_cost",
    "vendor_id",
    "customer_id",
    "subscription_id",
    "created_by",
];

/// A user to create.
#[derive(Clone, PartialEq, Eq)]
pub struct NewUser {
    /// 1-based line number in the file.
    pub line: usize,
    pub service: Service,
    pub name: Name,
    pub password: Option<Name>,
    pub profile: Name,
    pub comment: Name,
}

impl fmt::Debug for NewUser {
    // No password in debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewUser")
            .field("line", &self.line)
            .field("service", &self.service)
            .field("name", &self.name)
            .field("profile", &self.profile)
            .finish_non_exhaustive()
    }
}

/// One problem, with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Most errors listed; the rest are counted.
pub const MAX_ERRORS: usize = 50;

/// Parses and validates the whole file. `created_date` goes into every
/// comment. Err: every problem found (up to [`MAX_ERRORS`]) and the total.
pub fn parse(text: &[u8], created_date: &[u8]) -> Result<Vec<NewUser>, (Vec<LineError>, usize)> {
    let fail = |mut errors: Vec<LineError>| {
        let total = errors.len();
        errors.truncate(MAX_ERRORS);
        Err((errors, total))
    };
    let records = match records(text) {
        Ok(r) => r,
        Err(e) => return fail(vec![e]),
    };
    let mut it = records
        .into_iter()
        .filter(|(_, f)| !(f.len() == 1 && f[0].is_empty()));
    let Some((hline, header)) = it.next() else {
        return fail(vec![LineError {
            line: 1,
            message: "empty file: expected a header line".into(),
        }]);
    };
    let col = match columns(hline, &header) {
        Ok(col) => col,
        Err(errors) => return fail(errors),
    };
    let mut errors: Vec<LineError> = Vec::new();
    let mut out = Vec::new();
    let mut seen: HashMap<(Service, Vec<u8>), usize> = HashMap::new();
    for (line, fields) in it {
        if fields.len() != header.len() {
            errors.push(LineError {
                line,
                message: format!("{} fields, the header has {}", fields.len(), header.len()),
            });
            continue;
        }
        let row = Row {
            col: &col,
            fields: &fields,
        };
        match new_user(line, &row, &mut seen, created_date) {
            Ok(Some(user)) => out.push(user),
            Ok(None) => {}
            Err(bad) => errors.push(LineError {
                line,
                message: bad.join("; "),
            }),
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.push(LineError {
            line: hline,
            message: "no users in the file".into(),
        });
    }
    if !errors.is_empty() {
        return fail(errors);
    }
    Ok(out)
}

/// The header line: each known column's index. Err: unknown, repeated and
/// missing columns.
fn columns(
    hline: usize,
    header: &[Vec<u8>],
) -> Result<HashMap<&'static str, usize>, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut err = |message: String| {
        errors.push(LineError {
            line: hline,
            message,
        })
    };
    let mut col: HashMap<&'static str, usize> = HashMap::new();
    for (i, h) in header.iter().enumerate() {
        let h = String::from_utf8_lossy(h).trim().to_ascii_lowercase();
        match COLUMNS.iter().find(|c| **c == h) {
            Some(c) if col.contains_key(c) => err(format!("column {c} given twice")),
            Some(c) => {
                col.insert(c, i);
            }
            None => err(format!(
                "unknown column {h:?} (known: {})",
                COLUMNS.join(", ")
            )),
        }
    }
    for required in ["service", "name", "profile"] {
        if !col.contains_key(required) {
            err(format!("missing column {required}"));
        }
    }
    if errors.is_empty() {
        Ok(col)
    } else {
        Err(errors)
    }
}

/// One record's fields by column name (absent columns read as empty).
struct Row<'a> {
    col: &'a HashMap<&'static str, usize>,
    fields: &'a [Vec<u8>],
}

impl<'a> Row<'a> {
    fn get(&self, c: &str) -> &'a [u8] {
        self.col
            .get(c)
            .map_or(&b""[..], |&i| self.fields[i].as_slice())
    }
}

/// One record as a user to create. Err: everything wrong with it (a name
/// already on an earlier line included); `seen` remembers this one's.
fn new_user(
    line: usize,
    row: &Row<'_>,
    seen: &mut HashMap<(Service, Vec<u8>), usize>,
    created_date: &[u8],
) -> Result<Option<NewUser>, Vec<String>> {
    let get = |c: &str| row.get(c);
    let mut bad = Vec::new();
    let service = match get("service").trim_ascii() {
        b"hotspot" => Some(Service::Hotspot),
        b"pppoe" => Some(Service::Pppoe),
        other => {
            bad.push(format!(
                "service must be hotspot or pppoe, got {:?}",
                String::from_utf8_lossy(other)
            ));
            None
        }
    };
    let name = get("name");
    if name.is_empty() {
        bad.push("name is empty".into());
    } else if name.len() > 64 {
        bad.push("name is longer than 64 bytes".into());
    } else if name.iter().any(|b| b.is_ascii_control() || *b == b' ') {
        bad.push("name contains a space or a control character".into());
    }
    let profile = get("profile");
    if profile.is_empty() {
        bad.push("profile is empty".into());
    }
    let password = get("password");
    if password.iter().any(u8::is_ascii_control) {
        bad.push("password contains a control character".into());
    }
    let valid_hours = get("valid_hours").trim_ascii();
    if service == Some(Service::Hotspot)
        && let Err(e) = crate::valid_hours::ValidHours::parse(valid_hours)
    {
        bad.push(format!(
            "valid_hours must be hours (24, 0.5, 1.5: at least one minute, at most 87600) for a voucher, got {:?}: {e}",
            String::from_utf8_lossy(valid_hours)
        ));
    }
    for c in ["price_sell", "price_cost"] {
        if !get(c).iter().all(|b| b.is_ascii_digit() || *b == b'.') {
            bad.push(format!("{c} must be a number"));
        }
    }
    for c in [
        "batch_id",
        "price_sell",
        "price_cost",
        "vendor_id",
        "customer_id",
        "subscription_id",
        "created_by",
    ] {
        if get(c).iter().any(|b| *b == b'|' || b.is_ascii_control()) {
            bad.push(format!("{c} contains | or a control character"));
        }
    }
    if let Some(service) = service
        && !name.is_empty()
        && let Some(first) = seen.insert((service, name.to_vec()), line)
    {
        bad.push(format!(
            "{} {} is already on line {first}",
            service.as_str(),
            String::from_utf8_lossy(name)
        ));
    }
    if !bad.is_empty() {
        return Err(bad);
    }
    let Some(service) = service else {
        return Ok(None);
    };
    let comment = match service {
        Service::Hotspot => SystemComment::new_voucher(
            get("batch_id"),
            get("price_sell"),
            get("price_cost"),
            valid_hours,
            get("vendor_id"),
            created_date,
            get("created_by"),
        ),
        Service::Pppoe => SystemComment::new_pppoe(
            get("batch_id"),
            get("price_sell"),
            get("price_cost"),
            get("customer_id"),
            get("subscription_id"),
            created_date,
            get("created_by"),
        ),
    };
    Ok(Some(NewUser {
        line,
        service,
        name: Name::new(name),
        password: (!password.is_empty()).then(|| Name::new(password)),
        profile: Name::new(profile),
        comment: Name::new(comment.to_bytes()),
    }))
}

/// Splits into records of fields with their starting line numbers.
/// Quoted fields may hold commas, quotes (`""`) and line breaks.
/// A record: its first line number and its fields.
type Record = (usize, Vec<Vec<u8>>);

fn records(text: &[u8]) -> Result<Vec<Record>, LineError> {
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < text.len() {
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = Vec::new();
        loop {
            if text.get(i) == Some(&b'"') && field.is_empty() {
                i += 1;
                loop {
                    match text.get(i) {
                        None => {
                            return Err(LineError {
                                line: start_line,
                                message: "unterminated quoted field".into(),
                            });
                        }
                        Some(b'"') if text.get(i + 1) == Some(&b'"') => {
                            field.push(b'"');
                            i += 2;
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(&b) => {
                            if b == b'\n' {
                                line += 1;
                            }
                            field.push(b);
                            i += 1;
                        }
                    }
                }
            }
            match text.get(i) {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some(b',') => {
                    fields.push(std::mem::take(&mut field));
                    i += 1;
                }
                Some(b'\n') => {
                    if field.last() == Some(&b'\r') {
                        field.pop();
                    }
                    fields.push(std::mem::take(&mut field));
                    i += 1;
                    line += 1;
                    break;
                }
                Some(&b) => {
                    field.push(b);
                    i += 1;
                }
            }
        }
        out.push((start_line, fields));
    }
    Ok(out)
}

/// A CSV field, quoted when needed.
pub fn field(bytes: &[u8]) -> Vec<u8> {
    if bytes
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        let mut out = vec![b'"'];
        for &b in bytes {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
        out
    } else {
        bytes.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "service,name,password,profile,valid_hours,batch_id,price_sell\n";

    #[test]
    fn parses_both_services_and_builds_system_comments() {
        let text =
            format!("{HEAD}hotspot,V1,pw,voucher-1h,1,B1,5000\r\npppoe,\"c,1\",x,pppoe-10M,,B1,\n");
        let users = parse(text.as_bytes(), b"2026-11-24").unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(
            users[0].comment.as_bytes(),
            b"VOUCHER_SYSTEM|B1|5000||1||2026-11-24|||"
        );
        assert_eq!(users[1].name.as_bytes(), b"c,1");
        assert_eq!(users[1].line, 3);
        assert_eq!(
            users[1].comment.as_bytes(),
            b"PPPOE_SYSTEM|B1|||||2026-11-24|"
        );
        assert!(!format!("{:?}", users[0]).contains("pw"));
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = format!(
            "{HEAD}hotspot,V1,pw,voucher-1h,1,B1,5000\nwifi,V2,pw,p,1,,\nhotspot,V3,pw,p,0,,\nhotspot,V1,pw,p,2,,\nhotspot,V4,pw,p,1,a|b,\nhotspot,V5\n"
        );
        let (errors, total) = parse(text.as_bytes(), b"d").unwrap_err();
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 4, 5, 6, 7], "{errors:?}");
        assert_eq!(total, 5);
        assert!(
            errors[2].message.contains("already on line 2"),
            "{}",
            errors[2]
        );
    }

    #[test]
    fn header_problems() {
        assert!(parse(b"", b"d").is_err());
        let (e, _) = parse(b"service,name,colour\n", b"d").unwrap_err();
        assert!(e.iter().any(|e| e.message.contains("unknown column")));
        assert!(
            e.iter()
                .any(|e| e.message.contains("missing column profile"))
        );
        let (e, _) = parse(b"service,name,profile\n", b"d").unwrap_err();
        assert!(e[0].message.contains("no users"));
        let (e, _) = parse(b"service,name,profile\npppoe,\"a,b\n", b"d").unwrap_err();
        assert!(e[0].message.contains("unterminated"));
    }

    #[test]
    fn quoting_round_trip() {
        assert_eq!(field(b"plain"), b"plain");
        assert_eq!(field(b"a,\"b\""), b"\"a,\"\"b\"\"\"");
    }
}
