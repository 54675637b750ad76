/**
 * sparkring's small addons (scripts/build-native.mjs builds them at install), each loaded once.
 * Any may be absent (no compiler or Node headers at install); its callers then do without it.
 */
import { createRequire } from 'node:module';
import { packageFile } from './package-file.js';

/** native/partition_map.cc: partition files mapped read-only; the ring's shared regions made, handed over and mapped. */
export interface MapAddon {
  mapRange(path: string, offset: number, length: number): Uint8Array;
  createRegion(length: number): { bytes: Uint8Array; fd: number };
  closeFd(fd: number): void;
  peerUid(socketFd: number): number;
  sendFd(socketFd: number, fd: number): void;
  connectRegion(name: string, proof: Uint8Array): number;
  receiveRegion(socketFd: number, length: number): Uint8Array | null;
}

/**
 * native/ring_reduce.cc: the ring's reductions as vectorized loops (op: 0 sum, 1 max, 2 min, 3 mean's
 * last, 4 set), and the 16-bit wire's conversions (format: 0 fp16, 1 bf16; collective/half-precision.ts).
 */
export interface ReduceAddon {
  reduce(dst: ArrayBufferView, at: number, src: ArrayBufferView, op: number, n: number): void;
  encodeHalf(dst: Uint8Array, src: Float32Array, at: number, format: number, residual?: Float32Array): void;
  reduceHalf(
    dst: Float32Array,
    at: number,
    src: Uint8Array,
    op: number,
    n: number,
    format: number,
    round: boolean,
    residual?: Float32Array,
  ): void;
}

/** native/frame_seal.cc: AES-256-GCM of the ring's sealed frames, in place (collective/link-seal.ts). */
export interface SealAddon {
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, src: Uint8Array, dst: Uint8Array, tag: Uint8Array): void;
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, buf: Uint8Array, tag: Uint8Array): boolean;
}

/** Relative to the package root (or to an unpacked runtime bundle's root). */
export const MAP_ADDON = 'native/build/partition_map.node';
export const REDUCE_ADDON = 'native/build/ring_reduce.node';
export const SEAL_ADDON = 'native/build/frame_seal.node';

const loaded = new Map<string, unknown>();

function load<T>(relative: string): T | undefined {
  if (!loaded.has(relative)) {
    try {
      loaded.set(relative, createRequire(import.meta.url)(packageFile(relative)));
    } catch {
      loaded.set(relative, undefined);
    }
  }
  return loaded.get(relative) as T | undefined;
}

export const mapAddon = (): MapAddon | undefined => load<MapAddon>(MAP_ADDON);
export const reduceAddon = (): ReduceAddon | undefined => load<ReduceAddon>(REDUCE_ADDON);
export const sealAddon = (): SealAddon | undefined => load<SealAddon>(SEAL_ADDON);
