//! The lines of a unified diff as the HTML report shows them: each with its kind and, for a
//! changed line that has a counterpart (the n-th of a run of removed lines and the n-th of the
//! added lines that follow, when both runs are as long), which words changed.

use similar::{ChangeTag, TextDiff};

/// What a diff line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// The `---`/`+++` header.
    Meta,
    Hunk,
    Context,
    Added,
    Removed,
}

/// One diff line: its kind and its text (the `+`/`-`/` ` prefix included) in pieces, each
/// marked whether it is a changed word.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Line {
    pub kind: Kind,
    pub pieces: Vec<(bool, String)>,
}

/// Below this similarity a pair of lines is a replacement, not an edit: marking nearly every
/// word would only add noise.
const MIN_RATIO: f32 = 0.4;

pub(super) fn lines(diff: &str) -> Vec<Line> {
    let mut in_hunks = false;
    let mut out: Vec<Line> = Vec::new();
    for line in diff.lines() {
        in_hunks |= line.starts_with("@@");
        let kind = match line.chars().next() {
            _ if !in_hunks => Kind::Meta,
            Some('+') => Kind::Added,
            Some('-') => Kind::Removed,
            Some('@') => Kind::Hunk,
            _ => Kind::Context,
        };
        out.push(Line { kind, pieces: vec![(false, line.to_string())] });
    }
    let mut i = 0;
    while i < out.len() {
        let run =
            |from: usize, kind: Kind| out[from..].iter().take_while(|l| l.kind == kind).count();
        let removed = run(i, Kind::Removed);
        if removed == 0 {
            i += 1;
            continue;
        }
        let added = run(i + removed, Kind::Added);
        if added == removed {
            for k in 0..removed {
                let (old, new) = (&out[i + k].pieces[0].1, &out[i + removed + k].pieces[0].1);
                if let Some((old, new)) = changed_words(&old[1..], &new[1..]) {
                    out[i + k].pieces = prefixed('-', old);
                    out[i + removed + k].pieces = prefixed('+', new);
                }
            }
        }
        i += removed + added;
    }
    out
}

fn prefixed(sign: char, mut pieces: Vec<(bool, String)>) -> Vec<(bool, String)> {
    pieces.insert(0, (false, sign.to_string()));
    pieces
}

type Pieces = Vec<(bool, String)>;

/// Both lines in pieces, the words only one of them has marked; `None` when the lines have
/// too little in common to call it an edit.
fn changed_words(old: &str, new: &str) -> Option<(Pieces, Pieces)> {
    let diff = TextDiff::configure().diff_words(old, new);
    if diff.ratio() < MIN_RATIO {
        return None;
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for change in diff.iter_all_changes() {
        let text = change.value();
        match change.tag() {
            ChangeTag::Equal => {
                push(&mut a, false, text);
                push(&mut b, false, text);
            }
            ChangeTag::Delete => push(&mut a, true, text),
            ChangeTag::Insert => push(&mut b, true, text),
        }
    }
    Some((a, b))
}

/// Appends to the last piece when it is marked the same way, so a changed phrase is one mark.
fn push(pieces: &mut Pieces, changed: bool, text: &str) {
    match pieces.last_mut() {
        Some((c, t)) if *c == changed => t.push_str(text),
        _ => pieces.push((changed, text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(line: &Line) -> Vec<&str> {
        line.pieces.iter().filter(|(c, _)| *c).map(|(_, t)| t.as_str()).collect()
    }

    #[test]
    fn a_pair_of_changed_lines_marks_only_the_words_that_changed() {
        let diff = "--- a\n+++ b\n@@ -1,3 +1,3 @@\n keep\n-server 0.pool iburst\n+server ntp.example.net iburst\n tail\n";
        let lines = lines(diff);
        let kinds: Vec<Kind> = lines.iter().map(|l| l.kind).collect();
        use Kind::*;
        assert_eq!(kinds, [Meta, Meta, Hunk, Context, Removed, Added, Context]);
        assert_eq!(marked(&lines[4]), ["0.pool"]);
        assert_eq!(marked(&lines[5]), ["ntp.example.net"]);
        // The pieces still make up the line, prefix and all.
        let text: String = lines[5].pieces.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(text, "+server ntp.example.net iburst");
    }

    #[test]
    fn unpaired_or_unrelated_lines_are_not_marked() {
        // Two removed, one added: no counterpart to compare with.
        let uneven = lines("@@ -1,2 +1,1 @@\n-a = 1\n-b = 2\n+a = 3\n");
        assert!(uneven.iter().all(|l| marked(l).is_empty()), "{uneven:?}");
        // A line replaced by something else entirely.
        let replaced = lines("@@ -1 +1 @@\n-listen 127.0.0.1:11211\n+[DEFAULT]\n");
        assert!(replaced.iter().all(|l| marked(l).is_empty()), "{replaced:?}");
        // A header line that starts like a removed one is not paired.
        let header = lines("--- a\n+++ b\n@@ -1 +1 @@\n-x y\n+x z\n");
        assert_eq!(marked(&header[3]), ["y"]);
        assert!(marked(&header[0]).is_empty());
    }

    #[test]
    fn a_changed_secret_is_marked_as_its_redaction_marker_whole() {
        let lines = lines(
            "@@ -1 +1 @@\n-default_pass = <secret:rabbitmq::password#1a2b3c4d>\n+default_pass = <secret:rabbitmq::password#5e6f7a8b>\n",
        );
        assert_eq!(marked(&lines[1]), ["<secret:rabbitmq::password#1a2b3c4d>"]);
        assert_eq!(marked(&lines[2]), ["<secret:rabbitmq::password#5e6f7a8b>"]);
    }
}
