//! Lowering `[[patch]]` declarations: the path (a template) and the patch file's text, which
//! the composition already checked parses.

use std::sync::Arc;

use super::Lower;
use super::host_state::HostState;
use super::render::Renderer;
use crate::catalog::{Patch, Resource};
use crate::digest::sha256_hex;
use crate::model::{PatchDecl, notify_target_id};

impl Lower for PatchDecl {
    fn lower(&self, r: &Renderer<'_>, state: &mut HostState<'_>) -> Option<Resource> {
        let path = state.ok(r.path(&self.path, self.common.line))?;
        let source = format!("profiles/{}/patches/{}", r.profile.name, self.source);
        let bytes = &r.compiler.composition().static_files[&source];
        // UTF-8, checked with the parse when the composition was loaded.
        let text: Arc<str> = String::from_utf8_lossy(bytes).into();
        Some(Resource::Patch(Patch {
            profile: r.profile.name.clone(),
            path,
            source,
            sha256: sha256_hex(text.as_bytes()),
            patch: text,
            notify: self.notify.iter().map(|(n, _)| notify_target_id(n)).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::compile_with;
    use crate::catalog::Resource;

    const PATCH: &[u8] = b"--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-a\n+b\n";

    #[test]
    fn a_patch_names_its_file_and_refreshes_what_it_notifies() {
        let c = compile_with(
            "[[patch]]\npath = \"/usr/lib/{{ host.role }}/m.py\"\nsource = \"fix.patch\"\nnotify = [\"app\"]\n\n[[service]]\nname = \"app\"\nstart = \"true\"\nstatus = \"true\"\n",
            "",
            &[("profiles/one/patches/fix.patch", PATCH)],
        )
        .unwrap();
        let Resource::Patch(p) = &c.resources[0] else { panic!("{:?}", c.resources) };
        assert_eq!(p.path, "/usr/lib/web/m.py");
        assert_eq!(p.source, "profiles/one/patches/fix.patch");
        assert_eq!(p.patch.as_bytes(), PATCH);
        assert_eq!(p.notify, ["service:app"]);
    }

    #[test]
    fn a_missing_or_malformed_patch_file_is_refused_where_it_is() {
        let decl = "\n[[patch]]\npath = \"/m.py\"\nsource = \"fix.patch\"\n";
        let e = compile_with(decl, "", &[]).unwrap_err();
        assert_eq!(
            e.first().unwrap().to_string(),
            "profiles/one/profile.toml:4: patch /m.py: profiles/one/patches/fix.patch does not exist"
        );
        let bad = b"--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n a\n*b\n";
        let e = compile_with(decl, "", &[("profiles/one/patches/fix.patch", bad)]).unwrap_err();
        let e = e.first().unwrap().to_string();
        assert!(e.starts_with("profiles/one/patches/fix.patch:5: hunk \"@@ -1,2 +1,2 @@\""), "{e}");
    }

    #[test]
    fn a_file_and_a_patch_of_one_path_are_refused() {
        let e = compile_with(
            "[[file]]\npath = \"/m.py\"\ncontent = \"a\\n\"\n\n[[patch]]\npath = \"/m.py\"\nsource = \"fix.patch\"\n",
            "",
            &[("profiles/one/patches/fix.patch", PATCH)],
        )
        .unwrap_err();
        let e = e.first().unwrap().to_string();
        assert!(e.contains("path /m.py is managed twice by profile 'one'"), "{e}");
    }
}
