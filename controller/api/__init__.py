"""The status API: apps, environments, deployments and deliveries, per tenant.

``controller.api.app.create_app(settings)`` is the composition root; routes live
in ``routes/``, dependencies in ``deps``, authentication in ``auth``.
"""
