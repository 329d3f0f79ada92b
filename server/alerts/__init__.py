"""Alerting: Web Push to people's devices and messages to sites' work-chat robots.

``vapid`` holds the server's keys, ``texts`` what a push says, ``robots``
what a WeCom or DingTalk robot is sent (and what its answer means),
``devices`` the subscriptions, ``queue`` who is told what (a
``PushDelivery`` row per device or robot, written before anything is sent),
and ``deliverer`` the worker that sends the rows. Admins write a site's
robots through :mod:`server.alert_channels`.
"""
