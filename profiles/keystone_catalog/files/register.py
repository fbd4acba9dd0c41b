#!/usr/bin/python3
# Managed by stackdeploy (profile keystone_catalog). Local changes will be overwritten.
#
# Makes keystone's service catalog what CATALOG.json says: the service project, one user per
# service (password set every time), the role in that project, and each service with its
# public, internal and admin endpoint in the region. Credentials of the cloud administrator
# come from the environment (admin-openrc). Prints what it changed.
import json
import os
import sys
import time

from keystoneauth1 import exceptions, session
from keystoneauth1.identity import v3
from keystoneclient.v3 import client


def main(path):
    with open(path) as f:
        want = json.load(f)
    auth = v3.Password(
        auth_url=os.environ["OS_AUTH_URL"],
        username=os.environ["OS_USERNAME"],
        password=os.environ["OS_PASSWORD"],
        project_name=os.environ["OS_PROJECT_NAME"],
        user_domain_name=os.environ["OS_USER_DOMAIN_NAME"],
        project_domain_name=os.environ["OS_PROJECT_DOMAIN_NAME"],
    )
    sess = session.Session(auth=auth)
    # Through haproxy, which takes a just-started keystone into its pool only after a few
    # health checks: until then it answers 503.
    deadline = time.monotonic() + 120
    while True:
        try:
            sess.get_token()
            break
        except (exceptions.ServiceUnavailable, exceptions.BadGateway, exceptions.ConnectFailure):
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    ks = client.Client(session=sess, interface="public")

    def one(found):
        return found[0] if found else None

    project = one(ks.projects.list(name=want["project"], domain="default"))
    if project is None:
        project = ks.projects.create(want["project"], "default", description="Service Project")
        print("created project", want["project"])
    role = one(ks.roles.list(name=want["role"]))
    if role is None:
        role = ks.roles.create(want["role"])
        print("created role", want["role"])
    for name, password in sorted(want["users"].items()):
        user = one(ks.users.list(name=name, domain="default"))
        if user is None:
            user = ks.users.create(name, domain="default", password=password, project=project)
            print("created user", name)
        else:
            ks.users.update(user, password=password)
        ks.roles.grant(role, user=user, project=project)
    for kind, svc in sorted(want["services"].items()):
        service = one(ks.services.list(type=kind))
        if service is None:
            service = ks.services.create(svc["name"], type=kind)
            print("created service", svc["name"], kind)
        have = {e.interface: e for e in ks.endpoints.list(service=service, region=want["region"])}
        for interface in ("public", "internal", "admin"):
            e = have.get(interface)
            if e is None:
                ks.endpoints.create(service, svc["url"], interface=interface, region=want["region"])
                print("created", interface, "endpoint", svc["url"])
            elif e.url != svc["url"]:
                ks.endpoints.update(e, url=svc["url"])
                print("moved", interface, "endpoint of", kind, "to", svc["url"])


if __name__ == "__main__":
    main(sys.argv[1])
