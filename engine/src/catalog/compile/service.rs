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
        let commands = [&s.start, &s.stop, &s.status, &s.restart, &s.reload, &s.ready]
            .map(|c| state.ok(r.command_opt(c, line)));
        let log = state.ok(s.log.as_deref().map(|l| r.path(l, line)).transpose());
        let (
            Some(unit),
            Some(log),
            [Some(start), Some(stop), Some(status), Some(restart), Some(reload), Some(ready)],
        ) = (unit, log, commands)
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
            ready,
            ready_timeout: s.ready_timeout,
            log,
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
    fn the_ready_check_quotes_values_and_the_log_must_be_absolute() {
        let c = compile(
            "[[service]]\nname = \"app\"\nstart = \"app\"\nready = \"curl -sf http://{{ host.name }}:80/ -H {{ 'a b' }}\"\nready_timeout = 90\nlog = \"/var/log/{{ host.name }}.log\"\n",
            "",
        )
        .unwrap();
        let Resource::Service(s) = &c.resources[0] else { panic!("{:?}", c.resources) };
        assert_eq!(s.ready.as_deref(), Some("curl -sf http://web01:80/ -H 'a b'"));
        assert_eq!((s.ready_timeout, s.log.as_deref()), (Some(90), Some("/var/log/web01.log")));
        let e = compile("[[service]]\nname = \"app\"\nstart = \"app\"\nlog = \"app.log\"\n", "")
            .unwrap_err()
            .to_string();
        assert!(e.contains("profile.toml:1:") && e.contains("is not absolute"), "{e}");
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
