"""Generated gRPC/protobuf stubs of konspekt.v1 (tools/gen_protos.py); do not edit."""
