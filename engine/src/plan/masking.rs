//! Hiding what a host has in place of a commit's secret, in the diffs plans, drift reports and
//! reviews show.
//!
//! A diff is redacted with every secret value the engine knows (the commit's, and the running
//! commit's), but a value someone typed on the host in place of one is none of them: a
//! password changed by hand would show in clear on the host's side of the diff. So in a hunk
//! whose commit side (added or context lines) holds a secret marker, a host line (`-`) is
//! withheld when it may be where the secret was typed:
//! - it is in the same run of changed lines as an added secret line (`\ No newline` lines do
//!   not end a run);
//! - it sets the same key as a secret line of the hunk (`password = ...`, `"password": ...`:
//!   the text before the first `=` or `:`), which catches a line moved or added beside the
//!   secret;
//! - or the hunk has a secret with no key before it (a file that is only the secret, `Bearer
//!   <secret>`), where any host line may be it.
//!
//! Each run of withheld lines is one line saying how many it had. Host lines that are
//! themselves redacted (a known secret, such as the value before a rotation) stay: they say
//! nothing more than their marker. Other host lines of the hunk stay too, so that drift next
//! to a secret (a changed setting two lines below a password) still shows.

/// How a withheld run ends, so that masking twice changes nothing.
const WITHHELD: &str = " on the host where the commit has a secret: not shown)\n";

const MARKER: &str = "<secret:";

/// `diff` (a unified diff, already redacted) with the host side of secret-bearing changes
/// withheld.
pub fn mask_replaced_secrets(diff: &str) -> String {
    if !diff.contains(MARKER) {
        return diff.to_string();
    }
    let lines: Vec<&str> = diff.split_inclusive('\n').collect();
    let mut out = String::with_capacity(diff.len());
    // The file header, up to the first hunk.
    let first = lines.iter().position(|l| l.starts_with("@@")).unwrap_or(lines.len());
    lines[..first].iter().for_each(|l| out.push_str(l));
    let mut i = first;
    while i < lines.len() {
        let end = (i + 1..lines.len()).find(|&j| lines[j].starts_with("@@")).unwrap_or(lines.len());
        mask_hunk(&lines[i..end], &mut out);
        i = end;
    }
    out
}

/// The key a diff line sets: its text (after the diff's prefix, before any secret marker)
/// up to the first `=` or `:`, trimmed; `None` without one.
fn key(line: &str) -> Option<&str> {
    let body = line.get(1..).unwrap_or("");
    let body = body.find(MARKER).map_or(body, |i| &body[..i]);
    body.find(['=', ':']).map(|i| body[..i].trim())
}

/// One hunk (its `@@` line first), masked into `out`.
fn mask_hunk(hunk: &[&str], out: &mut String) {
    let commit_secret = |l: &str| (l.starts_with('+') || l.starts_with(' ')) && l.contains(MARKER);
    let keys: Vec<Option<&str>> =
        hunk[1..].iter().filter(|l| commit_secret(l)).map(|l| key(l)).collect();
    if keys.is_empty() {
        hunk.iter().for_each(|l| out.push_str(l));
        return;
    }
    let keyless = keys.iter().any(|k| k.is_none_or(str::is_empty));
    // Which lines are in a run of changed lines that adds a secret.
    let changed = |l: &str| l.starts_with('-') || l.starts_with('+') || l.starts_with('\\');
    let mut in_secret_run = vec![false; hunk.len()];
    let mut i = 1;
    while i < hunk.len() {
        if !changed(hunk[i]) {
            i += 1;
            continue;
        }
        let end = (i..hunk.len()).find(|&j| !changed(hunk[j])).unwrap_or(hunk.len());
        let adds_secret = hunk[i..end].iter().any(|l| l.starts_with('+') && l.contains(MARKER));
        in_secret_run[i..end].iter_mut().for_each(|x| *x = adds_secret);
        i = end;
    }
    let withheld = |n: usize, l: &str| {
        l.starts_with('-')
            && !l.contains(MARKER)
            && !l.ends_with(WITHHELD)
            && (keyless || in_secret_run[n] || key(l).is_some_and(|k| keys.contains(&Some(k))))
    };
    let mut hidden = 0;
    let mut after_hidden = false;
    for (n, line) in hunk.iter().enumerate() {
        if withheld(n, line) {
            hidden += 1;
            after_hidden = true;
            continue;
        }
        // "\ No newline at end of file" of a withheld line goes with it.
        if line.starts_with('\\') && after_hidden {
            continue;
        }
        after_hidden = false;
        if hidden > 0 {
            out.push_str(&format!("-({hidden} line(s){WITHHELD}"));
            hidden = 0;
        }
        out.push_str(line);
    }
    if hidden > 0 {
        out.push_str(&format!("-({hidden} line(s){WITHHELD}"));
    }
}

#[cfg(test)]
mod tests {
    use super::mask_replaced_secrets;

    const NOT_SHOWN: &str = "line(s) on the host where the commit has a secret: not shown)\n";

    #[test]
    fn the_host_side_of_a_changed_secret_line_is_not_shown() {
        let diff = "--- /etc/x (on host)\n+++ /etc/x (commit abc)\n@@ -1,4 +1,4 @@\n \
                    [db]\n-password = typed-by-hand-9x\n-user = nova2\n+password = <secret:nova::db#1a2b3c4d>\n+user = nova\n \
                    host = db01\n-debug = true\n+debug = false\n";
        let masked = mask_replaced_secrets(diff);
        assert!(!masked.contains("typed-by-hand-9x"), "{masked}");
        // The run with the secret is withheld; the other run, with another key, shows.
        assert_eq!(
            masked,
            format!(
                "--- /etc/x (on host)\n+++ /etc/x (commit abc)\n@@ -1,4 +1,4 @@\n [db]\n\
                 -(2 {NOT_SHOWN}+password = <secret:nova::db#1a2b3c4d>\n+user = nova\n host = db01\n\
                 -debug = true\n+debug = false\n"
            )
        );
        assert_eq!(mask_replaced_secrets(&masked), masked, "masking twice changes nothing");
        let plain = "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n";
        assert_eq!(mask_replaced_secrets(plain), plain);
    }

    /// The ways a hand-typed value escaped a mask by runs of changed lines alone: the line
    /// moved next to its replacement (a context line between them), a host line without its
    /// final newline, a line added beside an unchanged secret; and files where any host line
    /// may be the secret (one that is only the secret, a secret with no key before it).
    #[test]
    fn host_lines_where_a_secret_may_have_been_typed_are_withheld() {
        let cases = [
            "@@ -1,3 +1,3 @@\n+connection = <secret:k::db#1>\n max_retries = -1\n-connection = mysql://k:HandTyped1@db/k\n",
            "@@ -1,2 +1,2 @@\n [auth]\n-password = HandTyped2\n\\ No newline at end of file\n+password = <secret:m::pw#2>\n",
            "@@ -1,2 +1,3 @@\n password = <secret:m::pw#2>\n-password = HandTyped3\n region = R\n",
            "@@ -1 +1 @@\n-HandTyped4\n+<secret:k::fernet#3>\n",
            "@@ -1,2 +1,2 @@\n-x = 1\n+x = 2\n Authorization Bearer <secret:t#4>\n-HandTyped5\n",
        ];
        for diff in cases {
            let masked = mask_replaced_secrets(diff);
            assert!(!masked.contains("HandTyped"), "{masked}");
            assert!(masked.contains(NOT_SHOWN), "{masked}");
            assert!(!masked.contains("No newline"), "{masked}");
            assert_eq!(mask_replaced_secrets(&masked), masked, "masking twice changes nothing");
        }
    }

    /// Drift beside a secret still shows, and hunks without one stay whole.
    #[test]
    fn other_host_lines_stay() {
        let beside = "@@ -1,4 +1,4 @@\n-pass = HandTyped6\n+pass = <secret:r#5>\n vhost = /\n-watermark = 0.7\n+watermark = 0.5\n";
        assert_eq!(
            mask_replaced_secrets(beside),
            format!(
                "@@ -1,4 +1,4 @@\n-(1 {NOT_SHOWN}+pass = <secret:r#5>\n vhost = /\n\
                 -watermark = 0.7\n+watermark = 0.5\n"
            )
        );
        let elsewhere = "@@ -1 +1 @@\n-a = <secret:k#1>\n+a = <secret:k#2>\n@@ -9 +9 @@\n-debug = true\n+debug = false\n";
        assert_eq!(mask_replaced_secrets(elsewhere), elsewhere);
    }

    /// A rotation shows as one: the old value is a known secret, redacted to its marker.
    #[test]
    fn a_known_secret_on_the_host_side_stays_visible_as_its_marker() {
        let diff = "@@ -1 +1 @@\n-password = <secret:db#0ld>\n+password = <secret:db#new>\n";
        assert_eq!(mask_replaced_secrets(diff), diff);
    }
}
