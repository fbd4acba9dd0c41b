//! Lowering `[[file]]` declarations: the body (a template, a static file or inline content),
//! path, owner, group, `validate`, `notify` and `secret`.

use super::Lower;
use super::host_state::HostState;
use super::render::Renderer;
use super::render_cache::Rendered;
use crate::catalog::{File, Mode, Resource};
use crate::error;
use crate::model::{FileBody, FileDecl, notify_target_id};

impl Lower for FileDecl {
    fn lower(&self, r: &Renderer<'_>, state: &mut HostState<'_>) -> Option<Resource> {
        let f = self;
        let (profile, line) = (r.profile, f.common.line);
        let content = match &f.body {
            FileBody::Template(t) => {
                r.template(&format!("profiles/{}/templates/{t}", profile.name))
            }
            FileBody::Content(c) => r.attr(c, f.body_line).map(Rendered::new),
            FileBody::Source(s) => {
                let path = format!("profiles/{}/files/{s}", profile.name);
                let bytes = &r.compiler.composition().static_files[&path];
                String::from_utf8(bytes.clone()).map(Rendered::new).map_err(|_| {
                    error::invalid(format!("{path} is not UTF-8 text"))
                        .at_file(&profile.path, Some(f.body_line))
                })
            }
        };
        // Every attribute is rendered before giving up, so each of its errors is reported.
        let (path, content) = (state.ok(r.path(&f.path, line)), state.ok(content));
        let (owner, group) = (state.ok(r.opt(&f.owner, line)), state.ok(r.opt(&f.group, line)));
        let validate = state.ok(r.command_opt(&f.validate, line));
        let content = content?;
        Some(Resource::File(File {
            profile: profile.name.clone(),
            path: path?,
            sha256: content.sha256,
            content: content.text,
            owner: owner?,
            group: group?,
            mode: Mode(f.mode),
            validate: validate?,
            notify: f.notify.iter().map(|(n, _)| notify_target_id(n)).collect(),
            secret: f.secret,
            timeout: f.timeout,
            links: f.links,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile, compile_with};
    use crate::catalog::Resource;

    fn file(c: &crate::catalog::Catalog) -> &crate::catalog::File {
        c.files().next().expect("a file")
    }

    #[test]
    fn every_body_kind_renders_with_its_attributes() {
        let c = compile(
            "[[file]]\npath = \"/etc/{{ host.name }}.conf\"\ncontent = \"name={{ host.name }}\\n\"\nowner = \"app\"\nmode = \"0640\"\nvalidate = \"check -f % --host {{ host.name }}\"\nnotify = [\"app\", \"exec:reload\"]\nsecret = true\n\n[[exec]]\nname = \"reload\"\ncommand = \"true\"\nrefreshonly = true\n\n[[service]]\nname = \"app\"\nstart = \"true\"\nstatus = \"true\"\n",
            "",
        )
        .unwrap();
        let f = file(&c);
        assert_eq!((f.path.as_str(), &*f.content), ("/etc/web01.conf", "name=web01\n"));
        assert_eq!((f.owner.as_deref(), f.group.as_deref(), f.mode.0), (Some("app"), None, 0o640));
        assert_eq!(f.validate.as_deref(), Some("check -f % --host web01"));
        assert_eq!(f.notify, ["service:app", "exec:reload"]);
        assert!(f.secret);
        assert_eq!(f.sha256, crate::digest::sha256_hex(b"name=web01\n"));

        let files = [
            ("profiles/one/templates/t.j2", "role {{ host.role }}\n".as_bytes()),
            ("profiles/one/files/static.txt", b"static\n"),
        ];
        let c = compile_with(
            "[[file]]\npath = \"/a\"\ntemplate = \"t.j2\"\n\n[[file]]\npath = \"/b\"\nsource = \"static.txt\"\n",
            "",
            &files,
        )
        .unwrap();
        let contents: Vec<&str> = c.files().map(|f| &*f.content).collect();
        assert_eq!(contents, ["role web\n", "static\n"]);
    }

    #[test]
    fn a_static_file_that_is_not_text_is_refused_at_its_line() {
        let files = [("profiles/one/files/blob", &[0xffu8, 0xfe][..])];
        let e =
            compile_with("\n[[file]]\npath = \"/b\"\nsource = \"blob\"\n", "", &files).unwrap_err();
        assert_eq!(
            e.first().unwrap().to_string(),
            "profiles/one/profile.toml:4: profiles/one/files/blob is not UTF-8 text"
        );
    }

    #[test]
    fn a_template_error_names_the_template_and_the_line() {
        let files = [("profiles/one/templates/t.j2", "ok\n{{ nope }}\n".as_bytes())];
        let e =
            compile_with("[[file]]\npath = \"/a\"\ntemplate = \"t.j2\"\n", "", &files).unwrap_err();
        let e = e.first().unwrap().to_string();
        assert!(
            e.starts_with("profiles/one/templates/t.j2:2: template error: undefined value"),
            "{e}"
        );
    }

    #[test]
    fn two_files_on_one_path_are_refused() {
        let e = compile("[[file]]\npath = \"/a\"\ncontent = \"1\"\n\n[[file]]\npath = \"/a\"\ncontent = \"2\"\n", "")
            .unwrap_err();
        let e = e.first().unwrap().to_string();
        assert!(e.contains("path /a is managed twice by profile 'one' (also at line 1)"), "{e}");
        assert!(!matches!(
            compile("[[file]]\npath = \"/a\"\ncontent = \"1\"\n", "").unwrap().resources[0],
            Resource::Exec(_)
        ));
    }
}
