"""The REST API's endpoint modules. Importing this package imports each of them, and
each registers its operations on appliance.web.api.API as it is imported; the app
then calls `API.install(app)`. A new endpoint module is added to this list."""

from appliance.web.endpoints import activity  # noqa: F401  (tenant: an integration's overview and series)
from appliance.web.endpoints import audit  # noqa: F401  (both realms: the audit log)
from appliance.web.endpoints import auth  # noqa: F401  (both realms: sign-in, me, password)
from appliance.web.endpoints import builder  # noqa: F401  (tenant: the builder's discovery and suggestions)
from appliance.web.endpoints import cluster  # noqa: F401  (console: tenants, health)
from appliance.web.endpoints import cluster_admins  # noqa: F401  (console: cluster admins)
from appliance.web.endpoints import connections  # noqa: F401  (tenant: connections to the apps)
from appliance.web.endpoints import hooks  # noqa: F401  (tenant: the apps' webhook deliveries)
from appliance.web.endpoints import integrations  # noqa: F401  (tenant: integrations)
from appliance.web.endpoints import preview  # noqa: F401  (tenant: an integration's next run, made by nothing)
from appliance.web.endpoints import tokens  # noqa: F401  (both realms: API tokens)
from appliance.web.endpoints import users  # noqa: F401  (tenant: users)
