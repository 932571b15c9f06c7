"""How we reach hosts: a tiny base (run -> CommandResult) and two transports."""

from .base import Command, CommandFailed, CommandResult, TargetUnreachable, Transport
from .local import LocalTransport
from .ssh import SSHTransport

__all__ = [
    "Command", "CommandFailed", "CommandResult", "LocalTransport", "SSHTransport",
    "TargetUnreachable", "Transport",
]
