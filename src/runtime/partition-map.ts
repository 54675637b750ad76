/**
 * Maps a range of the partition file into memory through native/partition_map.cc (no copy), when
 * that addon was built at install time and SPARKRING_MAP_PARTITIONS is not 0; otherwise the range
 * is read into a fresh buffer. Both give the same bytes.
 */
import { open } from 'node:fs/promises';
import { mapAddon } from '../util/addons.js';

type MapRange = (path: string, offset: number, length: number) => Uint8Array;

/** The addon's mapRange, or undefined when it is not built or is turned off. */
export function partitionMapper(): MapRange | undefined {
  if (process.env.SPARKRING_MAP_PARTITIONS === '0') return undefined;
  return mapAddon()?.mapRange;
}

/** Bytes [offset, offset + length) of the file at `path`, mapped when it can be, else read. */
export async function fileRange(path: string, offset: number, length: number): Promise<Uint8Array> {
  const mapRange = partitionMapper();
  if (mapRange) return mapRange(path, offset, length);
  const file = await open(path, 'r');
  try {
    const bytes = Buffer.allocUnsafeSlow(length);
    const { bytesRead } = await file.read(bytes, 0, length, offset);
    if (bytesRead !== length)
      throw new RangeError(`${path} holds ${offset + bytesRead} bytes, fewer than the ${offset + length} asked for`);
    return bytes;
  } finally {
    await file.close();
  }
}
