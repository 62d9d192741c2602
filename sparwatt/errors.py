"""Every exception Sparwatt raises on purpose, in one tree.

    SparwattError
    ├── ConfigError         a config or input file that cannot be used; `problems` holds one
    │                       line per mistake (file, key path, bad value); commands exit 2
    ├── WireError           a topic or payload that breaks the MQTT contract (also ValueError);
    │                       `reason` is the short code the collector quarantines under
    ├── GatewayError        the gateway's own run-time faults
    │   └── ReadError       one Modbus request failed; `kind`: timeout, exception (with the
    │                       Modbus exception code), connection, frame
    ├── SinkWriteError      a batch the InfluxDB sink could not write; `retry` says whether
    │                       sending it again can help
    ├── VictoriaError       VictoriaMetrics refused a store request or could not be reached;
    │                       `retry` likewise
    ├── AnalysisError       the analysis layer's input contract
    │   ├── SeriesError     a MeterSeries of the wrong shape, grid or role
    │   ├── SiteConfigError a site context (or a price/CO2 file it names) that cannot be used
    │   └── VerificationError  input to baseline fitting or savings verification that
    │                       breaks its contract (also ValueError): arrays off their grid,
    │                       reversed date ranges; a baseline that fails its gates is a
    │                       result with reasons, not an error
    ├── AlertsError         the alerting layer
    │   └── ChannelError    a receiver could not deliver one notice; `permanent` when
    │                       sending it again cannot help (webhook 400, mail 550)
    ├── TokenError          a web token request that does not fit its role (also ValueError)
    ├── ProvisioningError   a gateway's broker credentials could not be made, removed or
    │                       put into effect (password file, ACL, broker reload)
    └── RemoteError         a request to a gateway (config push, read, scan) that got no
                            answer: broker unreachable, gateway offline, timeout

Faults at the edge become one line for the user; a traceback is a bug.
"""

from __future__ import annotations

ILLEGAL_ADDRESS = 2


class SparwattError(Exception):
    """Base of every deliberate Sparwatt error."""


class ConfigError(SparwattError):
    """A config file that cannot be used; `problems` holds one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class WireError(SparwattError, ValueError):
    """A payload or topic that does not follow the contract; `reason` is a short code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class GatewayError(SparwattError):
    """Base of the gateway's own run-time errors."""


class ReadError(GatewayError):
    """One Modbus request that failed."""

    def __init__(self, kind: str, detail: str, code: int | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.code = code

    @property
    def splittable(self) -> bool:
        """A block the meter refuses or ignores may succeed when read in smaller parts."""
        return self.kind == "timeout" or (self.kind == "exception" and self.code == ILLEGAL_ADDRESS)


class SinkWriteError(SparwattError):
    """A batch was not written; `retry` says whether sending it again can help."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class VictoriaError(SparwattError):
    """VictoriaMetrics refused a request or could not be reached; `retry` says whether the
    same request may succeed later (down, busy, 5xx), so a writer keeps its batch unacked."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class SchemaError(SparwattError, RuntimeError):
    """A database whose schema this version cannot use (a newer collector made it)."""


class AnalysisError(SparwattError):
    """Base of everything the analysis layer raises on purpose."""


class SeriesError(AnalysisError):
    """A MeterSeries that breaks the input contract."""


class SiteConfigError(AnalysisError):
    """A site context that cannot be used."""


class VerificationError(AnalysisError, ValueError):
    """Input to the verification functions that breaks their contract."""


class AlertsError(SparwattError):
    """Base of every deliberate alerting error."""


class ChannelError(AlertsError):
    """Delivery through `channel` failed; `reason` is one line safe to log (no secrets).

    `permanent`: the receiver refused this notification for good (a webhook's 400, a mail
    server's 550), so sending it again cannot help.
    """

    def __init__(self, channel: str, reason: str, permanent: bool = False) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
        self.permanent = permanent


class TokenError(SparwattError, ValueError):
    """A token request that does not fit its role (message is one line for the user)."""


class ProvisioningError(SparwattError):
    """Broker credentials of a gateway could not be made, removed or put into effect."""


class RemoteError(SparwattError):
    """A request to a gateway that got no answer (message is one line for the user)."""
