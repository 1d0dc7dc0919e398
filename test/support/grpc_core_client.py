#!/usr/bin/python3
"""A small grpcurl stand-in on grpc-core (Debian's python3-grpcio).

It proves the README's grpcurl lines against a client that is not grpc-js:

    grpc_core_client.py --cacert F [--cert F --key F] --authority NAME ADDRESS list
    grpc_core_client.py ... ADDRESS describe [SYMBOL]
    grpc_core_client.py ... ADDRESS call SERVICE/METHOD [--data JSON]

ADDRESS is host:port or unix:/path. Like grpcurl it knows no .proto of the
server: it asks server reflection (grpc.reflection.v1, falling back to
v1alpha) for services and file descriptors, builds request and reply types
from those, and reads and prints messages as JSON. --authority sets both the
:authority header and the name the server certificate must carry (DNS or IP
SAN), as grpcurl's -authority does. --cert/--key may be left out, to show
what a caller without a client certificate gets.

Only the reflection protos are compiled, once, from Debian's grpc-proto with
python3 -m grpc_tools.protoc (python3-grpc-tools), into a cache directory.

Exit status: 0 on success; 64 + the gRPC status code when the server (or the
connection) fails a call, with "CODE_NAME: details" on stderr (grpcurl also
exits 64 + code); 1 on local errors (unreadable files, bad JSON, unknown
symbol); 2 on usage errors; 3 when a Debian package is missing.
"""

import argparse
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

APT_PACKAGES = 'python3-grpcio python3-grpc-tools python3-protobuf grpc-proto'
EXIT_LOCAL, EXIT_USAGE, EXIT_MISSING = 1, 2, 3
STUB_PACKAGE = 'nfsha_grpc_core_stubs'
# grpc-proto path → module name in STUB_PACKAGE. They are compiled under
# other names because a top-level "grpc" package would shadow grpcio itself.
PROTOS = {
    'grpc/reflection/v1/reflection.proto': 'reflection_v1',
    'grpc/reflection/v1alpha/reflection.proto': 'reflection_v1alpha',
    'grpc/health/v1/health.proto': 'health_v1',
}


def fail(code, message):
    print(message, file=sys.stderr)
    sys.exit(code)


def missing(package, what):
    fail(EXIT_MISSING, f'grpc_core_client.py needs {what}: install the Debian package {package} '
                       f'(apt-get install -y {APT_PACKAGES}; run it with /usr/bin/python3, not a pyenv/venv python)')


# grpc-core logs handshake failures on its own; the status on stderr says it all.
os.environ.setdefault('GRPC_VERBOSITY', 'NONE')
try:
    import grpc
except ImportError:
    missing('python3-grpcio', 'grpc-core for Python (import grpc)')
try:
    from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
except ImportError:
    missing('python3-protobuf', 'protobuf for Python (import google.protobuf)')


# --- reflection stubs, generated once -------------------------------------

def grpc_proto_files():
    """The grpc-proto files we compile, found through dpkg as the package installs them."""
    try:
        listed = subprocess.run(['dpkg', '-L', 'grpc-proto'], capture_output=True, text=True, check=True).stdout.split('\n')
    except (OSError, subprocess.CalledProcessError):
        missing('grpc-proto', 'the reflection and health .proto files (dpkg -L grpc-proto lists none)')
    found = {}
    for rel in PROTOS:
        for line in listed:
            if line.endswith('/' + rel) and os.path.isfile(line):
                found[rel] = line
    for rel in ('grpc/reflection/v1alpha/reflection.proto', 'grpc/health/v1/health.proto'):
        if rel not in found:
            missing('grpc-proto', f'{rel} (not in dpkg -L grpc-proto)')
    return found


def load_stubs():
    """Compiles the protos into a cache directory (once per content) and imports them."""
    try:
        importlib.import_module('grpc_tools.protoc')
    except ImportError:
        missing('python3-grpc-tools', 'protoc for Python (python3 -m grpc_tools.protoc)')
    files = grpc_proto_files()
    digest = hashlib.sha256()
    for rel in sorted(files):
        with open(files[rel], 'rb') as f:
            digest.update(rel.encode() + b'\0' + f.read())
    digest.update(('%s %s' % (grpc.__version__, sys.version)).encode())
    cache = os.path.join(os.environ.get('XDG_CACHE_HOME') or tempfile.gettempdir(),
                         'nfsha-grpc-core-stubs-' + digest.hexdigest()[:16])
    if not os.path.isfile(os.path.join(cache, STUB_PACKAGE, '__init__.py')):
        build = tempfile.mkdtemp(prefix='nfsha-grpc-core-stubs-')
        try:
            src = os.path.join(build, 'src', STUB_PACKAGE)
            out = os.path.join(build, 'out')
            os.makedirs(src)
            os.makedirs(os.path.join(out, STUB_PACKAGE))
            protos = []
            for rel, path in files.items():
                shutil.copyfile(path, os.path.join(src, PROTOS[rel] + '.proto'))
                protos.append(os.path.join(src, PROTOS[rel] + '.proto'))
            r = subprocess.run([sys.executable, '-m', 'grpc_tools.protoc', '-I' + os.path.join(build, 'src'),
                                '--python_out=' + out, '--grpc_python_out=' + out, *protos],
                               capture_output=True, text=True)
            if r.returncode != 0:
                fail(EXIT_LOCAL, 'grpc_tools.protoc failed: ' + r.stderr.strip())
            open(os.path.join(out, STUB_PACKAGE, '__init__.py'), 'w').close()
            try:
                os.rename(out, cache)
            except OSError:
                if not os.path.isdir(cache):  # another run won the race: use its copy
                    raise
        finally:
            shutil.rmtree(build, ignore_errors=True)
    sys.path.insert(0, cache)
    stubs = {}
    for rel, name in PROTOS.items():
        if rel in files:
            stubs[name] = (importlib.import_module(f'{STUB_PACKAGE}.{name}_pb2'),
                           importlib.import_module(f'{STUB_PACKAGE}.{name}_pb2_grpc'))
    return stubs


# --- the connection ----------------------------------------------------------

def read(path, what):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except OSError as e:
        fail(EXIT_LOCAL, f'cannot read the {what} {path}: {e.strerror}')


def open_channel(args):
    root = read(args.cacert, 'CA certificate (--cacert)') if args.cacert else None
    key = read(args.key, 'client key (--key)') if args.key else None
    cert = read(args.cert, 'client certificate (--cert)') if args.cert else None
    options = [('grpc.enable_http_proxy', 0)]  # never via $http_proxy/$grpc_proxy
    if args.authority:
        options += [('grpc.ssl_target_name_override', args.authority), ('grpc.default_authority', args.authority)]
    return grpc.secure_channel(args.address, grpc.ssl_channel_credentials(root, key, cert), options)


class LocalError(Exception):
    """Something this side cannot do: a symbol reflection does not know, bad --data, a broken descriptor."""


class RpcFailed(Exception):
    def __init__(self, err):
        super().__init__()
        self.code = err.code() if callable(getattr(err, 'code', None)) else grpc.StatusCode.UNKNOWN
        self.details = err.details() if callable(getattr(err, 'details', None)) else str(err)


class Reflection:
    """A server reflection client: v1 first, v1alpha when the server has no v1 (as grpcurl)."""

    def __init__(self, channel, stubs, timeout):
        self.channel, self.stubs, self.timeout = channel, stubs, timeout
        self.versions = [v for v in ('reflection_v1', 'reflection_v1alpha') if v in stubs]
        self.files = {}  # file name → FileDescriptorProto

    def ask(self, **request):
        last = None
        while self.versions:
            pb2, pb2_grpc = self.stubs[self.versions[0]]
            stub = pb2_grpc.ServerReflectionStub(self.channel)
            try:
                replies = stub.ServerReflectionInfo(iter([pb2.ServerReflectionRequest(**request)]), timeout=self.timeout)
                reply = next(iter(replies))
            except grpc.RpcError as e:
                last = e
                if e.code() == grpc.StatusCode.UNIMPLEMENTED and len(self.versions) > 1:
                    self.versions.pop(0)
                    continue
                raise RpcFailed(e)
            which = reply.WhichOneof('message_response')
            if which == 'error_response':
                raise LocalError('server reflection: %s (code %d)' % (reply.error_response.error_message, reply.error_response.error_code))
            return reply
        raise RpcFailed(last)

    def services(self):
        return sorted(s.name for s in self.ask(list_services='').list_services_response.service)

    def add(self, reply):
        """Keeps the files of a file_descriptor_response; returns their names."""
        names = []
        for raw in reply.file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            self.files.setdefault(fd.name, fd)
            names.append(fd.name)
        return names

    def pool_with(self, symbol):
        """A descriptor pool holding the files reflection returns for `symbol` and everything they import."""
        pool = descriptor_pool.DescriptorPool()
        added, adding = set(), set()

        def add(name, importer):
            if name in added:
                return
            if name in adding:
                raise LocalError(f'server reflection returned an import cycle through {name}')
            if name not in self.files:
                self.add(self.ask(file_by_filename=name))
                if name not in self.files:
                    raise LocalError(f'server reflection did not return {name} (imported by {importer})')
            adding.add(name)
            for dep in self.files[name].dependency:
                add(dep, name)
            try:
                pool.Add(self.files[name])
            except (TypeError, ValueError) as e:  # the C++ pool names what is wrong
                reason = ' '.join(str(e).replace("Couldn't build proto file into descriptor pool!", '').split())
                raise LocalError(f'the server\'s reflected descriptor {name} is invalid: {reason}')
            adding.discard(name)
            added.add(name)

        for name in self.add(self.ask(file_containing_symbol=symbol)):
            add(name, symbol)
        return pool


def find(pool, symbol):
    """(kind, descriptor) for a service, method, message or enum name, as grpcurl describe resolves it."""
    symbol = symbol.lstrip('.')
    for kind, lookup in (('service', pool.FindServiceByName), ('message', pool.FindMessageTypeByName),
                         ('enum', pool.FindEnumTypeByName), ('method', pool.FindMethodByName)):
        try:
            return kind, lookup(symbol)
        except KeyError:
            pass
    raise LocalError(f'symbol not found: {symbol}')


# --- describe: grpcurl's text --------------------------------------------------

def rpc_line(m):
    cs = 'stream ' if m.client_streaming else ''
    ss = 'stream ' if m.server_streaming else ''
    return f'rpc {m.name} ( {cs}.{m.input_type.full_name} ) returns ( {ss}.{m.output_type.full_name} );'


def streaming(pool, method):
    """Method descriptors do not say whether they stream; their protos do."""
    proto = descriptor_pb2.ServiceDescriptorProto()
    method.containing_service.CopyToProto(proto)
    m = next(x for x in proto.method if x.name == method.name)
    return m.client_streaming, m.server_streaming


class MethodView:
    def __init__(self, pool, method):
        self.name, self.input_type, self.output_type = method.name, method.input_type, method.output_type
        self.client_streaming, self.server_streaming = streaming(pool, method)


TYPES = {v: k[5:].lower() for k, v in vars(descriptor_pb2.FieldDescriptorProto).items() if k.startswith('TYPE_')}


def field_line(f):
    if f.type in (f.TYPE_MESSAGE, f.TYPE_ENUM):
        typ = '.' + (f.message_type or f.enum_type).full_name
    else:
        typ = TYPES[f.type]
    if f.message_type is not None and f.message_type.GetOptions().map_entry:
        k, v = f.message_type.fields_by_name['key'], f.message_type.fields_by_name['value']
        vt = '.' + (v.message_type or v.enum_type).full_name if v.type in (v.TYPE_MESSAGE, v.TYPE_ENUM) else TYPES[v.type]
        return f'map<{TYPES[k.type]}, {vt}> {f.name} = {f.number};'
    label = 'repeated ' if f.label == f.LABEL_REPEATED else ''
    return f'{label}{typ} {f.name} = {f.number};'


def message_lines(m, indent=''):
    lines = [f'{indent}message {m.name} {{']
    oneofs_done = set()
    for f in m.fields:
        o = f.containing_oneof
        if o is not None and not o.name.startswith('_'):  # synthetic oneofs (proto3 optional) are not printed
            if o.name in oneofs_done:
                continue
            oneofs_done.add(o.name)
            lines.append(f'{indent}  oneof {o.name} {{')
            lines += [f'{indent}    {field_line(x)}' for x in o.fields]
            lines.append(f'{indent}  }}')
        else:
            prefix = 'optional ' if o is not None else ''
            lines.append(f'{indent}  {prefix}{field_line(f)}')
    for nested in m.nested_types:
        if not nested.GetOptions().map_entry:
            lines += message_lines(nested, indent + '  ')
    for e in m.enum_types:
        lines += enum_lines(e, indent + '  ')
    lines.append(f'{indent}}}')
    return lines


def enum_lines(e, indent=''):
    return [f'{indent}enum {e.name} {{', *[f'{indent}  {v.name} = {v.number};' for v in e.values], f'{indent}}}']


def describe(pool, symbol):
    kind, d = find(pool, symbol)
    if kind == 'service':
        body = [f'service {d.name} {{', *['  ' + rpc_line(MethodView(pool, m)) for m in d.methods], '}']
    elif kind == 'method':
        body = [rpc_line(MethodView(pool, d))]
    elif kind == 'message':
        body = message_lines(d)
    else:
        body = enum_lines(d)
    return '\n'.join([f'{d.full_name} is a{"n" if kind == "enum" else ""} {kind}:', *body])


# --- call ---------------------------------------------------------------------

def message_class(pool, descriptor):
    if hasattr(message_factory, 'GetMessageClass'):  # protobuf >= 4.22
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def json_messages(text):
    """grpcurl's -d: zero or more JSON objects, one after another."""
    decoder, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return out
        value, i = decoder.raw_decode(text, i)
        out.append(value)


def call(channel, reflection, target, data, timeout):
    service, sep, method = target.replace('/', '.').rpartition('.')
    if not sep or not service:
        fail(EXIT_USAGE, f'call needs SERVICE/METHOD, got {target!r}')
    pool = reflection.pool_with(service)
    try:
        svc = pool.FindServiceByName(service)
    except KeyError:
        raise LocalError(f'service not found: {service}')
    m = svc.methods_by_name.get(method)
    if m is None:
        raise LocalError(f'service {service} has no method {method}')
    client_streaming, server_streaming = streaming(pool, m)
    Req, Res = message_class(pool, m.input_type), message_class(pool, m.output_type)
    try:
        requests = [json_format.ParseDict(v, Req()) for v in json_messages(data or '')]
    except (ValueError, json_format.ParseError) as e:
        raise LocalError(f'bad request data for {m.input_type.full_name}: {e}')
    if not requests and not client_streaming:
        requests = [Req()]
    if len(requests) > 1 and not client_streaming:
        raise LocalError(f'{service}/{method} takes one request, --data has {len(requests)}')
    path = f'/{service}/{method}'
    ser, de = (lambda msg: msg.SerializeToString()), Res.FromString
    kinds = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
             (True, False): channel.stream_unary, (True, True): channel.stream_stream}
    rpc = kinds[(client_streaming, server_streaming)](path, request_serializer=ser, response_deserializer=de)
    arg = iter(requests) if client_streaming else requests[0]
    replies = rpc(arg, timeout=timeout)
    for reply in (replies if server_streaming else [replies]):
        print(json_format.MessageToJson(reply, indent=2))
        sys.stdout.flush()


# --- canonical ------------------------------------------------------------------

def canonical(reflection, symbol):
    """JSON lines on stdin, each a `symbol` message as proto3 JSON → the same
    message as json_format prints it, default-valued fields included. Parsing
    is json_format's strict one: an unknown field or a wrong type fails."""
    pool = reflection.pool_with(symbol)
    try:
        Msg = message_class(pool, pool.FindMessageTypeByName(symbol))
    except KeyError:
        raise LocalError(f'message not found: {symbol}')
    # protobuf < 5.26 names the option including_default_value_fields.
    import inspect
    params = inspect.signature(json_format.MessageToDict).parameters
    defaults = {'always_print_fields_with_no_presence': True} if 'always_print_fields_with_no_presence' in params else {'including_default_value_fields': True}
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            msg = json_format.Parse(line, Msg())
        except json_format.ParseError as e:
            raise LocalError(f'not canonical {symbol} JSON: {e}')
        print(json.dumps(json_format.MessageToDict(msg, **defaults)))


# --- main -----------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(prog='grpc_core_client.py', description='grpcurl-like client on grpc-core (list, describe, call).')
    p.add_argument('--cacert', help='CA certificate the server must chain to (PEM)')
    p.add_argument('--cert', help='client certificate (PEM); leave out with --key for a call without one')
    p.add_argument('--key', help='client private key (PEM)')
    p.add_argument('--authority', help=':authority and the name checked against the server certificate')
    p.add_argument('--max-time', type=float, default=10.0, help='seconds each RPC may take (default 10)')
    p.add_argument('address', help='host:port or unix:/path')
    sub = p.add_subparsers(dest='command', required=True)
    sub.add_parser('list', help='services, by server reflection')
    d = sub.add_parser('describe', help='a service, method, message or enum, from reflected descriptors')
    d.add_argument('symbol', nargs='?')
    c = sub.add_parser('call', help='call SERVICE/METHOD with a JSON request, print JSON replies')
    c.add_argument('method')
    c.add_argument('-d', '--data', default='', help='JSON request (several objects for client streams)')
    j = sub.add_parser('canonical', help='read proto3 JSON lines of MESSAGE on stdin, print them as json_format does (defaults included)')
    j.add_argument('message')
    args = p.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        p.error('--cert and --key go together')
    return args


def main(argv):
    args = parse_args(argv)
    stubs = load_stubs()
    channel = open_channel(args)
    reflection = Reflection(channel, stubs, args.max_time)
    try:
        if args.command == 'list':
            print('\n'.join(reflection.services()))
        elif args.command == 'describe':
            symbols = [args.symbol] if args.symbol else reflection.services()
            texts = [describe(reflection.pool_with(s), s) for s in symbols]
            print('\n\n'.join(texts) if len(texts) > 1 else texts[0])
        elif args.command == 'canonical':
            canonical(reflection, args.message)
        else:
            call(channel, reflection, args.method, args.data, args.max_time)
    except RpcFailed as e:
        fail(64 + e.code.value[0], f'{e.code.name}: {e.details}')
    except grpc.RpcError as e:
        r = RpcFailed(e)
        fail(64 + r.code.value[0], f'{r.code.name}: {r.details}')
    except LocalError as e:
        fail(EXIT_LOCAL, str(e))
    finally:
        channel.close()
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
