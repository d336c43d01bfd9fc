"""Every key of the web application's state, defined once.

Handlers read state only through these typed keys (`request.app[CONFIG]`), never
through strings. Values are set in `create_app` before the app starts; what can
change while it runs (the database pool appearing once the server answers, the
readiness verdict) lives inside the object a key holds, because aiohttp freezes
the application's mapping at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from appliance.config import Config
from appliance.keys import MasterKey

if TYPE_CHECKING:  # the holders' modules import this one
    from appliance.web.app import ControlPool
    from appliance.web.health import Readiness

CONFIG = web.AppKey("config", Config)
MASTER_KEY = web.AppKey("master_key", MasterKey)
# The control-login pool holder; its `.pool` is None while the database is down.
DB_POOL = web.AppKey["ControlPool"]("db_pool")
# The cached answer of /-/ready.
READINESS = web.AppKey["Readiness"]("readiness")
