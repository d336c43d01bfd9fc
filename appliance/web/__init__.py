"""The web side of the appliance: the aiohttp application each web worker serves.

`app.create_app(config, key)` builds it; `keys` names its state; `health` answers
the load balancer's probes; `redirect` is the plain-HTTP listener's app.
"""
