"""Every key of the web application's state and of a request's state, defined once.

Handlers read state only through these typed keys (`request.app[CONFIG]`,
`request[REALM]`), never through strings. App values are set in `create_app`
before the app starts; what can change while it runs (the database pool appearing
once the server answers, the readiness verdict, the tenant directory's contents)
lives inside the object a key holds, because aiohttp freezes the application's
mapping at start-up.

Request keys are set by the middlewares (appliance.web.app lists their order):
- CSP_NONCE: by the security-headers middleware, on every request; the nonce the
  Content-Security-Policy of this response allows for inline script/style;
- REALM: by the host router, on every request except the probes and the metrics
  path (which answer for any Host): which realm (console or one tenant) the Host names;
- PRINCIPAL: by the auth middleware (appliance.auth): who is signed in, or None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from appliance.config import Config
from appliance.keys import MasterKey

if TYPE_CHECKING:  # the holders' modules import this one
    from appliance.auth import Principal
    from appliance.web.app import ControlPool
    from appliance.web.health import Readiness
    from appliance.web.realm import Realm, TenantDirectory

CONFIG = web.AppKey("config", Config)
MASTER_KEY = web.AppKey("master_key", MasterKey)
# The control-login pool holder; its `.pool` is None while the database is down.
DB_POOL = web.AppKey["ControlPool"]("db_pool")
# The cached answer of /-/ready.
READINESS = web.AppKey["Readiness"]("readiness")
# This worker's cache of active tenants (slug -> Tenant), kept current by NOTIFY and polling.
TENANTS = web.AppKey["TenantDirectory"]("tenants")

REALM = web.RequestKey["Realm"]("realm")
PRINCIPAL = web.RequestKey["Principal | None"]("principal")
CSP_NONCE = web.RequestKey("csp_nonce", str)
