//! The README and `docs/`: every relative link names a file that exists,
//! and every `#anchor` a heading in it (GitHub's anchor rule), so moving a
//! section cannot leave a dead link behind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files checked, relative to the repository root.
fn files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/")
        .map(|e| PathBuf::from("docs").join(e.expect("entry").file_name()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Lines outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fenced = false;
    text.lines().enumerate().filter(move |(_, l)| {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens; a repeated heading gets `-1`, `-2`, ….
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    for (_, line) in prose(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let slug: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.insert(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// `](target)` links of a line.
fn links(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

#[test]
fn every_link_in_the_docs_resolves() {
    let files = files();
    assert!(files.len() > 5, "README.md and docs/*.md: {files:?}");
    let texts: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(root().join(f)).expect("read");
            (f.clone(), text)
        })
        .collect();
    let heads: BTreeMap<&PathBuf, BTreeSet<String>> =
        texts.iter().map(|(f, t)| (f, anchors(t))).collect();
    let mut dead = Vec::new();
    for (file, text) in &texts {
        let dir = file.parent().unwrap_or(Path::new(""));
        for (n, line) in prose(text) {
            for link in links(line) {
                if link.contains("://") || link.starts_with("mailto:") || link.contains(' ') {
                    continue;
                }
                let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
                let target = if path.is_empty() {
                    file.clone()
                } else {
                    normalize(&dir.join(path))
                };
                if !root().join(&target).exists() {
                    dead.push(format!("{}:{}: no file {link}", file.display(), n + 1));
                    continue;
                }
                if anchor.is_empty() {
                    continue;
                }
                match heads.get(&target) {
                    Some(h) if h.contains(anchor) => {}
                    _ => dead.push(format!(
                        "{}:{}: no heading for {link}",
                        file.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

/// `docs/../README.md` → `README.md`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}
