//! Unified diffs as `[[patch]]` resources use them: parsed from the composition, applied (or
//! reversed) to a file's text in memory. Pure: what the host's file holds comes in as text,
//! the result goes out as text, and writing it is a file write like any other (`remote`).
//!
//! Application is strict, as `git apply` is: every context and removed line of a hunk must
//! match the file exactly, at the line the hunk header names or shifted by whole lines (an
//! upstream change above it); there is no fuzz factor. A hunk that matches nowhere is an
//! error naming it, and no partial result exists: the result is built only when every hunk
//! matched.

use std::fmt;

/// One parsed patch file: the changes to one file.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchFile {
    pub hunks: Vec<Hunk>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hunk {
    /// The `@@ -a,b +c,d @@` line as written (without a section heading after it).
    pub header: String,
    /// 1-based line of the header in the patch file.
    pub line: usize,
    /// 1-based first line of `old` in the file it was made against (for an empty `old`: the
    /// line after which `new` goes, 0 for the start).
    pub old_start: usize,
    pub new_start: usize,
    /// The lines the file has there (context and removed), each with its line ending.
    pub old: Vec<String>,
    /// The lines it has after the patch (context and added).
    pub new: Vec<String>,
}

/// A patch file that is not a unified diff of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// 1-based line of the patch file.
    pub line: usize,
    pub message: String,
}

/// A hunk that matches nowhere in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    /// 1-based.
    pub hunk: usize,
    pub hunks: usize,
    pub header: String,
    /// The hunk header's line in the patch file.
    pub patch_line: usize,
    /// 1-based line of the file where the hunk was expected.
    pub at: usize,
    /// The first line that differs there: what the hunk expects and what the file has
    /// (`None`: the file ends before it).
    pub expected: String,
    pub found: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |l: &str| format!("{:?}", l.strip_suffix('\n').unwrap_or(l));
        write!(
            f,
            "hunk {} of {} ({}, line {} of the patch) matches nowhere in the file: at line {} \
             the patch expects {} but the file {}",
            self.hunk,
            self.hunks,
            self.header,
            self.patch_line,
            self.at,
            show(&self.expected),
            match &self.found {
                Some(l) => format!("has {}", show(l)),
                None => "ends".to_string(),
            }
        )?;
        let crlf = |l: &str| l.ends_with("\r\n");
        if let Some(found) = &self.found
            && crlf(&self.expected) != crlf(found)
            && self.expected.trim_end() == found.trim_end()
        {
            let (patch, file) = if crlf(&self.expected) { ("CRLF", "LF") } else { ("LF", "CRLF") };
            write!(
                f,
                " (the same text, but the patch has {patch} line endings where the file has \
                 {file}: make the patch again from the file as it is)"
            )?;
        }
        Ok(())
    }
}

impl PatchFile {
    /// Parses a unified diff (`diff -u`, `git diff`, `git format-patch` output). Lines before
    /// the `---`/`+++` pair (a commit message, `diff --git`, `index`) are ignored; a patch of
    /// more than one file, a hunk whose line counts do not add up, or a patch without hunks is
    /// refused.
    pub fn parse(text: &str) -> Result<PatchFile, ParseError> {
        let err = |line: usize, message: String| ParseError { line, message };
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut i = 0;
        // The header: `--- a` directly followed by `+++ b`.
        let mut files = 0;
        let mut hunks: Vec<Hunk> = Vec::new();
        while i < lines.len() {
            let l = lines[i];
            if l.starts_with("--- ") && lines.get(i + 1).is_some_and(|n| n.starts_with("+++ ")) {
                let names_null = |l: &str| {
                    l[4..].split(['\t', '\n', '\r']).next().is_some_and(|n| n.trim() == "/dev/null")
                };
                if names_null(l) || names_null(lines[i + 1]) {
                    return Err(err(
                        i + 1,
                        "the patch creates or deletes its file (`/dev/null`); a [[patch]] changes \
                         a file a package installed: use a [[file]] for a whole file of your own"
                            .into(),
                    ));
                }
                files += 1;
                if files > 1 {
                    return Err(err(
                        i + 1,
                        "the patch changes more than one file; a [[patch]] patches one file: \
                         split it into one patch file per file"
                            .into(),
                    ));
                }
                i += 2;
                continue;
            }
            if l.starts_with("@@ ") {
                if files == 0 {
                    return Err(err(i + 1, "a hunk before the `---`/`+++` file header".into()));
                }
                let (hunk, next) = parse_hunk(&lines, i)?;
                if hunk.old == hunk.new {
                    return Err(err(
                        i + 1,
                        format!("hunk {:?} changes nothing (context lines only)", hunk.header),
                    ));
                }
                if let Some(prev) = hunks.last()
                    && hunk.old_start < prev.old_start + prev.old.len()
                {
                    return Err(err(i + 1, "this hunk overlaps or precedes the one before".into()));
                }
                hunks.push(hunk);
                i = next;
                continue;
            }
            i += 1;
        }
        if hunks.is_empty() {
            return Err(err(1, "no hunks (`@@ -a,b +c,d @@`): not a unified diff".into()));
        }
        Ok(PatchFile { hunks })
    }

    /// The patch that undoes this one.
    pub fn reversed(&self) -> PatchFile {
        let hunks = self
            .hunks
            .iter()
            .map(|h| Hunk {
                header: h.header.clone(),
                line: h.line,
                old_start: h.new_start,
                new_start: h.old_start,
                old: h.new.clone(),
                new: h.old.clone(),
            })
            .collect();
        PatchFile { hunks }
    }

    /// `text` with every hunk applied, or the first hunk that matches nowhere.
    pub fn apply(&self, text: &str) -> Result<String, Mismatch> {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let mut out = String::with_capacity(text.len());
        // Lines of `text` consumed so far, and how far the matches drift from the headers.
        let mut done = 0usize;
        let mut shift = 0isize;
        for (n, h) in self.hunks.iter().enumerate() {
            let stated = if h.old.is_empty() { h.old_start } else { h.old_start.saturating_sub(1) };
            let expected = (stated as isize + shift).max(done as isize) as usize;
            let Some(at) = find(&lines, &h.old, expected, done) else {
                return Err(mismatch(self, n, &lines, expected));
            };
            shift = at as isize - stated as isize;
            lines[done..at].iter().for_each(|l| out.push_str(l));
            h.new.iter().for_each(|l| out.push_str(l));
            done = at + h.old.len();
        }
        lines[done..].iter().for_each(|l| out.push_str(l));
        Ok(out)
    }
}

/// Where `old` matches `lines` exactly, at or after `from`, nearest `expected` first.
fn find(lines: &[&str], old: &[String], expected: usize, from: usize) -> Option<usize> {
    let fits = |at: usize| {
        at >= from
            && at + old.len() <= lines.len()
            && old.iter().zip(&lines[at..]).all(|(a, b)| a == b)
    };
    let last = lines.len().saturating_sub(old.len());
    (0..=lines.len()).find_map(|d| {
        let up = expected.checked_add(d).filter(|&a| a <= last && fits(a));
        let down = expected.checked_sub(d).filter(|&a| d > 0 && fits(a));
        up.or(down)
    })
}

fn mismatch(patch: &PatchFile, n: usize, lines: &[&str], at: usize) -> Mismatch {
    let h = &patch.hunks[n];
    let differs = h.old.iter().enumerate().find(|(i, l)| lines.get(at + i) != Some(&l.as_str()));
    let (i, expected) = differs.map_or((0, String::new()), |(i, l)| (i, l.clone()));
    Mismatch {
        hunk: n + 1,
        hunks: patch.hunks.len(),
        header: h.header.clone(),
        patch_line: h.line,
        at: at + i + 1,
        expected,
        found: lines.get(at + i).map(|l| l.to_string()),
    }
}

/// `-a,b` or `-a` (a count of 1).
fn range(s: &str) -> Option<(usize, usize)> {
    match s.split_once(',') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => Some((s.parse().ok()?, 1)),
    }
}

fn parse_hunk(lines: &[&str], i: usize) -> Result<(Hunk, usize), ParseError> {
    let header_line = lines[i].trim_end_matches(['\n', '\r']);
    let bad = || ParseError {
        line: i + 1,
        message: format!("malformed hunk header {header_line:?} (want `@@ -a,b +c,d @@`)"),
    };
    let rest = header_line.strip_prefix("@@ -").ok_or_else(bad)?;
    let (ranges, _) = rest.split_once(" @@").ok_or_else(bad)?;
    let (old, new) = ranges.split_once(" +").ok_or_else(bad)?;
    let ((old_start, old_len), (new_start, new_len)) =
        (range(old).ok_or_else(bad)?, range(new).ok_or_else(bad)?);
    let header = format!("@@ -{ranges} @@");
    let mut hunk =
        Hunk { header, line: i + 1, old_start, new_start, old: Vec::new(), new: Vec::new() };
    // Which side the previous line went to, for `\ No newline at end of file`.
    let (mut to_old, mut to_new) = (false, false);
    let mut j = i + 1;
    while hunk.old.len() < old_len
        || hunk.new.len() < new_len
        || lines.get(j).is_some_and(|l| l.starts_with('\\'))
    {
        let Some(l) = lines.get(j) else {
            return Err(ParseError {
                line: j,
                message: format!(
                    "the patch ends inside hunk {:?}: it has {} of {old_len} old and {} of \
                     {new_len} new lines",
                    hunk.header,
                    hunk.old.len(),
                    hunk.new.len()
                ),
            });
        };
        // An editor may strip the space of an empty context line.
        let (kind, body) = if *l == "\n" || *l == "\r\n" {
            (' ', *l)
        } else {
            let kind = l.chars().next().unwrap_or(' ');
            (kind, &l[kind.len_utf8()..])
        };
        match kind {
            ' ' => {
                hunk.old.push(body.to_string());
                hunk.new.push(body.to_string());
                (to_old, to_new) = (true, true);
            }
            '-' => {
                hunk.old.push(body.to_string());
                (to_old, to_new) = (true, false);
            }
            '+' => {
                hunk.new.push(body.to_string());
                (to_old, to_new) = (false, true);
            }
            '\\' => {
                for (side, yes) in [(&mut hunk.old, to_old), (&mut hunk.new, to_new)] {
                    if let Some(last) = side.last_mut().filter(|_| yes) {
                        *last = last.strip_suffix('\n').unwrap_or(last).to_string();
                    }
                }
            }
            _ => {
                return Err(ParseError {
                    line: j + 1,
                    message: format!(
                        "hunk {:?} has {} of {old_len} old and {} of {new_len} new lines, but \
                         this line starts with none of ' ', '-', '+'{}",
                        hunk.header,
                        hunk.old.len(),
                        hunk.new.len(),
                        if kind == '\u{a0}' {
                            " (it starts with a non-breaking space, as a patch pasted from a web \
                             page may: make the patch again with `diff -u` or `git diff`)"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
        if hunk.old.len() > old_len || hunk.new.len() > new_len {
            return Err(ParseError {
                line: j + 1,
                message: format!("hunk {:?} has more lines than its header says", hunk.header),
            });
        }
        j += 1;
    }
    Ok((hunk, j))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str =
        "import os\n\ndef start():\n    os.sync()\n    return 1\n\ndef stop():\n    return 0\n";
    const PATCH: &str = "From 1a2b Mon Sep 17 00:00:00 2001\nSubject: local fix\n\ndiff --git a/m.py b/m.py\nindex 1..2 100644\n--- a/m.py\n+++ b/m.py\n@@ -2,4 +2,5 @@ import os\n \n def start():\n-    os.sync()\n+    # local: no sync here\n+    pass\n     return 1\n@@ -7,2 +8,2 @@ def stop():\n def stop():\n-    return 0\n+    return 2\n";
    const PATCHED: &str = "import os\n\ndef start():\n    # local: no sync here\n    pass\n    return 1\n\ndef stop():\n    return 2\n";

    #[test]
    fn applies_and_reverses_a_git_patch() {
        let p = PatchFile::parse(PATCH).unwrap();
        assert_eq!(p.hunks.len(), 2);
        assert_eq!((p.hunks[0].header.as_str(), p.hunks[0].line), ("@@ -2,4 +2,5 @@", 8));
        assert_eq!(p.hunks[1].line, 15);
        assert_eq!(p.apply(ORIGINAL).unwrap(), PATCHED);
        assert_eq!(p.reversed().apply(PATCHED).unwrap(), ORIGINAL);
    }

    #[test]
    fn an_already_patched_file_does_not_take_the_patch_again() {
        let p = PatchFile::parse(PATCH).unwrap();
        let e = p.apply(PATCHED).unwrap_err();
        assert_eq!((e.hunk, e.hunks, e.at), (1, 2, 4));
        assert_eq!(e.expected, "    os.sync()\n");
        assert_eq!(e.found.as_deref(), Some("    # local: no sync here\n"));
    }

    #[test]
    fn hunks_follow_lines_moved_by_an_upstream_change_above_them() {
        let p = PatchFile::parse(PATCH).unwrap();
        let moved = format!("#!/usr/bin/python3\n# upstream header\n{ORIGINAL}");
        assert_eq!(
            p.apply(&moved).unwrap(),
            format!("#!/usr/bin/python3\n# upstream header\n{PATCHED}")
        );
    }

    #[test]
    fn a_changed_line_names_the_hunk_its_header_and_the_line() {
        let p = PatchFile::parse(PATCH).unwrap();
        let upgraded = ORIGINAL.replace("return 0", "return None");
        let e = p.apply(&upgraded).unwrap_err();
        assert_eq!(
            e.to_string(),
            "hunk 2 of 2 (@@ -7,2 +8,2 @@, line 15 of the patch) matches nowhere in the file: at \
             line 8 the patch expects \"    return 0\" but the file has \"    return None\""
        );
        let short = "import os\n";
        let e = p.apply(short).unwrap_err();
        assert_eq!((e.hunk, e.found), (1, None));
    }

    #[test]
    fn missing_newline_at_the_end_is_kept_on_both_sides() {
        let patch = "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n";
        let p = PatchFile::parse(patch).unwrap();
        assert_eq!(p.apply("a\nb").unwrap(), "a\nc");
        assert!(p.apply("a\nb\n").is_err(), "b with a newline is another line");
        let add_newline = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-b\n\\ No newline at end of file\n+b\n";
        assert_eq!(PatchFile::parse(add_newline).unwrap().apply("b").unwrap(), "b\n");
    }

    #[test]
    fn insertions_at_the_start_and_into_an_empty_file() {
        let patch = "--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+first\n";
        let p = PatchFile::parse(patch).unwrap();
        assert_eq!(p.apply("").unwrap(), "first\n");
        assert_eq!(p.apply("a\n").unwrap(), "first\na\n");
        assert_eq!(p.reversed().apply("first\na\n").unwrap(), "a\n");
    }

    #[test]
    fn what_is_not_a_patch_of_one_file_is_refused_with_its_line() {
        let e = |t: &str| PatchFile::parse(t).unwrap_err();
        assert_eq!(e("just text\n").message, "no hunks (`@@ -a,b +c,d @@`): not a unified diff");
        let two = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n";
        assert_eq!(e(two).line, 6);
        assert!(e(two).message.contains("more than one file"));
        let short = "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n";
        assert!(
            e(short).message.starts_with("the patch ends inside hunk \"@@ -1,3 +1,3 @@\""),
            "{:?}",
            e(short)
        );
        let garbage = "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n*b\n";
        assert_eq!(e(garbage).line, 5);
        let header = "--- a/x\n+++ b/x\n@@ -x +1 @@\n";
        assert_eq!(e(header).line, 3);
        assert!(e(header).message.starts_with("malformed hunk header"));
        // A line starting with a multi-byte character is an error, not a crash; a
        // non-breaking space where the context line's space belongs is named.
        let accented = "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\nété\n";
        assert_eq!(e(accented).line, 6);
        let nbsp = "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n\u{a0}c\n";
        assert!(e(nbsp).message.contains("non-breaking space"), "{:?}", e(nbsp));
        // Whole files are [[file]]s, not patches.
        for created in [
            "--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n+new\n",
            "--- a/x\n+++ /dev/null\t2024-01-01\n@@ -1 +0,0 @@\n-old\n",
        ] {
            assert_eq!(e(created).line, 1);
            assert!(e(created).message.contains("use a [[file]]"), "{:?}", e(created));
        }
        let noop = "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\n b\n";
        assert_eq!(e(noop).line, 3);
        assert!(e(noop).message.contains("changes nothing"), "{:?}", e(noop));
    }

    #[test]
    fn crlf_files_are_matched_as_they_are() {
        let patch = "--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n a\r\n-b\r\n+c\r\n";
        assert_eq!(PatchFile::parse(patch).unwrap().apply("a\r\nb\r\n").unwrap(), "a\r\nc\r\n");
        // Against the same text with LF endings: refused, saying that is the difference.
        let e = PatchFile::parse(patch).unwrap().apply("a\nb\n").unwrap_err().to_string();
        assert!(e.ends_with("the patch has CRLF line endings where the file has LF: make the patch again from the file as it is)"), "{e}");
    }
}
