//! Plain aligned text tables.

// Columns are measured in terminal columns, not characters: a CJK character or an emoji
// takes two.
use unicode_width::UnicodeWidthStr as _;

/// A table: a header and rows of cells; numeric-looking cells are right-aligned.
#[derive(Debug, Default)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row. Cells hold trace text, shown on one line with its control characters
    /// escaped ([`inline`]) before the columns are measured.
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.into_iter().map(|c| inline(&c).into_owned()).collect());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub(crate) fn render(&self, indent: &str) -> String {
        let n = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.width()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.width());
            }
        }
        let numeric: Vec<bool> = (0..n)
            .map(|i| {
                !self.rows.is_empty()
                    && self.rows.iter().all(|r| {
                        r.get(i).is_none_or(|c| {
                            c.is_empty()
                                || c == "-"
                                || c.trim_end_matches(['%', 's'])
                                    .replace([',', '.'], "")
                                    .parse::<f64>()
                                    .is_ok()
                        })
                    })
            })
            .collect();
        let line = |cells: &[String]| {
            let mut s = String::from(indent);
            for i in 0..n {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                let pad = widths[i] - c.width();
                if numeric[i] {
                    s.push_str(&" ".repeat(pad));
                    s.push_str(c);
                } else {
                    s.push_str(c);
                    if i + 1 < n {
                        s.push_str(&" ".repeat(pad));
                    }
                }
                if i + 1 < n {
                    s.push_str("  ");
                }
            }
            s.trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}

/// Trace text for one line of a table or tree: control characters escaped
/// ([`halo_trace::printable`]), and a line break too, which would split the line.
pub(crate) fn inline(text: &str) -> std::borrow::Cow<'_, str> {
    match halo_trace::printable(text) {
        std::borrow::Cow::Borrowed(t) if !t.contains('\n') => std::borrow::Cow::Borrowed(t),
        shown => std::borrow::Cow::Owned(shown.replace('\n', "\\u000a")),
    }
}

/// Thousands separators, as the reports write them.
pub(crate) use halo_diagnose::thousands;

/// Bytes in human units.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Milliseconds in human units.
pub(crate) fn millis(ms: f64) -> String {
    if ms >= 60_000.0 {
        format!("{:.1}min", ms / 60_000.0)
    } else if ms >= 1_000.0 {
        format!("{:.1}s", ms / 1_000.0)
    } else {
        format!("{ms:.0}ms")
    }
}

/// Trace text on one line (white space runs become one space, control characters are
/// escaped), cut to `max` terminal columns with `…` when cut.
pub(crate) fn cut(s: &str, max: usize) -> String {
    use unicode_width::UnicodeWidthChar as _;
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let shown = halo_trace::printable(&flat);
    if shown.width() <= max {
        return shown.into_owned();
    }
    let mut kept = String::new();
    let mut width = 0;
    for c in shown.chars() {
        width += c.width().unwrap_or(0);
        if width > max.saturating_sub(1) {
            break;
        }
        kept.push(c);
    }
    kept.push('…');
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_formats() {
        let mut t = Table::new(&["tool", "calls"]);
        t.row(vec!["grep".into(), "1,200".into()]);
        t.row(vec!["list_files".into(), "3".into()]);
        assert_eq!(
            t.render(""),
            "tool        calls\ngrep        1,200\nlist_files      3\n"
        );
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(cut("a  b\nc", 10), "a b c");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(
            cut("検索検索", 5),
            "検索…",
            "cut to columns, not characters"
        );
        assert_eq!(cut("a\u{1b}b", 20), "a\\u001bb");
    }

    #[test]
    fn wide_characters_take_two_columns_and_controls_are_escaped() {
        let mut t = Table::new(&["tool", "calls"]);
        t.row(vec!["検索".into(), "1".into()]);
        t.row(vec!["grep".into(), "22".into()]);
        t.row(vec!["a\u{1b}[2Jb\nc".into(), "3".into()]);
        assert_eq!(
            t.render(""),
            concat!(
                "tool                calls\n",
                "検索                    1\n",
                "grep                   22\n",
                "a\\u001b[2Jb\\u000ac      3\n",
            )
        );
    }
}
