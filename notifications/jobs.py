"""The notifications app's durable jobs (paywave.jobs): their bodies are in notifications/tasks.py.

Publishing them is notifications/dispatch.py's; this module imports none of the app, so
the services publish without importing the tasks module, which imports them.
"""

from paywave.jobs import NOTIFICATIONS_QUEUE, Job

DELIVER = Job(
    "notifications.deliver", queue=NOTIFICATIONS_QUEUE, acks_late=True, ignore_result=True
)
# Published by paywave.observability.alerts through the sender NotificationsConfig.ready registers.
SEND_ALERT = Job(
    "notifications.send_alert", queue=NOTIFICATIONS_QUEUE, acks_late=True, ignore_result=True
)
