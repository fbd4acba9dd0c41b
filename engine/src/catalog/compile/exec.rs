//! Lowering `[[exec]]` declarations: the command and its `creates`/`unless` guards rendered per
//! host.

use super::Lower;
use super::host_state::HostState;
use super::render::Renderer;
use crate::catalog::{Exec, Resource};
use crate::model::{ExecDecl, notify_target_id};

impl Lower for ExecDecl {
    fn lower(&self, r: &Renderer<'_>, state: &mut HostState<'_>) -> Option<Resource> {
        let x = self;
        let line = x.common.line;
        let command = state.ok(r.command(&x.command, line));
        let (creates, unless) =
            (state.ok(r.opt(&x.creates, line)), state.ok(r.command_opt(&x.unless, line)));
        let notify = x.notify.iter().map(|(n, _)| notify_target_id(n)).collect();
        let (name, refreshonly) = (x.name.clone(), x.refreshonly);
        let (command, creates, unless) = (command?, creates?, unless?);
        let profile = r.profile.name.clone();
        let timeout = x.timeout;
        Some(Resource::Exec(Exec {
            profile,
            name,
            command,
            creates,
            unless,
            refreshonly,
            notify,
            timeout,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::compile;
    use crate::catalog::Resource;

    #[test]
    fn command_and_guards_render_and_a_left_out_exec_is_not_notified() {
        let c = compile(
            "[[exec]]\nname = \"init\"\ncommand = \"init --host {{ host.name }}\"\ncreates = \"/var/lib/{{ host.name }}\"\nunless = \"test -e /x\"\nnotify = [\"exec:db\"]\n\n[[exec]]\nname = \"db\"\ncommand = \"db-sync\"\nwhen = \"host.role == 'db'\"\n",
            "",
        )
        .unwrap();
        let [Resource::Exec(x)] = &c.resources[..] else { panic!("{:?}", c.resources) };
        assert_eq!(x.command, "init --host web01");
        assert_eq!(x.creates.as_deref(), Some("/var/lib/web01"));
        assert_eq!(x.unless.as_deref(), Some("test -e /x"));
        assert!(x.notify.is_empty(), "the db exec is not on this host: {:?}", x.notify);
    }

    #[test]
    fn the_same_exec_in_two_profiles_conflicts() {
        let x = "[[exec]]\nname = \"x\"\ncommand = \"true\"\n";
        let e = super::super::tests::compile_two(x, x).unwrap_err();
        assert!(
            e.first()
                .unwrap()
                .to_string()
                .contains("exec:x is declared by profile 'one' and again")
        );
    }

    /// Values a command interpolates are one shell word each; text attributes (paths, file
    /// content) take them as they are.
    #[test]
    fn commands_quote_what_they_interpolate_and_text_does_not() {
        let c = compile(
            "[params]\ndir = { default = \"/srv/a b\" }\nopts = { default = \"-v -x\" }\n\n[[file]]\npath = \"/etc/app\"\ncontent = \"pw={{ lookup('one::pw') }}\"\nvalidate = \"check --pw={{ lookup('one::pw') }} %\"\n\n[[exec]]\nname = \"init\"\ncommand = \"init {{ params.opts | safe }} --dir {{ params.dir }} --pw {{ lookup('one::pw') }} --n {{ 3 }}\"\ncreates = \"{{ params.dir }}/done\"\nunless = \"test -d {{ params.dir }}\"\n",
            "\"one::pw\" = \"pw$(touch${IFS}/tmp/x)'x\"\n",
        )
        .unwrap();
        let Resource::Exec(x) = &c.resources[1] else { panic!("{:?}", c.resources) };
        assert_eq!(
            x.command,
            "init -v -x --dir '/srv/a b' --pw 'pw$(touch${IFS}/tmp/x)'\"'\"'x' --n 3"
        );
        assert_eq!(x.creates.as_deref(), Some("/srv/a b/done"));
        assert_eq!(x.unless.as_deref(), Some("test -d '/srv/a b'"));
        let f = c.files().next().unwrap();
        assert_eq!(&*f.content, "pw=pw$(touch${IFS}/tmp/x)'x");
        assert_eq!(f.validate.as_deref(), Some("check --pw='pw$(touch${IFS}/tmp/x)'\"'\"'x' %"));
    }
}
