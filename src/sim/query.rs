//! `print` query words (`?name=x`, `?-name`, `?>name=x`, `?#|!`, …) as the
//! RouterOS API documentation defines them: each simple word pushes one
//! boolean per row onto a stack, `?#` words rearrange the stack, and a row
//! is printed when every value left on the stack is true.

use std::cmp::Ordering;

use crate::duration::parse_duration;

/// One parsed query word.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    /// `?name`: the row has the property.
    Has(Vec<u8>),
    /// `?-name`: the row lacks the property.
    Lacks(Vec<u8>),
    /// `?name=x`
    Eq(Vec<u8>, Vec<u8>),
    /// `?<name=x`
    Lt(Vec<u8>, Vec<u8>),
    /// `?>name=x`
    Gt(Vec<u8>, Vec<u8>),
    /// `?#…`
    Stack(Vec<StackOp>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StackOp {
    /// An index followed by another character: push a copy of that value.
    Copy(usize),
    /// An index at the end of the word: the stack becomes just that value.
    Keep(usize),
    Not,
    And,
    Or,
    /// `.` not after an index: push a copy of the top value.
    Dup,
}

/// A compiled query: all the `?` words of one command, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Query {
    words: Vec<Word>,
}

impl Query {
    /// Parses the query words (without their leading `?`).
    ///
    /// Stack underflow does not depend on the row, so it is reported here,
    /// once, instead of silently matching nothing.
    pub(crate) fn parse<W: AsRef<[u8]>>(words: &[W]) -> Result<Query, String> {
        let mut parsed = Vec::with_capacity(words.len());
        for w in words {
            parsed.push(parse_word(w.as_ref())?);
        }
        let query = Query { words: parsed };
        // A dry run with every simple word pushing `true` finds underflows.
        query.run(|_| true)?;
        Ok(query)
    }

    /// Whether a row, given as its printed attributes, is selected.
    pub(crate) fn matches(&self, row: &[(Vec<u8>, Vec<u8>)]) -> bool {
        let get = |key: &[u8]| {
            row.iter()
                .find(|(k, _)| k.as_slice() == key)
                .map(|(_, v)| v.as_slice())
        };
        let stack = self.run(|w| match w {
            Word::Has(k) => get(k).is_some(),
            Word::Lacks(k) => get(k).is_none(),
            Word::Eq(k, x) => get(k).is_some_and(|v| equal(k, v, x)),
            Word::Lt(k, x) => get(k).is_some_and(|v| compare(v, x) == Ordering::Less),
            Word::Gt(k, x) => get(k).is_some_and(|v| compare(v, x) == Ordering::Greater),
            Word::Stack(_) => false,
        });
        // Parse already proved the program cannot underflow.
        stack.is_ok_and(|values| values.iter().all(|&b| b))
    }

    fn run(&self, mut test: impl FnMut(&Word) -> bool) -> Result<Vec<bool>, String> {
        let mut stack: Vec<bool> = Vec::new();
        for word in &self.words {
            let Word::Stack(ops) = word else {
                stack.push(test(word));
                continue;
            };
            for op in ops {
                apply(&mut stack, *op)?;
            }
        }
        Ok(stack)
    }
}

fn apply(stack: &mut Vec<bool>, op: StackOp) -> Result<(), String> {
    let underflow = || "invalid query: stack underflow".to_owned();
    let at = |stack: &[bool], i: usize| {
        stack
            .len()
            .checked_sub(i + 1)
            .map(|pos| stack[pos])
            .ok_or_else(underflow)
    };
    match op {
        StackOp::Copy(i) => {
            let v = at(stack, i)?;
            stack.push(v);
        }
        StackOp::Keep(i) => {
            let v = at(stack, i)?;
            stack.clear();
            stack.push(v);
        }
        StackOp::Not => {
            let top = stack.last_mut().ok_or_else(underflow)?;
            *top = !*top;
        }
        StackOp::And | StackOp::Or => {
            let (Some(a), Some(b)) = (stack.pop(), stack.pop()) else {
                return Err(underflow());
            };
            stack.push(if op == StackOp::And { a && b } else { a || b });
        }
        StackOp::Dup => {
            let v = at(stack, 0)?;
            stack.push(v);
        }
    }
    Ok(())
}

fn parse_word(w: &[u8]) -> Result<Word, String> {
    let bad = || {
        format!(
            "invalid query word ?{}",
            String::from_utf8_lossy(w)
                .chars()
                .take(64)
                .collect::<String>()
        )
    };
    let split = |s: &[u8]| -> Result<(Vec<u8>, Vec<u8>), String> {
        let i = s.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        if i == 0 {
            return Err(bad());
        }
        Ok((s[..i].to_vec(), s[i + 1..].to_vec()))
    };
    match w.first() {
        None => Err(bad()),
        Some(b'#') => parse_ops(&w[1..]).ok_or_else(bad).map(Word::Stack),
        Some(b'-') if w.len() > 1 => Ok(Word::Lacks(w[1..].to_vec())),
        Some(b'<') => split(&w[1..]).map(|(k, v)| Word::Lt(k, v)),
        Some(b'>') => split(&w[1..]).map(|(k, v)| Word::Gt(k, v)),
        // Some older clients write `?=name=x`; RouterOS reads it as `?name=x`.
        Some(b'=') => split(&w[1..]).map(|(k, v)| Word::Eq(k, v)),
        Some(_) if w.contains(&b'=') => split(w).map(|(k, v)| Word::Eq(k, v)),
        Some(_) => Ok(Word::Has(w.to_vec())),
    }
}

fn parse_ops(s: &[u8]) -> Option<Vec<StackOp>> {
    let mut ops = Vec::new();
    let mut index: Option<usize> = None;
    for &c in s {
        if c.is_ascii_digit() {
            let d = usize::from(c - b'0');
            index = Some(index.unwrap_or(0).checked_mul(10)?.checked_add(d)?);
            continue;
        }
        if let Some(i) = index.take() {
            ops.push(StackOp::Copy(i));
            if c == b'.' {
                // `.` after an index does nothing.
                continue;
            }
        }
        ops.push(match c {
            b'!' => StackOp::Not,
            b'&' => StackOp::And,
            b'|' => StackOp::Or,
            b'.' => StackOp::Dup,
            _ => return None,
        });
    }
    if let Some(i) = index {
        ops.push(StackOp::Keep(i));
    }
    Some(ops)
}

/// `?name=x`: literal comparison, except that booleans accept `yes`/`no`
/// and `.id` is case-insensitive hex, as on the router.
fn equal(key: &[u8], value: &[u8], wanted: &[u8]) -> bool {
    let wanted: &[u8] = match (value, wanted) {
        (b"true" | b"false", b"yes") => b"true",
        (b"true" | b"false", b"no") => b"false",
        _ => wanted,
    };
    if key == b".id" {
        return value.eq_ignore_ascii_case(wanted);
    }
    value == wanted
}

/// `?<` / `?>`: numbers and durations compare by value, anything else as bytes.
fn compare(value: &[u8], wanted: &[u8]) -> Ordering {
    if let (Some(a), Some(b)) = (number(value), number(wanted)) {
        return a.cmp(&b);
    }
    if let (Ok(a), Ok(b)) = (parse_duration(value), parse_duration(wanted)) {
        return a.cmp(&b);
    }
    value.cmp(wanted)
}

fn number(s: &[u8]) -> Option<i128> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    fn q(words: &[&str]) -> Query {
        match Query::parse(words) {
            Ok(q) => q,
            Err(e) => panic!("{words:?}: {e}"),
        }
    }

    fn ether() -> Vec<(Vec<u8>, Vec<u8>)> {
        row(&[
            (".id", "*1"),
            ("name", "ether1"),
            ("type", "ether"),
            ("mtu", "1500"),
            ("disabled", "false"),
        ])
    }

    fn vlan() -> Vec<(Vec<u8>, Vec<u8>)> {
        row(&[
            (".id", "*A"),
            ("name", "vlan10"),
            ("type", "vlan"),
            ("mtu", "900"),
            ("comment", "uplink"),
            ("disabled", "true"),
        ])
    }

    fn bridge() -> Vec<(Vec<u8>, Vec<u8>)> {
        row(&[(".id", "*B"), ("name", "bridge"), ("type", "bridge")])
    }

    fn selected(query: &Query) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (name, r) in [("ether", ether()), ("vlan", vlan()), ("bridge", bridge())] {
            if query.matches(&r) {
                out.push(name);
            }
        }
        out
    }

    #[test]
    fn empty_query_selects_all() {
        assert_eq!(selected(&q(&[])), ["ether", "vlan", "bridge"]);
    }

    #[test]
    fn simple_words() {
        assert_eq!(selected(&q(&["type=vlan"])), ["vlan"]);
        assert_eq!(selected(&q(&["comment"])), ["vlan"]);
        assert_eq!(selected(&q(&["-comment"])), ["ether", "bridge"]);
        assert_eq!(selected(&q(&[">mtu=1000"])), ["ether"]);
        assert_eq!(selected(&q(&["<mtu=1000"])), ["vlan"]);
        // Missing property: neither less nor greater nor equal.
        assert_eq!(selected(&q(&["<mtu=99999"])), ["ether", "vlan"]);
        assert_eq!(selected(&q(&["=name=bridge"])), ["bridge"]);
        assert_eq!(selected(&q(&[".id=*a"])), ["vlan"]);
        assert_eq!(selected(&q(&["disabled=yes"])), ["vlan"]);
    }

    #[test]
    fn literal_match_no_globs() {
        assert!(selected(&q(&["name=vlan*"])).is_empty());
        assert!(selected(&q(&["name=VLAN10"])).is_empty());
    }

    #[test]
    fn consecutive_words_are_anded() {
        assert_eq!(selected(&q(&["type=vlan", "mtu=900"])), ["vlan"]);
        assert!(selected(&q(&["type=vlan", "mtu=1500"])).is_empty());
    }

    /// The documentation's example: neither ether nor vlan.
    #[test]
    fn documented_or_not() {
        assert_eq!(
            selected(&q(&["type=ether", "type=vlan", "#|!"])),
            ["bridge"]
        );
        assert_eq!(
            selected(&q(&["type=ether", "type=vlan", "#|"])),
            ["ether", "vlan"]
        );
    }

    #[test]
    fn index_operations() {
        // Stack [ether?, vlan?]; `#1` keeps only the value at index 1 (ether?).
        assert_eq!(selected(&q(&["type=ether", "type=vlan", "#1"])), ["ether"]);
        // `0.` pushes a copy of the top and `.` after an index does nothing.
        let copy = q(&["type=vlan", "#0.&"]);
        assert_eq!(selected(&copy), ["vlan"]);
        // `.` alone duplicates the top; `!` negates the copy; `|` => always true.
        assert_eq!(
            selected(&q(&["type=vlan", "#.!|"])),
            ["ether", "vlan", "bridge"]
        );
        // `1&` pushes a copy of index 1 then ands it with the top.
        // Stack [ether?, comment?]: `1&` ands a copy of ether? with comment?,
        // then `|` ors that with ether?.
        assert_eq!(selected(&q(&["type=ether", "comment", "#1&|"])), ["ether"]);
    }

    #[test]
    fn underflow_and_garbage_are_errors() {
        assert!(Query::parse(&["#&"]).is_err());
        assert!(Query::parse(&["type=vlan", "#|"]).is_err());
        assert!(Query::parse(&["type=vlan", "#3"]).is_err());
        assert!(Query::parse(&["#!"]).is_err());
        assert!(Query::parse(&["type=vlan", "#x"]).is_err());
        assert!(Query::parse(&[""]).is_err());
        assert!(Query::parse(&["<mtu"]).is_err());
        assert!(Query::parse(&[">=1"]).is_err());
        assert!(Query::parse(&["#99999999999999999999999"]).is_err());
    }

    #[test]
    fn durations_and_strings_compare_by_value() {
        let r = row(&[("uptime", "1h2m"), ("name", "b")]);
        assert!(q(&[">uptime=59m"]).matches(&r));
        assert!(q(&["<uptime=1d"]).matches(&r));
        assert!(q(&[">name=a"]).matches(&r));
        assert!(!q(&[">name=c"]).matches(&r));
    }
}
