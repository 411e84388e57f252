// What the `nvme` actor accepts from other actors: mm's bios (kernel-mm protocol.ts BioSubmit),
// checked before acting (runtime validate.ts). A bio that does not fit is answered bad_message
// (-EINVAL, one line naming the field) and no command is queued.
import type { MessageShape } from '@svmsim/runtime';

const op = (v: unknown) => (v === 'read' || v === 'write' ? undefined : `${JSON.stringify(v)} is not one of read, write`);

export const NVME_SHAPES = {
  bio_submit: { fields: { op, dev: 'str', block: 'id', value: 'num?' }, reply: { type: 'bio_done', value: 0 } },
} satisfies Record<'bio_submit', MessageShape>;
