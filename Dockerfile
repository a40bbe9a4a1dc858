# The jobq image: the server, the reference worker and the CLI (`jobq serve`, `jobq worker`, ...).
#   docker build -t jobq .        docker run --rm jobq --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the two packages need; grpcio, protobuf and Pillow install as binary wheels.
COPY README.md pyproject.toml ./
COPY clients/python ./clients/python
COPY server ./server
COPY worker ./worker
RUN pip install ./clients/python . \
    && useradd --system --create-home --home-dir /home/jobq jobq \
    && mkdir -p /data/images /data/inbox \
    && chown -R jobq:jobq /data

USER jobq
WORKDIR /home/jobq
EXPOSE 50051
ENTRYPOINT ["jobq"]
CMD ["serve"]
