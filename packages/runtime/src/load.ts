// Building an actor from its spec, in whichever thread will run it.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RunSetupError } from './errors.js';
import { ACTOR_ID_PATTERN } from './trace.js';
import type { Actor, ActorSpec, Message } from './types.js';

export function moduleUrl(module: string): string {
  return path.isAbsolute(module) ? pathToFileURL(module).href : module;
}

export async function loadActor(spec: ActorSpec): Promise<Actor<Message>> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(moduleUrl(spec.module))) as Record<string, unknown>;
  } catch (e) {
    throw new RunSetupError(`actor ${spec.id}: cannot load module ${spec.module}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const name = spec.exportName ?? 'create';
  const factory = mod[name];
  if (typeof factory !== 'function') throw new RunSetupError(`actor ${spec.id}: module ${spec.module} has no exported factory '${name}'`);
  const actor = factory(spec.config, spec.id) as Actor<Message>;
  if (actor === null || typeof actor !== 'object' || typeof actor.receive !== 'function' || typeof actor.summary !== 'function') {
    throw new RunSetupError(`actor ${spec.id}: factory '${name}' of ${spec.module} did not return an actor (receive and summary)`);
  }
  return actor;
}

/** Ids must be unique and safe to write into the trace unescaped. */
export function checkSpecs(specs: readonly { id: string }[]): void {
  if (specs.length === 0) throw new RunSetupError('a run needs at least one actor');
  const seen = new Set<string>();
  for (const s of specs) {
    if (!ACTOR_ID_PATTERN.test(s.id)) throw new RunSetupError(`actor id ${JSON.stringify(s.id)} must match ${ACTOR_ID_PATTERN}`);
    if (seen.has(s.id)) throw new RunSetupError(`actor id ${s.id} appears twice`);
    seen.add(s.id);
  }
}
