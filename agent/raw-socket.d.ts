// The subset of raw-socket (no published types) that the ICMP prober uses.
declare module 'raw-socket' {
  import { EventEmitter } from 'node:events';
  export interface Socket extends EventEmitter {
    send(buffer: Buffer, offset: number, length: number, address: string,
      beforeCallback: null | (() => void), afterCallback: (error: Error | null, bytes: number) => void): void;
    setOption(level: number, option: number, value: Buffer | number, length?: number): void;
    close(): void;
  }
  export function createSocket(options: { protocol: number; addressFamily?: number }): Socket;
  export function createChecksum(...buffers: Buffer[]): number;
  export function writeChecksum(buffer: Buffer, offset: number, checksum: number): Buffer;
  export const Protocol: { ICMP: number; ICMPv6: number; TCP: number; UDP: number; None: number };
  export const SocketLevel: { SOL_SOCKET: number; IPPROTO_IP: number; IPPROTO_IPV6: number };
  export const SocketOption: { SO_BINDTODEVICE: number; [name: string]: number };
}
