// The harness's version, from its package.json: shards and queue jobs carry it, so that results
// made by another svmsim are refused rather than merged.
import fs from 'node:fs';

export const SVMSIM_VERSION: string = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
