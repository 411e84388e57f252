// Hand-made traces for the analysis tests: the lines a run would write, built by hand so that the
// right answer of every figure is known. Written in the binary format with the runtime's writer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TraceSink } from '@svmsim/runtime/trace';

type Msg = { type: string; [k: string]: unknown };

interface Rec {
  kind: 'send' | 'recv' | 'event';
  t: number;
  actor: string;
  peer?: string;
  id?: number;
  replyTo?: number;
  request?: boolean;
  msg?: Msg;
  ev?: string;
  fields?: Record<string, unknown>;
}

export class TraceBuilder {
  private readonly recs: Rec[] = [];
  private readonly ids = new Map<string, number>();

  private nextId(actor: string): number {
    const n = (this.ids.get(actor) ?? 0) + 1;
    this.ids.set(actor, n);
    return n;
  }

  /** A request from `from` to `to` sent at `t`, received at `recvT`; returns its id. */
  request(t: number, from: string, to: string, msg: Msg, recvT = t): number {
    const id = this.nextId(from);
    this.recs.push({ kind: 'send', t, actor: from, peer: to, id, request: true, msg });
    this.recs.push({ kind: 'recv', t: recvT, actor: to, peer: from, id });
    return id;
  }

  /** `from` answers request `replyTo` of `to` at `t`; `to` receives it at `recvT`. */
  reply(t: number, from: string, to: string, replyTo: number, msg: Msg, recvT = t): void {
    const id = this.nextId(from);
    this.recs.push({ kind: 'send', t, actor: from, peer: to, id, replyTo, msg });
    this.recs.push({ kind: 'recv', t: recvT, actor: to, peer: from, id, replyTo });
  }

  /** A one-way message. */
  send(t: number, from: string, to: string, msg: Msg, recvT = t): void {
    const id = this.nextId(from);
    this.recs.push({ kind: 'send', t, actor: from, peer: to, id, msg });
    this.recs.push({ kind: 'recv', t: recvT, actor: to, peer: from, id });
  }

  event(t: number, actor: string, ev: string, fields: Record<string, unknown> = {}): this {
    this.recs.push({ kind: 'event', t, actor, ev, fields });
    return this;
  }

  /** Writes the trace (lines sorted by time, stable) into a new directory; returns it. */
  write(dir = fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-handmade-'))): string {
    const sink = new TraceSink(path.join(dir, 'trace.svmt'));
    const sorted = this.recs.map((r, i) => ({ r, i })).sort((a, b) => a.r.t - b.r.t || a.i - b.i);
    for (const { r } of sorted) {
      if (r.kind === 'send') sink.encoder.send(r.t, r.actor, r.peer!, r.id!, r.replyTo ?? 0, r.request === true, r.msg!);
      else if (r.kind === 'recv') sink.encoder.recv(r.t, r.actor, r.peer!, r.id!, r.replyTo ?? 0);
      else sink.event(r.t, r.actor, r.ev!, r.fields!);
    }
    sink.close();
    return dir;
  }
}
