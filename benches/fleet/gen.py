"""Generates the fleet benchmark's two projects from one set of values.

    python3 gen.py REPO ANSIBLE_DIR

REPO gets a stackdeploy composition (pipeline.toml, one role, one profile with about 30
templated files, hieradata) with two environments of the same 50 host names (FLEET_HOSTS=N for N): `sd` on
127.90.0.1-50 and `ans` on 127.91.0.1-50. ANSIBLE_DIR gets the equivalent ansible-core project
for the `ans` hosts (ansible.cfg, inventory.json, playbook.yml), whose per-host variables are
the hiera values resolved here the way stackdeploy resolves them. The templates under
templates/ are shared: they stick to the subset of Jinja that minijinja and Jinja2 render
identically (no printed booleans, lists or floats, no filters with differing output), and
to the context names both tools can provide (`params`, `facts`, `host`; not `environment` or
`hosts`, which are reserved play keywords in ansible).
"""

import json
import os
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOSTS = int(os.environ.get("FLEET_HOSTS", 50))  # at most 254: one /24 per environment
PORT = 2222
ENVS = {"sd": "127.90.0", "ans": "127.91.0"}  # never 127.0/77/78/79: tests and user labs
ROLE = "app"
PROFILE = "bench"

# Gathered facts the templates use, as ansible names them (gather_subset min). stackdeploy's
# probe gathers the same under its own names.
ANSIBLE_FACTS = {
    "hostname": "{{ ansible_facts['hostname'] }}",
    "os_id": "{{ ansible_facts['distribution'] | lower }}",
    "os_version": "{{ ansible_facts['distribution_major_version'] }}",
    "os_family": "{{ ansible_facts['os_family'] | lower }}",
    "kernel": "{{ ansible_facts['kernel'] }}",
}

# path -> (template, mode); directories are created first.
FILES = {}
for directory, names in {
    "app": ["app.conf", "logging.conf", "workers.conf", "features.conf"],
    "db": ["database.conf", "pool.conf", "replicas.conf"],
    "cache": ["memcached.conf", "redis.conf", "ttl.conf"],
    "web": ["vhost.conf", "upstreams.conf", "tls.conf"],
    "queue": ["broker.conf", "queues.conf", "policies.conf"],
    "monitor": ["exporters.yml", "alerts.yml", "scrape.yml"],
    "cluster": ["members.conf", "identity.conf", "zones.conf"],
    "security": ["sshd_bench.conf", "sudoers_bench", "firewall.rules"],
    "ntp": ["chrony.conf", "sources.conf"],
    "env": ["motd", "environment", "profile.sh"],
}.items():
    for name in names:
        mode = {"database.conf": "0640", "sudoers_bench": "0440", "firewall.rules": "0600"}
        FILES[f"/etc/bench/{directory}/{name}"] = (f"{name}.j2", mode.get(name, "0644"))
# FLEET_FILES=N keeps the first N files (fewer than the SPEC's ~30 to bisect a size problem).
FILES = dict(list(FILES.items())[: int(os.environ.get("FLEET_FILES", len(FILES)))])
DIRECTORIES = ["/etc/bench"] + sorted({p.rsplit("/", 1)[0] for p in FILES})

# hieradata/common.toml: the profile's parameters (`bench::NAME`), some interpolated per host.
COMMON = {
    "domain": "fleet.example.net",
    "organisation": "Example Cloud",
    "cluster_name": "fleet",
    "fqdn": "%{host.name}.%{lookup('bench::domain')}",
    "listen": "%{host.address}",
    "log_dir": "/var/log/%{lookup('bench::cluster_name')}",
    "log_level": "info",
    "loggers": {"db": "warning", "http": "info", "queue": "info", "scheduler": "debug"},
    "app_port": 8080,
    "workers": 4,
    "zone": "z1",
    "zones": ["z1", "z2", "z3"],
    "features": {"audit": True, "compression": True, "tracing": True, "websockets": False},
    "db": {"host": "db.fleet.example.net", "port": 5432, "name": "fleet", "user": "fleet",
           "pool_min": 2, "pool_max": 8, "connect_timeout": 5},
    "db_replicas": [{"host": f"db-replica{i}.fleet.example.net", "port": 5432,
                     "zone": f"z{i}", "weight": 10 * i} for i in (1, 2, 3)],
    "cache": {"memcached_port": 11211, "redis_port": 6379, "memory_mb": 256,
              "maxmemory_policy": "allkeys-lru", "databases": 4,
              "ttls": {"session": 1800, "page": 300, "token": 3600, "negative": 30}},
    "upstreams": [{"name": "api", "path": "/api/", "port": 9000, "timeout": 30, "size": 12},
                  {"name": "auth", "path": "/auth/", "port": 9100, "timeout": 10, "size": 6},
                  {"name": "static", "path": "/static/", "port": 9200, "timeout": 5, "size": 3}],
    "headers": {"Strict-Transport-Security": "max-age=31536000",
                "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                "Referrer-Policy": "same-origin"},
    "tls": {"protocols": ["TLSv1.2", "TLSv1.3"],
            "ciphers": ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                        "ECDHE-ECDSA-CHACHA20-POLY1305"],
            "session_timeout": "1d", "prefer_server_ciphers": False},
    "broker": {"user": "fleet", "port": 5672, "vhost": "/fleet", "heartbeat": 60,
               "prefetch_per_worker": 10},
    "queues": [{"name": n, "durable": d, "ttl": t} for n, d, t in
               [("jobs", True, 3600), ("events", True, 600), ("notifications", False, 60),
                ("audit", True, 86400)]],
    "policies": [{"pattern": "^jobs", "apply_to": "queues", "max_length": 100000},
                 {"pattern": "^events", "apply_to": "queues", "max_length": 50000},
                 {"pattern": ".*", "apply_to": "all", "max_length": 1000000}],
    "exporters": [{"name": "node", "port": 9100}, {"name": "app", "port": 9400},
                  {"name": "redis", "port": 9121}],
    "scrape_interval": 30,
    "alerts": [{"name": n, "expr": e, "duration": d, "severity": s} for n, e, d, s in
               [("HostDown", "up == 0", "2m", "critical"),
                ("HighLoad", "node_load5 > 8", "10m", "warning"),
                ("DiskFull", "node_filesystem_avail_bytes < 1e9", "5m", "critical"),
                ("QueueBacklog", "queue_depth > 10000", "15m", "warning")]],
    "ssh": {"permit_root_login": "prohibit-password", "password_authentication": False,
            "max_sessions": 10, "client_alive_interval": 300, "allow_groups": ["adm", "ops"]},
    "admins": ["mallory", "alice", "bob", "carol"],
    "firewall_allow": [{"name": "http", "proto": "tcp", "port": 80,
                        "sources": ["10.0.0.0/8", "192.168.0.0/16"]},
                       {"name": "metrics", "proto": "tcp", "port": 9100,
                        "sources": ["10.20.0.0/16"]},
                       {"name": "ntp", "proto": "udp", "port": 123, "sources": ["10.0.0.0/8"]}],
    "ntp_servers": ["ntp1.fleet.example.net", "ntp2.fleet.example.net"],
    "ntp_pools": ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"],
    "motd_lines": ["Authorised use only.", "Changes go through the deployment pipeline."],
    "env_vars": {"LANG": "C.UTF-8", "TZ": "UTC", "FLEET_CLUSTER": "fleet",
                 "FLEET_CONFIG": "/etc/bench/app/app.conf"},
    "history_size": 5000,
    "aliases": {"ll": "ls -l", "logs": "cd /var/log/fleet", "status": "systemctl status"},
}


def hosts(net):
    """(name, address, node data, static facts) per host; the same names in every env."""
    for i in range(1, HOSTS + 1):
        node = {"zone": f"z{(i - 1) % 3 + 1}"}
        if i % 5 == 0:
            node["workers"] = 8
        yield f"node{i:02d}", f"{net}.{i}", node, {"rack": f"r{(i - 1) // 10 + 1}"}


def members(net):
    return [{"name": n, "address": a, "zone": d["zone"]} for n, a, d, _ in hosts(net)]


def resolve(value, host, data):
    """What stackdeploy's hiera makes of a value for a host (the subset used here)."""
    if isinstance(value, str):
        def sub(m):
            expr = m.group(1)
            if expr.startswith("host."):
                return str(host[expr[5:]])
            inner = re.fullmatch(r"lookup\('bench::(\w+)'\)", expr)
            return str(resolve(data[inner.group(1)], host, data))
        return re.sub(r"%\{([^}]*)\}", sub, value)
    return value


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, str)):
        return json.dumps(v)  # a JSON string is a valid TOML basic string (ASCII here)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def toml_data(data):
    return "".join(f'"{PROFILE}::{k}" = {toml_value(v)}\n' for k, v in data.items())


def param_type(v):
    for t, name in [(bool, "boolean"), (int, "integer"), (str, "string"), (list, "array"),
                    (dict, "hash")]:
        if isinstance(v, t):
            return name


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def composition(repo):
    envs = ""
    for env, net in ENVS.items():
        envs += f"""
[environments.{env}]
description = "fleet benchmark, {HOSTS} lab hosts on {net}.0/24"

[environments.{env}.ssh]
user = "root"
port = {PORT}
identity = ".stackdeploy/lab/{env}/id_ed25519"
known_hosts = ".stackdeploy/lab/{env}/known_hosts"

[environments.{env}.rollout]
order = ["{ROLE}"]
batches = ["100%"]
failure_budget = 0

[environments.{env}.hosts]
"""
        for name, address, _, facts in hosts(net):
            envs += f'{name} = {{ address = "{address}", role = "{ROLE}", facts = {toml_value(facts)} }}\n'
        write(repo / f"hieradata/environments/{env}.toml", toml_data({"members": members(net)}))
        for name, _, node, _ in hosts(net):
            write(repo / f"hieradata/nodes/{env}/{name}.toml", toml_data(node))
    write(repo / "pipeline.toml", f"""[project]
name = "fleet-bench"

[hiera]
hierarchy = ["nodes/%{{environment}}/%{{host.name}}", "environments/%{{environment}}", "common"]
{envs}""")
    write(repo / f"roles/{ROLE}.toml", f'description = "fleet benchmark"\nprofiles = ["{PROFILE}"]\n')
    params = {**COMMON, "members": []}
    profile = f'description = "about 30 config files from hieradata, facts and host data"\n\n[params]\n'
    profile += "".join(f'{k} = {{ type = "{param_type(v)}" }}\n' for k, v in params.items())
    for d in DIRECTORIES:
        profile += f'\n[[directory]]\npath = "{d}"\nmode = "0755"\n'
    for path, (template, mode) in FILES.items():
        profile += f'\n[[file]]\npath = "{path}"\ntemplate = "{template}"\nmode = "{mode}"\n'
    write(repo / f"profiles/{PROFILE}/profile.toml", profile)
    shutil.copytree(HERE / "templates", repo / f"profiles/{PROFILE}/templates")
    write(repo / "hieradata/common.toml", toml_data(COMMON))


def ansible(project, repo, env="ans"):
    lab = repo / ".stackdeploy/lab" / env
    inventory = {}
    for name, address, node, facts in hosts(ENVS[env]):
        host = {"name": name, "role": ROLE, "address": address, "port": PORT, "environment": env}
        data = {**COMMON, "members": members(ENVS[env]), **node}  # hiera: node > env > common
        inventory[name] = {
            "ansible_host": address,
            "ansible_port": PORT,
            "host": host,
            "params": {k: resolve(v, host, data) for k, v in data.items()},
            "facts": {**ANSIBLE_FACTS, **facts},
        }
    write(project / "inventory.json", json.dumps({"all": {"hosts": inventory}}, indent=1))
    shutil.copytree(HERE / "templates", project / "templates")
    files = [{"path": p, "template": t, "mode": m} for p, (t, m) in FILES.items()]
    write(project / "playbook.yml", f"""- name: fleet benchmark
  hosts: all
  gather_facts: true
  gather_subset: ["!all"]  # the minimal set: what stackdeploy's probe gathers, and no more
  vars:
    bench_directories: {json.dumps(DIRECTORIES)}
    bench_files: {json.dumps(files)}
  tasks:
    - name: directories
      ansible.builtin.file:
        path: "{{{{ item }}}}"
        state: directory
        owner: root
        group: root
        mode: "0755"
      loop: "{{{{ bench_directories }}}}"
    - name: config files
      ansible.builtin.template:
        src: "templates/{{{{ item.template }}}}"
        dest: "{{{{ item.path }}}}"
        owner: root
        group: root
        mode: "{{{{ item.mode }}}}"
        lstrip_blocks: true  # stackdeploy renders with trim_blocks and lstrip_blocks
      loop: "{{{{ bench_files }}}}"
""")
    write(project / "ansible.cfg", f"""[defaults]
inventory = {project}/inventory.json
forks = 50
remote_user = root
private_key_file = {lab}/id_ed25519
host_key_checking = True
interpreter_python = /usr/bin/python3
retry_files_enabled = False
local_tmp = {project}/tmp
timeout = 30

[ssh_connection]
pipelining = True
# ansible's default ssh_args (compression, ControlMaster, ControlPersist 60 s), plus the
# lab's known_hosts, strictly checked, and no user ssh config.
ssh_args = -F /dev/null -C -o ControlMaster=auto -o ControlPersist=60s -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile={lab}/known_hosts -o GlobalKnownHostsFile=/dev/null
control_path_dir = {project}/cp
""")


if __name__ == "__main__":
    repo, project = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    composition(repo)
    ansible(project, repo)
