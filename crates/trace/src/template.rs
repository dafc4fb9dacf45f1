//! Error message templates: the same failure with different values reads the same.
//!
//! "User 17 not found" and "User 4 not found" are one failure mode. [`error_template`]
//! masks the parts of a message that vary between occurrences (numbers, hex ids and uuids,
//! quoted values, paths, urls, emails) so messages can be grouped and counted.

/// Masks the variable parts of an error message.
///
/// ```
/// use halo_trace::error_template;
/// assert_eq!(error_template("User 17 not found"), error_template("User 4 not found"));
/// assert_eq!(error_template("File '/home/a/x.txt' does not exist"), "File <str> does not exist");
/// ```
pub fn error_template(message: &str) -> String {
    let message = crate::semantic::head(message.trim(), 400);
    let mut out = String::with_capacity(message.len());
    let chars: Vec<char> = message.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' || c == '`' {
            if let Some(end) = chars[i + 1..].iter().position(|&d| d == c) {
                if end <= 200 {
                    out.push_str("<str>");
                    i += end + 2;
                    continue;
                }
            }
        }
        if c.is_alphanumeric()
            || c == '/'
            || c == '_'
            || c == '-'
            || c == '.'
            || c == '~'
            || c == ':'
            || c == '@'
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric()
                    || matches!(
                        chars[i],
                        '/' | '_' | '-' | '.' | '~' | ':' | '@' | '%' | '=' | '?' | '&' | '+'
                    ))
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let (core, trail) = split_trailing_punctuation(&word);
            out.push_str(&mask_word(core));
            out.push_str(trail);
            continue;
        }
        out.push(c);
        i += 1;
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn split_trailing_punctuation(word: &str) -> (&str, &str) {
    let core = word.trim_end_matches(['.', ':', ',', '?', '&', '=', '-']);
    (core, &word[core.len()..])
}

fn mask_word(word: &str) -> String {
    if word.is_empty() {
        return String::new();
    }
    if word.contains("://") {
        return "<url>".into();
    }
    if word.contains('@') && word.contains('.') && !word.starts_with('@') {
        return "<email>".into();
    }
    if word.starts_with('/')
        || word.starts_with("./")
        || word.starts_with("~/")
        || word.matches('/').count() >= 2
    {
        return "<path>".into();
    }
    let digits = word.chars().filter(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return word.to_string();
    }
    if word
        .chars()
        .all(|c| c.is_ascii_digit() || c == '.' || c == ',' || c == '-' || c == ':')
    {
        return "<num>".into();
    }
    let hexish = word.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if hexish && word.len() >= 8 {
        return "<id>".into();
    }
    // Identifiers that mix letters and digits (acct_93ab, user-1234, req_8f2c): keep a
    // letters-only prefix so "acct_" ids stay distinguishable from "order_" ids.
    if let Some(split) = word.find(['_', '-']) {
        let (prefix, rest) = word.split_at(split + 1);
        if rest.contains('.') {
            // Versions and model names (gpt-5.4-mini, v1.2.3-beta) name a thing, not an id.
            return word.to_string();
        }
        if !prefix.chars().any(|c| c.is_ascii_digit()) && rest.chars().any(|c| c.is_ascii_digit()) {
            return format!("{prefix}<id>");
        }
    }
    if digits * 2 >= word.len() {
        return "<id>".into();
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_what_varies() {
        let cases = [
            ("User 17 not found", "User <num> not found"),
            (
                "Permission denied for account acct_93ab",
                "Permission denied for account acct_<id>",
            ),
            ("Request 5b8efff798038103 failed", "Request <id> failed"),
            (
                "[Errno 2] No such file or directory: /home/user/dev/tools",
                "[Errno <num>] No such file or directory: <path>",
            ),
            (
                "got an unexpected keyword argument 'note'",
                "got an unexpected keyword argument <str>",
            ),
            (
                "see https://x.io/a?b=1 or mail a@b.io",
                "see <url> or mail <email>",
            ),
            (
                "Rate limit reached for gpt-5.4-mini",
                "Rate limit reached for gpt-5.4-mini",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(error_template(input), expected, "{input}");
        }
    }

    #[test]
    fn same_failure_same_template() {
        assert_eq!(
            error_template("max_turns (20) exceeded after 20 turns"),
            error_template("max_turns (25) exceeded after 25 turns")
        );
    }
}
