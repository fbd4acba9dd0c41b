//! "Did you mean …?" for a name the user typed (a host, role, profile, stage, environment)
//! that names nothing: the closest known name, when one is close enough to be a typo.
//!
//! Only the wording lives here; each caller keeps its own message, location and error kind.

/// From this Jaro-Winkler similarity on, a long name is a typo of another (a shared prefix
/// counts: `controler01`, `compute1`).
const SIMILAR: f64 = 0.8;

/// The known name closest to `name`, if it is close enough to be what was meant: a few edits
/// away (a swapped pair is one edit, which Jaro alone misses in short names: `wbe`, `web`), or
/// similar by Jaro-Winkler. The fewest edits win, then the higher similarity.
pub(crate) fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = name.to_lowercase();
    known
        .into_iter()
        .filter(|k| *k != name)
        .filter_map(|k| {
            let k_lower = k.to_lowercase();
            let edits = strsim::osa_distance(&wanted, &k_lower);
            let similar = strsim::jaro_winkler(&wanted, &k_lower);
            let few = edits <= (wanted.chars().count().min(k_lower.chars().count()) / 4).max(1);
            (few || similar >= SIMILAR).then_some((edits, similar, k))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, k)| k)
}

/// `; did you mean 'x'?` to append to a message, or nothing.
pub(crate) fn hint<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, known).map(|k| format!("; did you mean '{k}'?")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_closest_name_and_unrelated_names_none() {
        let hosts = ["db01", "controller01", "compute01", "compute02"];
        assert_eq!(closest("contoller01", hosts), Some("controller01"));
        assert_eq!(closest("Compute02", hosts), Some("compute02"), "case does not matter");
        assert_eq!(closest("comptue02", hosts), Some("compute02"));
        assert_eq!(closest("haproxy", hosts), None);
        assert_eq!(closest("wbe", ["db", "web"]), Some("web"), "a swapped pair in a short name");
        assert_eq!(closest("dbb", ["db", "web"]), Some("db"));
        assert_eq!(closest("api", ["db", "web"]), None);
        assert_eq!(closest("db01", hosts), None, "an exact name is not a suggestion");
        assert_eq!(hint("productoin", ["staging", "production"]), "; did you mean 'production'?");
        assert_eq!(hint("x", ["staging"]), "");
    }
}
