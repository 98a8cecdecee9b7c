#!/usr/bin/python3
"""A CRI (runtime.v1) client for tests/cri.sh, on stubs generated from core/services/cri/api.proto.

  cri-client.py STUB_DIR SOCKET SERVICE METHOD [REQUEST_JSON]

SERVICE is RuntimeService or ImageService; the request is the message in protobuf's
JSON mapping (field names as in the .proto). Prints the response as JSON (proto field
names) and exits 0, or prints "error: CODE: DETAILS" and exits 3.
"""
import json
import sys

stub_dir, socket, service, method = sys.argv[1:5]
request_json = sys.argv[5] if len(sys.argv) > 5 else "{}"
sys.path.insert(0, stub_dir)

import grpc  # noqa: E402
from google.protobuf import json_format  # noqa: E402
import api_pb2  # noqa: E402
import api_pb2_grpc  # noqa: E402

channel = grpc.insecure_channel("unix://" + socket)
stub = getattr(api_pb2_grpc, service + "Stub")(channel)
rpc = getattr(stub, method)
# The request type is the method's input: "<Method>Request", with CRI's few exceptions.
names = {"GetContainerEvents": "GetEventsRequest"}
request_type = getattr(api_pb2, names.get(method, method + "Request"))
request = json_format.ParseDict(json.loads(request_json), request_type())
try:
    response = rpc(request, timeout=120)
except grpc.RpcError as e:
    print("error: %s: %s" % (e.code().name, e.details()))
    sys.exit(3)
print(json_format.MessageToJson(response, preserving_proto_field_name=True, including_default_value_fields=True))
