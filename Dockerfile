# One image for both roles: `portico serve` (API + MCP) and `portico worker`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY portico ./portico
COPY mcp_server ./mcp_server
COPY rest_api ./rest_api
COPY workers ./workers
COPY files ./files
COPY batch ./batch
COPY finetune ./finetune
COPY control_plane ./control_plane
RUN pip install --no-cache-dir .
RUN useradd --system --home /app portico && mkdir /data && chown portico /data
USER portico
EXPOSE 8787
CMD ["portico", "serve", "--host", "0.0.0.0", "--port", "8787"]
