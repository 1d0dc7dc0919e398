import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { InvalidArgument } from './errors';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { PROTO_FILES, protoDir } from './proto';

/**
 * Proto3's canonical JSON mapping for nfsha's messages, done by protobufjs
 * from the same .proto files the gRPC services use: the HTTP API has no
 * schema of its own. Output follows what protobuf's own json_format prints
 * with default-valued fields included: lowerCamelCase names, 64-bit integers
 * as strings, enums by name, unset message fields left out.
 */

/**
 * protobufjs toObject options for canonical JSON: `longs: String` (uint64 is
 * a JSON string), `enums: String` (enum names), `defaults: true` (scalars and
 * repeated fields at their defaults are printed, as json_format does with
 * default-valued fields included), `json: true` (NaN/Infinity as strings,
 * bytes as base64), `oneofs: false` (no virtual oneof-name field).
 */
export const CANONICAL_JSON: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, json: true, oneofs: false };

let root: protobuf.Root | undefined;

function loadRoot(): protobuf.Root {
  if (root) return root;
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(protoDir(), target));
  r.loadSync([...PROTO_FILES, healthProtoPath], { keepCase: false });
  r.resolveAll();
  return (root = r);
}

/** A message type by its full name, e.g. `nfsha.v1.ClusterStatusReply`. */
export function messageType(fullName: string): protobuf.Type {
  return loadRoot().lookupType(fullName);
}

/**
 * Fields in field-number order, as json_format prints them, and without the
 * nulls `defaults: true` gives unset message fields (canonical JSON leaves
 * them out).
 */
function canonicalOrder(type: protobuf.Type, value: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of [...type.fieldsArray].sort((a, b) => a.id - b.id)) {
    const v = value[field.name];
    if (v === null || v === undefined) continue;
    const sub = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    if (!sub) out[field.name] = v;
    else if (Array.isArray(v)) out[field.name] = v.map((x) => canonicalOrder(sub, x as Record<string, unknown>));
    else out[field.name] = canonicalOrder(sub, v as Record<string, unknown>);
  }
  return out;
}

/**
 * A plain object as the gRPC handlers produce it (proto-loader's shape) →
 * canonical JSON object of message `type`.
 */
export function toCanonicalJson(type: protobuf.Type, plain: object): Record<string, unknown> {
  return canonicalOrder(type, type.toObject(type.fromObject(plain), CANONICAL_JSON));
}

/** `inventory_json` → `inventoryJson`: proto3 JSON accepts both a field's name and its JSON name. */
function jsonName(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * A JSON request body → message `type`, as proto3 JSON parsing does: field
 * names or JSON names, unknown fields refused, wrong types refused (an
 * InvalidArgument naming the field). Returns the proto-loader-shaped object
 * the gRPC handler would receive (defaults filled, longs as numbers).
 */
export function fromJsonBody(type: protobuf.Type, body: unknown): Record<string, unknown> {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgument(`the body must be a JSON object (${type.name})`);
  const renamed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
    const name = jsonName(key);
    if (!type.fields[name]) throw new InvalidArgument(`${type.name} has no field ${JSON.stringify(key)}`);
    if (value !== null) renamed[name] = value;
  }
  const problem = type.verify(renamed);
  if (problem) throw new InvalidArgument(`${type.name}: ${problem}`);
  return type.toObject(type.fromObject(renamed), { longs: Number, enums: String, defaults: true, oneofs: true }) as Record<string, unknown>;
}
