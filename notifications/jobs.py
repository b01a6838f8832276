"""The notifications app's durable jobs (paywave.jobs): their bodies are in notifications/tasks.py.

Publishing them is notifications/dispatch.py's; this module imports none of the app, so
the services publish without importing the tasks module, which imports them.
"""

from paywave.jobs import Job

FAN_OUT_EVENT = Job(
    "notifications.fan_out_event", queue="notifications", acks_late=True, ignore_result=True
)
DELIVER = Job("notifications.deliver", queue="notifications", acks_late=True, ignore_result=True)
# Published by paywave.alerts through the sender NotificationsConfig.ready registers.
SEND_ALERT = Job(
    "notifications.send_alert", queue="notifications", acks_late=True, ignore_result=True
)
