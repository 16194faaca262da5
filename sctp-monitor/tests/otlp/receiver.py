#!/usr/bin/env python3
"""A real OTLP/gRPC receiver for the OTLP exporter's test (tests/otlp_export.rs).

It serves the OpenTelemetry collector services LogsService and
MetricsService over gRPC with grpcio, from the official generated code of
the `opentelemetry-proto` PyPI package (the same .proto files the
OpenTelemetry Collector serves), and writes every request it receives as
one JSON line (protobuf's canonical JSON mapping) to stdout:

    {"signal": "logs" | "metrics", "request": {...}}

It listens on 127.0.0.1 on a port the kernel picks, prints
`listening PORT` first, and stops when its stdin closes. Set up by
`cargo xtask setup --tests` (a virtualenv in target/otlp-receiver with the
pinned packages, see xtask/src/setup.rs).
"""

import json
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

lock = threading.Lock()


def emit(signal, request):
    line = json.dumps({"signal": signal, "request": MessageToDict(request)})
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Logs(logs_service_pb2_grpc.LogsServiceServicer):
    def Export(self, request, context):
        emit("logs", request)
        return logs_service_pb2.ExportLogsServiceResponse()


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request, context):
        emit("metrics", request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with lock:
        sys.stdout.write(f"listening {port}\n")
        sys.stdout.flush()
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
