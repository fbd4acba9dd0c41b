//! Lowering `[[service]]` declarations: the provider's commands rendered per host.

use super::Lower;
use super::host_state::HostState;
use super::render::Renderer;
use crate::catalog::{Resource, Service};
use crate::model::{ServiceDecl, names};

impl Lower for ServiceDecl {
    fn lower(&self, r: &Renderer<'_>, state: &mut HostState<'_>) -> Option<Resource> {
        let s = self;
        let line = s.common.line;
        let unit_name = |u: &str| names::resource("unit", u);
        let unit = state.ok(s.unit.as_deref().map(|u| r.checked(u, line, unit_name)).transpose());
        let commands = [&s.start, &s.stop, &s.status, &s.restart, &s.reload]
            .map(|c| state.ok(r.command_opt(c, line)));
        let (Some(unit), [Some(start), Some(stop), Some(status), Some(restart), Some(reload)]) =
            (unit, commands)
        else {
            return None;
        };
        Some(Resource::Service(Service {
            profile: r.profile.name.clone(),
            name: s.name.clone(),
            ensure: s.ensure.clone(),
            enable: s.enable,
            provider: s.provider.clone(),
            unit,
            start,
            stop,
            status,
            restart,
            reload,
            timeout: s.timeout,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::compile;
    use crate::catalog::Resource;

    #[test]
    fn commands_render_and_a_left_out_service_is_not_notified() {
        let c = compile(
            "[[file]]\npath = \"/etc/app\"\ncontent = \"x\"\nnotify = [\"app\", \"other\"]\n\n[[service]]\nname = \"app\"\nstart = \"app --name {{ host.name }}\"\nstatus = \"pgrep app\"\n\n[[service]]\nname = \"other\"\nstart = \"other\"\nwhen = \"false\"\n",
            "",
        )
        .unwrap();
        let Resource::Service(s) = &c.resources[1] else { panic!("{:?}", c.resources) };
        assert_eq!(s.start.as_deref(), Some("app --name web01"));
        assert_eq!((s.ensure.as_str(), s.provider.as_str(), s.enable), ("running", "auto", true));
        assert_eq!(c.files().next().unwrap().notify, ["service:app"]);
        assert_eq!(c.resources.len(), 2);
    }

    #[test]
    fn an_undefined_variable_in_a_command_names_the_line_and_the_expression() {
        let e = compile("\n\n[[service]]\nname = \"app\"\nstart = \"run {{ host.nope }}\"\n", "")
            .unwrap_err();
        let e = e.first().unwrap().to_string();
        assert!(
            e.starts_with("profiles/one/profile.toml:3: template error: undefined value"),
            "{e}"
        );
        assert!(e.contains("host.nope"), "{e}");
    }
}
