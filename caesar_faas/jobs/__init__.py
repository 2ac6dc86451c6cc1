"""Job lifecycle: submit, dispatch, status events, cancel, listing and the monitor (ARCHITECTURE §6).

The HTTP handlers and the dispatcher/monitor functions are thin wrappers around these modules.
"""
