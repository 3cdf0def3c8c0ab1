"""A small service written with ivcap-lambda, for tests/it/lambda_interop.rs.

Two tools on one server, as `python lambda_service.py --port PORT` serves them:
- `/`      greet: answers at once.
- `/slow`  count_slowly: sleeps `seconds` before answering, so a short `Timeout` makes
           ivcap-lambda answer 204 try-later (with `Retry-Later: 1`); it reports each step
           through the job's event reporter as a real service does.
A `name` of "error" makes greet raise ValueError, which ivcap-lambda answers with 400.
"""

import time

from ivcap_lambda import ToolOptions, get_event_reporter, ivcap_lambda, logging_init, start_lambda_server
from ivcap_service import Service, ServiceContact
from pydantic import BaseModel, Field


class GreetRequest(BaseModel):
    jschema: str = Field("urn:sd:schema.greet.request.1", alias="$schema")
    name: str = Field(description="who to greet")
    times: int = Field(1, description="how often", ge=1, le=5)


class GreetResult(BaseModel):
    jschema: str = Field("urn:sd:schema.greet.1", alias="$schema")
    greeting: str


@ivcap_lambda("/", opts=ToolOptions(name="greet", refresh_interval=1))
def greet(req: GreetRequest) -> GreetResult:
    """Greets someone, at once."""
    if req.name == "error":
        raise ValueError("cannot greet 'error'")
    return GreetResult(greeting=" ".join([f"hello {req.name}"] * req.times))


class SlowRequest(BaseModel):
    jschema: str = Field("urn:sd:schema.count-slowly.request.1", alias="$schema")
    seconds: int = Field(description="how long to count", ge=1, le=30)


class SlowResult(BaseModel):
    jschema: str = Field("urn:sd:schema.count-slowly.1", alias="$schema")
    counted: int


@ivcap_lambda("/slow", opts=ToolOptions(name="count_slowly", refresh_interval=1))
def count_slowly(req: SlowRequest) -> SlowResult:
    """Counts one number a second, for as many seconds as asked."""
    reporter = get_event_reporter()
    for i in range(req.seconds):
        if reporter is not None:
            reporter.step_started(f"count-{i}", message=f"counting {i + 1} of {req.seconds}")
        time.sleep(1)
    return SlowResult(counted=req.seconds)


if __name__ == "__main__":
    logging_init()
    start_lambda_server(Service(name="lambda-interop", contact=ServiceContact(name="tests", email="tests@example.org")))
