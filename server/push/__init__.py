"""Web Push: VAPID keys, message texts, the durable queue and its delivery worker.

``vapid`` holds the keys, ``messages`` what each recipient reads, ``queue``
who is told what (a ``PushDelivery`` row per device, written before anything
is sent), ``worker`` the delivery, and ``subscriptions`` the devices.
"""
