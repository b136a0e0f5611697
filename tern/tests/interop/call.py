#!/usr/bin/env python3
"""A Tern client in Python: calls a component over ZeroMQ and reads its reply.

It needs only pyzmq and the protobuf runtime (the Rust test pins and installs them in a
virtual environment under target/tmp: tern/tests/interop/python_env.rs).
There is no protoc step and no generated code: the message classes are built at run
time from a FileDescriptorProto written below, field for field as in
proto/protos/tern/v1/envelope.proto. docs/wire-protocol.md is the specification this
client follows.

Usage:
    call.py ENDPOINT [--key-file CERT --server-key Z85] [--node calc] [--component adder]
                     [--message-type interop.v1.Add] [--json '{"a":2,"b":3}']

It sends the ASK, prints the reply, and then (unless --no-checks) runs the protocol
checks: an unknown component, an unknown message type, a payload in the wrong content
type, bad JSON, an ASK without a message type, an unsupported version, garbage bytes
as an envelope, a message with one frame, a TELL, and a final ASK that must still be
answered. It exits 0 when every check passed, 1 when one failed, 2 on a timeout.
"""

import argparse
import json
import sys

import zmq
import zmq.auth
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

# ----- the schema, built in code -------------------------------------------------------

F = descriptor_pb2.FieldDescriptorProto
SCALAR = {
    "uint32": F.TYPE_UINT32,
    "uint64": F.TYPE_UINT64,
    "string": F.TYPE_STRING,
    "bytes": F.TYPE_BYTES,
    "bool": F.TYPE_BOOL,
}


def add_message(fdp, name, fields):
    """fields: (name, number, type, repeated); type is a scalar name or '.pkg.Type'."""
    msg = fdp.message_type.add(name=name)
    for fname, number, ftype, repeated in fields:
        field = msg.field.add(name=fname, number=number)
        field.label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
        if ftype in SCALAR:
            field.type = SCALAR[ftype]
        else:
            field.type_name = ftype
            field.type = F.TYPE_ENUM if ftype in ENUMS else F.TYPE_MESSAGE


def add_enum(fdp, name, values):
    enum = fdp.enum_type.add(name=name)
    for number, vname in enumerate(values):
        enum.value.add(name=vname, number=number)


KINDS = [
    "KIND_UNSPECIFIED",
    "KIND_TELL",
    "KIND_ASK",
    "KIND_REPLY",
    "KIND_STREAM_ITEM",
    "KIND_STREAM_END",
    "KIND_CREDIT",
    "KIND_CANCEL",
    "KIND_ERROR",
]
ERROR_CODES = [
    "ERROR_CODE_UNSPECIFIED",
    "ERROR_CODE_UNKNOWN_COMPONENT",
    "ERROR_CODE_UNKNOWN_MESSAGE_TYPE",
    "ERROR_CODE_MAILBOX_FULL",
    "ERROR_CODE_STOPPED",
    "ERROR_CODE_TIMEOUT",
    "ERROR_CODE_HANDLER_PANICKED",
    "ERROR_CODE_DECODE_FAILED",
    "ERROR_CODE_UNSUPPORTED_VERSION",
    "ERROR_CODE_TOO_LARGE",
]
ENUMS = {".tern.v1.Kind", ".tern.v1.ErrorCode"}


def build_schema():
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tern/v1/envelope.proto", package="tern.v1", syntax="proto3"
    )
    add_enum(fdp, "Kind", KINDS)
    add_enum(fdp, "ErrorCode", ERROR_CODES)
    add_message(fdp, "ComponentRef", [("node", 1, "string", False), ("name", 2, "string", False)])
    add_message(
        fdp,
        "TraceContext",
        [("trace_id", 1, "bytes", False), ("span_id", 2, "bytes", False), ("flags", 3, "uint32", False)],
    )
    add_message(fdp, "ErrorInfo", [("code", 1, ".tern.v1.ErrorCode", False), ("detail", 2, "string", False)])
    add_message(
        fdp,
        "Envelope",
        [
            ("version", 1, "uint32", False),
            ("message_id", 2, "uint64", False),
            ("correlation_id", 3, "uint64", False),
            ("kind", 4, ".tern.v1.Kind", False),
            ("source", 5, ".tern.v1.ComponentRef", False),
            ("destination", 6, ".tern.v1.ComponentRef", False),
            ("message_type", 7, "string", False),
            ("content_type", 8, "string", False),
            ("timeout_ms", 9, "uint32", False),
            ("trace", 10, ".tern.v1.TraceContext", False),
            ("flow", 11, "string", False),
            ("horizon", 12, "uint32", False),
            ("credit", 13, "uint32", False),
            ("error", 14, ".tern.v1.ErrorInfo", False),
        ],
    )
    # control.proto: not needed by a simple client, built for completeness.
    control = descriptor_pb2.FileDescriptorProto(
        name="tern/v1/control.proto", package="tern.v1", syntax="proto3"
    )
    add_message(
        control,
        "Directory",
        [
            ("node", 1, "string", False),
            ("generation", 2, "uint64", False),
            ("version", 3, "uint64", False),
            ("components", 4, "string", True),
            ("reply_wanted", 5, "bool", False),
        ],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(fdp.SerializeToString())
    pool.AddSerializedFile(control.SerializeToString())

    def message_class(full_name):
        desc = pool.FindMessageTypeByName(full_name)
        if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory(pool).GetPrototype(desc)

    return message_class("tern.v1.Envelope"), message_class("tern.v1.Directory")


Envelope, Directory = build_schema()

KIND = {name: number for number, name in enumerate(KINDS)}
CODE = {name: number for number, name in enumerate(ERROR_CODES)}
VERSION = 1
JSON = "application/json"


def kind_name(n):
    return KINDS[n] if 0 <= n < len(KINDS) else "KIND_%d" % n


def code_name(n):
    # Codes this client does not know are read as UNSPECIFIED (docs: versioning).
    return ERROR_CODES[n] if 0 <= n < len(ERROR_CODES) else "ERROR_CODE_UNSPECIFIED"


# ----- the client ----------------------------------------------------------------------


class Timeout(Exception):
    pass


class Client:
    def __init__(self, endpoint, identity, node, timeout_s, verbose=False, key_file=None, server_key=None):
        self.verbose = verbose
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        if key_file:
            # CURVE (docs/security.md): this client's key pair, from a ZeroMQ certificate
            # (what `app keygen` and zmq.auth.create_certificates write), and the node's
            # public key. The node admits the key only if its allow-list has it, and
            # knows this client by the name the list gives it.
            public, secret = zmq.auth.load_certificate(key_file)
            self.sock.curve_publickey = public
            self.sock.curve_secretkey = secret
            self.sock.curve_serverkey = server_key.encode()
        # The routing id: a name of our own, not any node's name in the cluster.
        # Empty: let libzmq pick one (the node then calls this client "zmq:<hex>").
        self.identity = identity
        if identity:
            self.sock.setsockopt(getattr(zmq, "ROUTING_ID", zmq.IDENTITY), identity.encode())
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.node = node
        self.timeout_ms = int(timeout_s * 1000)
        self.next_id = 1

    def close(self):
        self.sock.close(0)
        self.ctx.term()

    def take_id(self):
        mid = self.next_id
        self.next_id += 1
        return mid

    def envelope(self, kind, component, message_type, content_type=JSON, node=None):
        env = Envelope()
        env.version = VERSION
        env.message_id = self.take_id()
        env.kind = KIND[kind]
        env.source.node = self.identity  # source.name stays empty: a client, not a component
        env.destination.node = self.node if node is None else node
        env.destination.name = component
        env.message_type = message_type
        env.content_type = content_type
        if kind == "KIND_ASK":
            env.timeout_ms = self.timeout_ms
        return env

    def send(self, envelope_bytes, payload):
        # Exactly two frames: the envelope, then the payload (possibly empty).
        self.sock.send_multipart([envelope_bytes, payload])

    def recv(self, timeout_ms=None):
        """The next [envelope, payload] from the node, decoded."""
        wait = self.timeout_ms if timeout_ms is None else timeout_ms
        if not self.sock.poll(wait, zmq.POLLIN):
            raise Timeout("no answer within %d ms" % wait)
        frames = self.sock.recv_multipart()
        if len(frames) != 2:
            raise ValueError("expected 2 frames, got %d" % len(frames))
        env = Envelope()
        env.ParseFromString(frames[0])
        if self.verbose:
            print("  <- %s | payload %r" % (text_format.MessageToString(env, as_one_line=True), frames[1]))
        if env.version != VERSION:
            raise ValueError("answer has protocol version %d" % env.version)
        return env, frames[1], frames[0]

    def answer_to(self, message_id):
        """Waits for the REPLY or ERROR whose correlation_id is message_id."""
        while True:
            env, payload, raw = self.recv()
            if env.correlation_id == message_id and env.kind in (KIND["KIND_REPLY"], KIND["KIND_ERROR"]):
                return env, payload, raw
            print("  (ignored %s correlating %d)" % (kind_name(env.kind), env.correlation_id))


def describe(env, payload):
    if env.kind == KIND["KIND_ERROR"]:
        return "ERROR %s %s" % (code_name(env.error.code), json.dumps(env.error.detail))
    return "REPLY %s %s" % (env.content_type, payload.decode("utf-8", "replace"))


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, what, result):
        self.passed += 1
        print("ok %d %s: %s" % (self.passed + self.failed, what, result))

    def fail(self, what, result):
        self.failed += 1
        print("FAIL %d %s: %s" % (self.passed + self.failed, what, result))

    def expect_reply(self, what, got, want_payload):
        env, payload, _ = got
        result = describe(env, payload)
        if env.kind == KIND["KIND_REPLY"] and env.content_type == JSON and json.loads(payload) == want_payload:
            self.ok(what, result)
        else:
            self.fail(what, result + " (wanted REPLY %s)" % json.dumps(want_payload))

    def expect_error(self, what, got, code):
        env, payload, _ = got
        result = describe(env, payload)
        if env.kind == KIND["KIND_ERROR"] and code_name(env.error.code) == code and payload == b"":
            self.ok(what, result)
        else:
            self.fail(what, result + " (wanted ERROR %s)" % code)


def ask(client, component, message_type, payload, content_type=JSON, node=None):
    env = client.envelope("KIND_ASK", component, message_type, content_type, node)
    raw = env.SerializeToString()
    client.send(raw, payload)
    return env.message_id, raw


def run(args):
    client = Client(
        args.endpoint, args.identity, args.node, args.timeout, args.verbose,
        args.key_file, args.server_key,
    )
    print(
        "DEALER %s -> %s (libzmq %s, pyzmq %s, %s)"
        % (args.identity, args.endpoint, zmq.zmq_version(), zmq.__version__,
           "CURVE" if args.key_file else "plaintext")
    )
    checks = Checks()
    payload = args.json.encode()
    try:
        # 1. The call: an ASK with a JSON payload, and its reply.
        mid, raw = ask(client, args.component, args.message_type, payload)
        print("sent ASK #%d to %s/%s %s %s" % (mid, args.node, args.component, args.message_type, args.json))
        print("ask-envelope-hex: %s" % raw.hex())
        env, reply, raw_reply = client.answer_to(mid)
        print("reply-envelope-hex: %s" % raw_reply.hex())
        print("reply-payload: %s" % reply.decode("utf-8", "replace"))
        print(
            "got %s from %s/%s for #%d: %s"
            % (kind_name(env.kind), env.source.node, env.source.name, env.correlation_id, describe(env, reply))
        )
        if env.kind != KIND["KIND_REPLY"]:
            checks.fail("ask", describe(env, reply))
            return 1
        checks.ok("ask %s %s" % (args.component, args.json), describe(env, reply))
        if args.no_checks:
            return 0
        want = None
        try:
            request = json.loads(args.json)
            want = request["a"] + request["b"]
        except (ValueError, KeyError, TypeError):
            pass
        if want is not None and json.loads(reply) != want:
            checks.fail("sum", "%s != %s" % (reply, want))

        # 2. Refusals that come back as ERROR envelopes.
        mid, _ = ask(client, "no-such-component", args.message_type, payload)
        checks.expect_error("unknown component", client.answer_to(mid), "ERROR_CODE_UNKNOWN_COMPONENT")
        mid, _ = ask(client, args.component, "interop.v1.NoSuchMessage", payload)
        checks.expect_error("unknown message type", client.answer_to(mid), "ERROR_CODE_UNKNOWN_MESSAGE_TYPE")
        mid, _ = ask(client, args.component, args.message_type, payload, content_type="application/postcard")
        checks.expect_error("payload in another content type", client.answer_to(mid), "ERROR_CODE_DECODE_FAILED")
        mid, _ = ask(client, args.component, args.message_type, b"{not json")
        checks.expect_error("payload that is not JSON", client.answer_to(mid), "ERROR_CODE_DECODE_FAILED")
        env = client.envelope("KIND_ASK", args.component, "")
        client.send(env.SerializeToString(), payload)
        checks.expect_error("ASK without message_type", client.answer_to(env.message_id), "ERROR_CODE_DECODE_FAILED")
        env = client.envelope("KIND_ASK", args.component, args.message_type)
        env.version = 2
        client.send(env.SerializeToString(), payload)
        checks.expect_error("protocol version 2", client.answer_to(env.message_id), "ERROR_CODE_UNSUPPORTED_VERSION")
        # An ASK whose envelope is over the 8 KiB limit (an unknown length-delimited
        # field 100 of 9,000 bytes appended): TOO_LARGE (sections 2.5, 8.2, 13).
        env = client.envelope("KIND_ASK", args.component, args.message_type)
        client.send(env.SerializeToString() + b"\xa2\x06\xa8\x46" + b"x" * 9000, payload)
        checks.expect_error("ASK with an envelope over 8 KiB", client.answer_to(env.message_id), "ERROR_CODE_TOO_LARGE")
        # A streamed ASK (credit > 0) for a message type the component answers only
        # plainly: UNKNOWN_MESSAGE_TYPE (section 4.1).
        env = client.envelope("KIND_ASK", args.component, args.message_type)
        env.credit = 4
        client.send(env.SerializeToString(), payload)
        checks.expect_error("streamed ASK to a plain type", client.answer_to(env.message_id), "ERROR_CODE_UNKNOWN_MESSAGE_TYPE")

        # 3. Input that gets no answer: garbage as an envelope, a message of one frame,
        # and a TELL. Then a final ASK (to destination.node "", the receiving node): the
        # node must still serve, and nothing may come back before its reply but,
        # at most, an ERROR for the garbage.
        client.send(b"\xff\xff\xff\xff garbage", payload)
        client.sock.send_multipart([client.envelope("KIND_ASK", args.component, args.message_type).SerializeToString()])
        tell = client.envelope("KIND_TELL", args.component, args.message_type)
        client.send(tell.SerializeToString(), payload)
        final_mid, _ = ask(client, args.component, args.message_type, b'{"a":40,"b":2}', node="")
        extra = []
        while True:
            env, reply, _ = client.recv()
            if env.correlation_id == final_mid:
                break
            extra.append(describe(env, reply))
        garbage_errors = [e for e in extra if e.startswith("ERROR ERROR_CODE_DECODE_FAILED")]
        if len(extra) == len(garbage_errors) and len(extra) <= 1:
            checks.ok("garbage envelope", "answered with %s" % extra[0] if extra else "no answer")
            checks.ok("message of one frame", "no answer")
            checks.ok("TELL", "no answer")
        else:
            checks.fail("no answer to garbage, one frame, TELL", "; ".join(extra))
        checks.expect_reply("final ask after the bad input", (env, reply, None), 42)
    except Timeout as e:
        checks.fail("waiting", str(e))
        print("timeout: %s" % e)
        return 2
    finally:
        client.close()
    print("interop checks: %d ok, %d failing" % (checks.passed, checks.failed))
    return 0 if checks.failed == 0 else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("endpoint", help="the node's ROUTER endpoint, e.g. tcp://127.0.0.1:7000")
    p.add_argument("--identity", default="py-client", help="this client's routing id")
    p.add_argument("--node", default="calc", help="the node's name (destination.node)")
    p.add_argument("--component", default="adder")
    p.add_argument("--message-type", default="interop.v1.Add")
    p.add_argument("--json", default='{"a":2,"b":3}', help="the JSON payload")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each answer")
    p.add_argument("--no-checks", action="store_true", help="only make the call")
    p.add_argument("--verbose", action="store_true", help="print every envelope received")
    p.add_argument("--key-file", help="this client's CURVE certificate (key pair): CURVE on")
    p.add_argument("--server-key", help="the node's CURVE public key (Z85), with --key-file")
    args = p.parse_args()
    if bool(args.key_file) != bool(args.server_key):
        p.error("--key-file and --server-key go together")
    try:
        sys.exit(run(args))
    except Exception as e:  # a broken answer: say what, exit non-zero
        print("error: %s: %s" % (type(e).__name__, e))
        sys.exit(1)


if __name__ == "__main__":
    main()
