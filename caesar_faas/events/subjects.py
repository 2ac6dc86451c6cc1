"""NATS subjects and CloudEvent types (the contract is written down in events/subjects.yaml)."""

STREAM = "CAESAR"
STREAM_SUBJECTS = ["caesar.>"]

FILES_CREATED = "caesar.files.created"
FILES_DELETED = "caesar.files.deleted"
JOBS_SUBMITTED = "caesar.jobs.submitted"
JOBS_CANCEL = "caesar.jobs.cancel"
JOBS_STATUS = "caesar.jobs.status"
# A job reached its terminal state (whoever moved it there); the notifier listens.
JOBS_FINISHED = "caesar.jobs.finished"
# MinIO publishes its bucket notifications here (its own JSON, not CloudEvents).
STORAGE_EVENTS = "caesar.storage.events"
DEAD_PREFIX = "caesar.dead."

TYPE_PREFIX = "org.caesar."


def event_type(subject: str) -> str:
    """caesar.files.created -> org.caesar.files.created"""
    return TYPE_PREFIX + subject.removeprefix("caesar.")
