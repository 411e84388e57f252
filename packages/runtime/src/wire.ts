// The wire format between actor threads: a batch of envelopes for one destination, packed with
// msgpackr (records on; each batch carries its own record definitions, so batches decode
// independently) into a buffer of its own, which is transferred rather than cloned.
import { Packr, Unpackr } from 'msgpackr';
import type { Envelope } from './types.js';

const packr = new Packr({ useRecords: true, moreTypes: true });
const unpackr = new Unpackr({ useRecords: true, moreTypes: true });

/** Returns a buffer that owns its ArrayBuffer (msgpackr reuses its own), safe to transfer. */
export function packBatch(batch: Envelope[]): Uint8Array {
  return packr.pack(batch).slice();
}

export class WireError extends Error {
  override name = 'WireError';
}

/** Decodes and checks the shape of a batch; a malformed one throws a WireError naming the fault. */
export function unpackBatch(buf: Uint8Array, from: string): Envelope[] {
  let batch: unknown;
  try {
    batch = unpackr.unpack(buf);
  } catch (e) {
    throw new WireError(`malformed batch from ${from}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!Array.isArray(batch)) throw new WireError(`malformed batch from ${from}: not an array of envelopes`);
  for (const env of batch as Envelope[]) {
    if (env === null || typeof env !== 'object' || env.from !== from || typeof env.id !== 'number' || typeof env.msg?.type !== 'string') {
      throw new WireError(`malformed envelope from ${from}: ${JSON.stringify(env)?.slice(0, 200)}`);
    }
  }
  return batch as Envelope[];
}
