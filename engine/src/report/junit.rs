//! JUnit XML of a pipeline run: one test suite for the run, one test case per stage.

use crate::pipeline::StageReport;
use crate::source::short;

fn xml(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub fn junit(reports: &[StageReport], commit: &str) -> String {
    let failures = reports.iter().filter(|r| !r.passed).count();
    let time: f64 = reports.iter().map(|r| r.duration_secs).sum();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"stackdeploy pipeline {}\" tests=\"{}\" failures=\"{failures}\" time=\"{time:.3}\">\n",
        short(commit),
        reports.len()
    );
    for r in reports {
        let kind = format!("{:?}", r.kind).to_lowercase();
        s.push_str(&format!(
            "    <testcase classname=\"stackdeploy.{kind}\" name=\"{}\" time=\"{:.3}\"",
            xml(&r.name),
            r.duration_secs
        ));
        if r.passed {
            s.push_str("/>\n");
        } else {
            s.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                xml(r.detail.lines().next().unwrap_or("failed")),
                xml(&r.detail)
            ));
        }
    }
    s.push_str("  </testsuite>\n</testsuites>\n");
    s
}
