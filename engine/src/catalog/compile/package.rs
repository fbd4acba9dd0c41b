//! Lowering `[[package]]` declarations: name and ensure rendered per host.

use super::Lower;
use super::host_state::HostState;
use super::render::Renderer;
use crate::catalog::{Package, Resource};
use crate::model::PackageDecl;

impl Lower for PackageDecl {
    fn lower(&self, r: &Renderer<'_>, state: &mut HostState<'_>) -> Option<Resource> {
        let p = self;
        let line = p.common.line;
        let (name, ensure) = (state.ok(r.attr(&p.name, line)), state.ok(r.attr(&p.ensure, line)));
        let provider = p.provider.clone();
        Some(Resource::Package(Package {
            profile: r.profile.name.clone(),
            name: name?,
            ensure: ensure?,
            provider,
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
}
