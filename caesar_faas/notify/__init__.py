"""Notifications on job end (issue 17 §4): what a submission may ask for (targets), how a webhook
is signed and sent (webhook), how a mail is sent (mail), and the notifier's at-most-once
bookkeeping per job and channel (deliver)."""
