//! Wildcard matching for host selectors and known_hosts patterns.
//!
//! Both read patterns from files an operator (or an attacker who can write `known_hosts`)
//! controls, so matching must stay linear in practice: the obvious recursive matcher tries
//! every split for every `*` and a pattern like `a*a*a*…b` takes exponential time (the
//! known_hosts fuzz target found one that hung the connect).

/// Whether `text` matches `pattern`, where `*` stands for any run of bytes and, when
/// `question` is set, `?` for any one byte.
///
/// Greedy with a single backtrack point: on a mismatch only the most recent `*` grows by one
/// byte, because a match found by growing an earlier star can always be found by the later
/// one as well. Worst case O(|pattern| × |text|).
pub fn matches(pattern: &[u8], text: &[u8], question: bool) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == text[t] || (question && c == b'?') => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    p = sp + 1;
                    t = st + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(pattern: &str, text: &str) -> bool {
        matches(pattern.as_bytes(), text.as_bytes(), true)
    }

    #[test]
    fn stars_and_questions() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("compute*", "compute01"));
        assert!(!m("compute*", "controller"));
        assert!(m("*.example.com", "db01.example.com"));
        assert!(!m("*.example.com", "example.com"));
        assert!(m("c*t*1", "controller1"));
        assert!(m("a*b*c", "abbbc"));
        assert!(!m("a*b*c", "abbbcd"));
        assert!(m("10.0.0.?", "10.0.0.7"));
        assert!(!m("10.0.0.?", "10.0.0.17"));
        assert!(m("?*", "x"));
        assert!(!m("?*", ""));
        assert!(m("**a**", "bab"));
        assert!(!matches(b"h?st", b"host", false), "? is literal when not enabled");
        assert!(matches(b"h?st", b"h?st", false));
    }

    /// Each `*` in a recursive matcher multiplies the work by the text length; this pattern
    /// against this text would not finish. The greedy matcher answers at once.
    #[test]
    fn many_stars_stay_linear() {
        let pattern = format!("{}b", "a*".repeat(40));
        let text = "a".repeat(200);
        assert!(!m(&pattern, &text));
        assert!(m(&pattern, &format!("{text}b")));
        let long = "*".repeat(100_000);
        assert!(m(&long, &"x".repeat(100_000)));
    }
}
