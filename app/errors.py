"""One exception tree for the whole of Slipway.

    SlipwayError                      code            raised for
    ├── BadInput                      BAD_USER_INPUT  input that cannot be accepted
    │   └── TooComplex                QUERY_TOO_COMPLEX a document over the depth or cost limit
    ├── NotFound                      NOT_FOUND       an id that names nothing
    ├── Conflict                      CONFLICT        a state that forbids the operation
    ├── Unauthenticated               UNAUTHENTICATED no or unknown API key
    ├── Forbidden                     FORBIDDEN       key lacks the scope
    ├── Unavailable                   UNAVAILABLE     a backing service is down
    ├── RateLimited                   RATE_LIMITED    too many failures; retry_after seconds
    └── PipelineError                 (deployment ERROR, never sent to a resolver)
        ├── SourceError               fetching the source failed
        ├── BuildError                building the image failed
        ├── RegistryError             push/pull failed
        │   ├── RegistryNetworkError  the registry did not answer (retried like a fetch)
        │   └── RegistryAuthError     credentials refused (never retried)
        ├── ReleaseError              creating/updating the service failed
        ├── HealthCheckError          the service did not come up healthy
        └── Cancelled                 the deployment was cancelled

Library exceptions are translated into these at the adapter edge.
"""

from __future__ import annotations


class SlipwayError(Exception):
    """Base of every error Slipway raises on purpose."""

    code = "INTERNAL_SERVER_ERROR"

    @property
    def extensions(self) -> dict[str, str]:
        """Picked up by graphql-core when this error reaches a resolver's caller."""
        return {"code": self.code}


class BadInput(SlipwayError):
    code = "BAD_USER_INPUT"


class TooComplex(BadInput):
    """A document asks for more work than the server allows (depth or cost), before it runs."""

    code = "QUERY_TOO_COMPLEX"


class NotFound(SlipwayError):
    code = "NOT_FOUND"


class Conflict(SlipwayError):
    code = "CONFLICT"


class Unauthenticated(SlipwayError):
    code = "UNAUTHENTICATED"


class Forbidden(SlipwayError):
    code = "FORBIDDEN"


class Unavailable(SlipwayError):
    code = "UNAVAILABLE"


class RateLimited(SlipwayError):
    """Answered before any work: HTTP 429 with Retry-After, or a refused WebSocket init."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PipelineError(SlipwayError):
    """A step of a deployment failed; the message is shown to the user."""


class SourceError(PipelineError):
    pass


class SourceNetworkError(SourceError):
    """The remote could not be reached or broke off: worth another attempt."""


class BuildError(PipelineError):
    pass


class RegistryError(PipelineError):
    pass


class RegistryNetworkError(RegistryError):
    """The registry could not be reached or broke off: worth another try."""


class RegistryAuthError(RegistryError):
    """The registry refused the credentials or the push: trying again cannot help."""


class ReleaseError(PipelineError):
    pass


class HealthCheckError(PipelineError):
    pass


class Cancelled(PipelineError):
    pass
