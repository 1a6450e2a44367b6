"""`PUT /v1/portico/uploads/{token}`: the receiving end of the one-time upload URLs handed out over MCP.

Not a Portkey operation and not in the registry: the token in the path is the credential, so this route takes
no API key.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from files.upload_grants import UPLOAD_PATH, receive_upload
from portico.context import Services
from portico.errors import PayloadTooLarge, PorticoError
from rest_api.routes import API_PREFIX, error_response, render


def upload_route(services: Services) -> Route:
    async def put_upload(request: Request) -> Response:
        try:
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > services.settings.upload_max_bytes:
                limit = services.settings.upload_max_bytes
                raise PayloadTooLarge(f"The upload exceeds the limit of {limit} bytes.", param="file")
            return render(await receive_upload(services, request.path_params["token"], request.stream()))
        except PorticoError as error:
            return error_response(error)

    return Route(f"{API_PREFIX}{UPLOAD_PATH}/{{token}}", put_upload, methods=["PUT"])
