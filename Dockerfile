# The jobq image: the server, the reference worker and the CLI (`jobq serve`, `jobq worker`, ...).
#   docker build -t jobq .        docker run --rm jobq --help
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only the packages the image runs; grpcio, protobuf and Pillow install as binary wheels.
COPY clients/python ./clients/python
COPY server ./server
COPY worker ./worker
COPY bench/pyproject.toml bench/README.md ./bench/
COPY bench/src ./bench/src
COPY cli ./cli
RUN pip install ./clients/python ./server ./worker ./bench ./cli \
    && useradd --system --create-home --home-dir /home/jobq jobq \
    && mkdir -p /data/images /data/inbox /secrets /certs \
    && chown -R jobq:jobq /data /secrets /certs

USER jobq
WORKDIR /home/jobq
EXPOSE 50051
ENTRYPOINT ["jobq"]
CMD ["serve"]
