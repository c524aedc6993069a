"""OpenTelemetry for every process: setup from the standard `OTEL_*` settings, trace context
helpers, gRPC instrumentation, the product's metrics and JSON logs carrying trace ids."""
