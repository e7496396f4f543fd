"""Label keys that mark what Railyard owns. Observed state is what carries them."""

from __future__ import annotations

PREFIX = "railyard."
MANAGED = "railyard.managed"
INSTANCE = "railyard.instance"
TENANT = "railyard.tenant"
APP = "railyard.app"
ENV = "railyard.env"
SERVICE = "railyard.service"
REVISION = "railyard.revision"
SPEC_HASH = "railyard.spec-hash"
REPLICA = "railyard.replica"
