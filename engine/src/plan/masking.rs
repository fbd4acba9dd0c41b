//! Hiding what a host has in place of a commit's secret, in the diffs plans, drift reports and
//! reviews show.
//!
//! A diff is redacted with every secret value the engine knows (the commit's, and the running
//! commit's), but a value someone typed on the host in place of one is none of them: a
//! password changed by hand would show in clear on the host's side of the diff. So in each run
//! of changed lines whose commit side (`+`) holds a secret marker, the host side (`-`) is
//! withheld, except lines that are themselves redacted (a known secret, such as the value
//! before a rotation), which say nothing more than their marker.

/// How a withheld run ends, so that masking twice changes nothing.
const WITHHELD: &str = " on the host where the commit has a secret: not shown)\n";

/// `diff` (a unified diff, already redacted) with the host side of secret-bearing changes
/// withheld, as one line saying how many lines it had.
pub fn mask_replaced_secrets(diff: &str) -> String {
    if !diff.contains("<secret:") {
        return diff.to_string();
    }
    let mut out = String::with_capacity(diff.len());
    let lines: Vec<&str> = diff.split_inclusive('\n').collect();
    let changed = |l: &str| l.starts_with('-') || l.starts_with('+');
    let mut in_hunks = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        in_hunks |= line.starts_with("@@");
        if !in_hunks || !changed(line) {
            out.push_str(line);
            i += 1;
            continue;
        }
        let end = (i..lines.len()).find(|&j| !changed(lines[j])).unwrap_or(lines.len());
        let run = &lines[i..end];
        if run.iter().any(|l| l.starts_with('+') && l.contains("<secret:")) {
            let host = run.iter().filter(|l| l.starts_with('-'));
            let (known, hidden): (Vec<&&str>, Vec<&&str>) =
                host.partition(|l| l.contains("<secret:") || l.ends_with(WITHHELD));
            known.iter().for_each(|l| out.push_str(l));
            if !hidden.is_empty() {
                out.push_str(&format!("-({} line(s){WITHHELD}", hidden.len()));
            }
            run.iter().filter(|l| l.starts_with('+')).for_each(|l| out.push_str(l));
        } else {
            run.iter().for_each(|l| out.push_str(l));
        }
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mask_replaced_secrets;

    #[test]
    fn the_host_side_of_a_changed_secret_line_is_not_shown() {
        let diff = "--- /etc/x (on host)\n+++ /etc/x (commit abc)\n@@ -1,4 +1,4 @@\n \
                    [db]\n-password = typed-by-hand-9x\n-user = nova2\n+password = <secret:nova::db#1a2b3c4d>\n+user = nova\n \
                    host = db01\n-debug = true\n+debug = false\n";
        let masked = mask_replaced_secrets(diff);
        assert!(!masked.contains("typed-by-hand-9x"), "{masked}");
        assert_eq!(
            masked,
            "--- /etc/x (on host)\n+++ /etc/x (commit abc)\n@@ -1,4 +1,4 @@\n [db]\n\
             -(2 line(s) on the host where the commit has a secret: not shown)\n\
             +password = <secret:nova::db#1a2b3c4d>\n+user = nova\n host = db01\n\
             -debug = true\n+debug = false\n"
        );
        assert_eq!(mask_replaced_secrets(&masked), masked, "masking twice changes nothing");
        let plain = "--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n";
        assert_eq!(mask_replaced_secrets(plain), plain);
    }

    /// A rotation shows as one: the old value is a known secret, redacted to its marker.
    #[test]
    fn a_known_secret_on_the_host_side_stays_visible_as_its_marker() {
        let diff = "@@ -1 +1 @@\n-password = <secret:db#0ld>\n+password = <secret:db#new>\n";
        assert_eq!(mask_replaced_secrets(diff), diff);
    }
}
