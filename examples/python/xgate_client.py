#!/usr/bin/env python3
"""A small xgate client in Python (grpcio), against the running demo.

It generates the Python stubs from ../../proto at start-up (grpcio-tools, into
a temporary folder, never committed), connects with mTLS using the demo's
development PKI, and makes three calls:

1. Exchange.Fetch by record types, as the demo approval hall;
2. Exchange.Fetch by approval item, as the provident fund;
3. an invalid Fetch, whose google.rpc.BadRequest it decodes from the
   `grpc-status-details-bin` trailer.

Each call's outcome is checked; the exit status is 0 only when all three
behave as described. Run `xgate demo --ready-file xgate-demo/ready.json`
first, then `python xgate_client.py --ready xgate-demo/ready.json`.
"""

import argparse
import importlib
import json
import pathlib
import sys
import tempfile

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO_ROOT = HERE.parent.parent / "proto"
PROTOS = ["xgate/v1/common.proto", "xgate/v1/exchange.proto"]


def generate_stubs(out_dir):
    """Compiles the xgate protos into `out_dir` and imports the modules."""
    # grpcio-tools ships the well-known types (struct.proto, timestamp.proto).
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *PROTOS,
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTOS} under {PROTO_ROOT}")
    sys.path.insert(0, str(out_dir))
    exchange_pb2 = importlib.import_module("xgate.v1.exchange_pb2")
    common_pb2 = importlib.import_module("xgate.v1.common_pb2")
    exchange_grpc = importlib.import_module("xgate.v1.exchange_pb2_grpc")
    return common_pb2, exchange_pb2, exchange_grpc


def channel_for(ready, requester):
    """An mTLS channel to the demo gateway as `requester` (demo PKI files)."""
    pki = pathlib.Path(ready["pki"])
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(pki / f"requester-{requester}-key.pem").read_bytes(),
        certificate_chain=(pki / f"requester-{requester}.pem").read_bytes(),
    )
    target = ready["gateway"].removeprefix("https://")
    return grpc.secure_channel(target, credentials)


def records_of(result):
    """A result's records as plain dicts. Struct numbers are doubles: a JSON
    integer such as 3 arrives as 3.0 (see README)."""
    return [json_format.MessageToDict(r) for r in result.records]


def fetch_request(pb, resident_id, case_id, **what):
    """A FetchRequest about a citizen; `what` names record types and purpose,
    or an approval item."""
    common_pb2, exchange_pb2 = pb
    return exchange_pb2.FetchRequest(
        subject=common_pb2.Subject(kind=common_pb2.SUBJECT_KIND_RESIDENT_ID, id=resident_id),
        case_id=case_id,
        operator_id="python-example",
        **what,
    )


class Checks:
    def __init__(self):
        self.failures = []

    def expect(self, ok, what):
        print(f"  [{'ok' if ok else 'FAILED'}] {what}")
        if not ok:
            self.failures.append(what)


def fetch_by_types(pb, stub, ready, checks):
    _, exchange_pb2 = pb
    print("1. Fetch by record types, as", ready["requester"])
    request = fetch_request(
        pb, ready["citizen"], "PY-CASE-1",
        record_types=["resident_identity_card", "real_estate_title", "driving_licence"],
        purpose=ready["purpose"],
    )
    response = stub.Fetch(request, timeout=10)
    for result in response.results:
        status = exchange_pb2.RecordStatus.Name(result.status)
        print(f"  {result.record_type}: {status}, view {result.view}, "
              f"{len(result.records)} record(s)")
        checks.expect(result.status == exchange_pb2.RECORD_STATUS_OK,
                      f"{result.record_type} is OK")
    # `penalty_points` is an integer in the catalog's JSON Schema and in the
    # department's JSON, but Struct only has doubles.
    licence = next(r for r in response.results if r.record_type == "driving_licence")
    points = records_of(licence)[0].get("penalty_points")
    print(f"  driving_licence.penalty_points: {points!r} ({type(points).__name__}), "
          f"as the schema's integer: {int(points)}")
    checks.expect(isinstance(points, float), "Struct numbers arrive as float")


def fetch_by_item(pb, stub, ready, checks):
    _, exchange_pb2 = pb
    print("2. Fetch by approval item", ready["approval_item"], "as", ready["item_requester"])
    # The item names the purpose, the record types and their views.
    request = fetch_request(pb, ready["citizen"], "PY-CASE-2",
                            approval_item=ready["approval_item"])
    response = stub.Fetch(request, timeout=10)
    for result in response.results:
        status = exchange_pb2.RecordStatus.Name(result.status)
        answer = (json_format.MessageToDict(result.value)
                  if result.HasField("value") else f"{len(result.records)} record(s)")
        print(f"  {result.record_type}.{result.view}: {status}, {answer}")
    checks.expect(len(response.results) > 0, "the item names record types")
    checks.expect(
        all(r.status == exchange_pb2.RECORD_STATUS_OK for r in response.results),
        "every entry of the item is OK",
    )
    checks.expect(
        any(r.record_type == "real_estate_title" and r.view == "summary"
            for r in response.results),
        "the title comes at its `summary` view",
    )


def bad_request(pb, stub, ready, checks):
    """An invalid Fetch: INVALID_ARGUMENT, and the violations decoded from
    the `grpc-status-details-bin` trailer (a google.rpc.Status whose details
    hold a google.rpc.BadRequest)."""
    _, exchange_pb2 = pb
    print("3. An invalid Fetch, and its BadRequest")
    citizen = ready["citizen"]
    wrong_check = citizen[:17] + ("1" if citizen[17] == "0" else "0")
    request = fetch_request(
        pb, wrong_check, "PY-CASE-3",
        record_types=["resident_identity_card", "no_such_record"],
        purpose=ready["purpose"],
    )
    try:
        stub.Fetch(request, timeout=10)
    except grpc.RpcError as error:
        print(f"  {error.code().name}: {error.details()}")
        checks.expect(error.code() == grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
        violations = []
        for key, value in error.trailing_metadata() or ():
            if key == "grpc-status-details-bin":
                status = status_pb2.Status.FromString(value)
                for detail in status.details:
                    bad = error_details_pb2.BadRequest()
                    if detail.Unpack(bad):
                        violations.extend(bad.field_violations)
        for v in violations:
            print(f"  violation {v.field}: {v.description}")
        fields = [v.field for v in violations]
        checks.expect(fields == ["subject.id", "record_types[1]"],
                      f"violations name subject.id and record_types[1] (got {fields})")
        return
    checks.expect(False, "the invalid Fetch was refused")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ready", default="xgate-demo/ready.json",
                        help="the file `xgate demo --ready-file FILE` wrote")
    args = parser.parse_args()
    ready = json.loads(pathlib.Path(args.ready).read_text())
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="xgate-stubs-") as out_dir:
        common_pb2, exchange_pb2, exchange_grpc = generate_stubs(out_dir)
        pb = (common_pb2, exchange_pb2)
        with channel_for(ready, ready["requester"]) as channel:
            fetch_by_types(pb, exchange_grpc.ExchangeStub(channel), ready, checks)
        with channel_for(ready, ready["item_requester"]) as channel:
            fetch_by_item(pb, exchange_grpc.ExchangeStub(channel), ready, checks)
        with channel_for(ready, ready["requester"]) as channel:
            bad_request(pb, exchange_grpc.ExchangeStub(channel), ready, checks)
    if checks.failures:
        print(f"python client: {len(checks.failures)} check(s) failed: {checks.failures}")
        return 1
    print("python client: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
