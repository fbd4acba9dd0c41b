//! Lowering `[[package]]` declarations: name and ensure rendered per host.

use super::Lower;
use super::host_state::HostState;
use super::render::Renderer;
use crate::catalog::{Package, Resource};
use crate::model::{PackageDecl, names};

impl Lower for PackageDecl {
    fn lower(&self, r: &Renderer<'_>, state: &mut HostState<'_>) -> Option<Resource> {
        let p = self;
        let line = p.common.line;
        // The rendered name and version reach apt or dnf as words: nothing that could be read
        // as an option passes.
        let name = state.ok(r.checked(&p.name, line, names::package));
        let ensure = state.ok(r.checked(&p.ensure, line, names::package_ensure));
        let provider = p.provider.clone();
        Some(Resource::Package(Package {
            profile: r.profile.name.clone(),
            name: name?,
            ensure: ensure?,
            provider,
            timeout: p.timeout,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile, resources};

    #[test]
    fn name_and_ensure_are_rendered_per_host() {
        let catalog = compile(
            "[params]\nversion = { default = \"1.2\" }\n\n[[package]]\nname = \"app-{{ host.role }}\"\nensure = \"{{ params.version }}\"\n",
            "",
        )
        .unwrap();
        assert_eq!(resources(&catalog), ["package:app-web ensure=1.2"]);
    }

    #[test]
    fn the_same_package_in_two_profiles_is_shared_but_a_different_ensure_conflicts() {
        let shared = "[[package]]\nname = \"curl\"\n";
        let c = super::super::tests::compile_two(shared, shared).unwrap();
        assert_eq!(resources(&c), ["package:curl ensure=present"]);
        let e = super::super::tests::compile_two(
            shared,
            "[[package]]\nname = \"curl\"\nensure = \"absent\"\n",
        )
        .unwrap_err();
        let e = e.first().unwrap().to_string();
        assert!(e.starts_with("profiles/two/profile.toml:1: package:curl is declared by profile 'one' and again by profile 'two'"), "{e}");
    }

    #[test]
    fn when_false_leaves_it_out() {
        let c = compile("[[package]]\nname = \"x\"\nwhen = \"host.role == 'db'\"\n", "").unwrap();
        assert!(resources(&c).is_empty());
    }

    /// A name that a package manager would read as an option is refused where it is declared,
    /// also when a template renders it (it used to reach apt-get and run a dpkg hook).
    #[test]
    fn names_and_versions_that_could_be_options_are_refused_at_their_line() {
        for (decl, data, why) in [
            ("name = \"-oDPkg::Pre-Invoke::=touch /tmp/x\"", "", "is not a package name"),
            (
                "name = \"{{ lookup('one::pkg') }}\"",
                "\"one::pkg\" = \"--force-yes\"\n",
                "is not a package name",
            ),
            ("name = \"curl\"\nensure = \"1.0 -oAPT::X=1\"", "", "is neither present"),
        ] {
            let e = compile(&format!("\n[[package]]\n{decl}\n"), data).unwrap_err();
            let e = e.first().unwrap().to_string();
            assert!(e.starts_with("profiles/one/profile.toml:2: "), "{e}");
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn service_and_exec_names_are_words() {
        let e = compile("[[service]]\nname = \"--now x\"\n", "").unwrap_err();
        assert!(e.first().unwrap().to_string().contains("service name \"--now x\" may hold only"));
        let e = compile("[[exec]]\nname = \"a\\tb\"\ncommand = \"true\"\n", "").unwrap_err();
        assert!(e.first().unwrap().to_string().contains("exec name"), "{e:?}");
    }
}
