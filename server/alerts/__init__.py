"""Alerting: Web Push to people's devices and messages to sites' work-chat robots.

What is said and to whom: ``vapid`` holds the server's keys, ``texts`` what
a push says, ``robots`` what a WeCom or DingTalk robot is sent (and what its
answer means), ``devices`` the subscriptions, ``queue`` who is told what (a
``PushDelivery`` row per device or robot, written before anything is sent).

How it is sent: ``deliverer`` is the worker that claims the rows and puts
each in its recipient's lane (``lanes``); ``device_sender`` and
``robot_sender`` send (over what ``sending`` gives both), ``retry`` says when
to try again, and ``outcomes`` writes down what happened.

Admins write a site's robots through :mod:`server.alert_channels`.
"""
