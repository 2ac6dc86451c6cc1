"""The Slurm job backend (CAESAR_JOB_BACKEND=slurm): batch jobs through slurmrestd.

backend.py  the Backend: launch, cancel, poll, the orphan listing
api.py      the shapes of one slurmrestd API version (v0.0.38)
job.py      the batch job: fixed script + quoted runner argv, environment, resources
status.py   Slurm states -> PollResult
client.py   HTTP + JWT (static or minted from Slurm's jwt_hs256.key)
"""

from .backend import SlurmBackend

__all__ = ["SlurmBackend"]
