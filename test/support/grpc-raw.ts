import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { TlsSettings } from '../../common/tls';
import { OPERATOR_TLS, testClient } from './pki';

/** A reflection client as grpcurl uses it: lists services and fetches file descriptors, no .proto at hand. */
export function reflectionClient(address: string, tls: TlsSettings = OPERATOR_TLS()) {
  const dir = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto');
  const def = protoLoader.loadSync(path.join(dir, 'grpc/reflection/v1/reflection.proto'), { includeDirs: [dir], keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  return testClient<any>(pkg.grpc.reflection.v1.ServerReflection, address, tls);
}

/** One request on a ServerReflectionInfo stream, as grpcurl sends it. */
function reflect<T>(address: string, request: object, pick: (response: any) => T, tls?: TlsSettings): Promise<T> {
  const client = reflectionClient(address, tls);
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on('data', (r: any) => {
      call.end();
      client.close();
      if (r.error_response) reject(new Error(r.error_response.error_message));
      else resolve(pick(r));
    });
    call.on('error', (err: Error) => { client.close(); reject(err); });
    call.write(request);
  });
}

export function listServices(address: string, tls?: TlsSettings): Promise<string[]> {
  return reflect(address, { list_services: '' }, (r) => r.list_services_response.service.map((s: { name: string }) => s.name).sort(), tls);
}

export function describeSymbol(address: string, symbol: string): Promise<Buffer[]> {
  return reflect(address, { file_containing_symbol: symbol }, (r) => r.file_descriptor_response.file_descriptor_proto);
}

export function healthCheck(address: string, service: string, tls: TlsSettings = OPERATOR_TLS()): Promise<string> {
  const def = protoLoader.loadSync(healthProtoPath, { enums: String });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = testClient<any>(pkg.grpc.health.v1.Health, address, tls);
  return new Promise((resolve, reject) => {
    client.Check({ service }, { deadline: new Date(Date.now() + 3000) }, (err: Error | null, r: { status: string }) => {
      client.close();
      if (err) reject(err);
      else resolve(r.status);
    });
  });
}
