"""All tables; importing this package registers them on ``Base.metadata``."""

from app.db.models.api_keys import ApiKey
from app.db.models.applications import Application
from app.db.models.deployments import Deployment, DeploymentEvent, WebhookDelivery
from app.db.models.monitor import EngineWatch, Incident
from app.db.models.notifications import Notification, NotificationDelivery
from app.db.models.registries import Registry
from app.db.models.servers import Server

__all__ = [
    "ApiKey",
    "Application",
    "Deployment",
    "DeploymentEvent",
    "EngineWatch",
    "Incident",
    "Notification",
    "NotificationDelivery",
    "Registry",
    "Server",
    "WebhookDelivery",
]
