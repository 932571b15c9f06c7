"""How we reach hosts: a tiny base (run -> CommandResult) and two transports."""

from .base import Cancelled, Command, CommandFailed, CommandResult, TargetUnreachable, Transport, shielded
from .local import LocalTransport
from .ssh import SSHTransport

__all__ = [
    "Cancelled", "Command", "CommandFailed", "CommandResult", "LocalTransport", "SSHTransport",
    "TargetUnreachable", "Transport", "shielded",
]
