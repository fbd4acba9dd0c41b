//! Lowering `[[directory]]` declarations, parents before children.

use super::Lower;
use super::host_state::HostState;
use super::render::Renderer;
use crate::catalog::{Directory, Mode, Resource};
use crate::model::DirectoryDecl;

/// The profile's directories, parents first whatever order it lists them in: `mkdir` of a
/// child must not create its parent with the wrong owner.
pub(super) fn in_order(decls: &[DirectoryDecl]) -> Vec<&DirectoryDecl> {
    let mut dirs: Vec<_> = decls.iter().collect();
    dirs.sort_by_key(|d| d.path.matches('/').count());
    dirs
}

impl Lower for DirectoryDecl {
    fn lower(&self, r: &Renderer<'_>, state: &mut HostState<'_>) -> Option<Resource> {
        let d = self;
        let line = d.common.line;
        let path = state.ok(r.path(&d.path, line));
        let (owner, group) = (state.ok(r.opt(&d.owner, line)), state.ok(r.opt(&d.group, line)));
        let (path, owner, group, mode) = (path?, owner?, group?, Mode(d.mode));
        Some(Resource::Directory(Directory {
            profile: r.profile.name.clone(),
            path,
            owner,
            group,
            mode,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile, resources};

    #[test]
    fn parents_come_first_and_attributes_render() {
        let c = compile(
            "[[directory]]\npath = \"/srv/{{ host.name }}/data\"\n\n[[directory]]\npath = \"/srv/{{ host.name }}\"\nowner = \"{{ host.role }}\"\nmode = \"0750\"\n",
            "",
        )
        .unwrap();
        assert_eq!(
            resources(&c),
            [
                "directory:/srv/web01 web:(unmanaged) 0750",
                "directory:/srv/web01/data (unmanaged):(unmanaged) 0755"
            ]
        );
    }

    #[test]
    fn a_path_that_is_not_absolute_and_normalised_is_refused_with_its_line() {
        for (path, why) in [
            ("srv/x", "is not absolute"),
            ("/srv/../etc", "is not normalised"),
            ("/srv//x", "is not normalised"),
            ("/srv/", "ends with /"),
            ("/srv/back\\\\slash", "contains a backslash"),
            ("/srv/x ", "beginning or ending with white space"),
            ("/srv/ x/y", "beginning or ending with white space"),
            ("/srv/a\\nb", "contains control characters"),
        ] {
            let e = compile(&format!("\n[[directory]]\npath = \"{path}\"\n"), "").unwrap_err();
            let e = e.first().unwrap().to_string();
            assert!(e.starts_with("profiles/one/profile.toml:2: path \""), "{e}");
            assert!(e.contains(why), "{path}: {e}");
        }
    }
}
