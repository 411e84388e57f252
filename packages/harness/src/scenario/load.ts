// Loading a scenario: a built-in name (packages/harness/scenarios/<name>.yaml) or a .yaml/.yml/.json
// file → text → YAML/JSON → schema.ts → a Scenario the runner can use as is.
//
// Everything that can go wrong with a user's file ends as one ScenarioError whose message is one
// line naming the file, where in it, and what is wrong (with what is allowed and a did-you-mean):
//   my.yaml: devices[0].policy: "saef" is not one of safe, unsafe-skip-read-retry (did you mean safe?)
//   my.yaml:3:7: <the YAML parser's message>
//   nope.yaml: no such scenario file or built-in scenario (built-ins: fork-storm, hmm-selftest, …)
// The CLI prints the message and exits 2; a stack trace would only hide the line that matters.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument } from 'yaml';
import { firstIssue, makeScenarioSchema } from './schema.js';
import type { Scenario } from './types.js';
import { didYouMean } from './units.js';

/** A scenario that cannot be loaded; `message` is the one line to show. */
export class ScenarioError extends Error {
  override name = 'ScenarioError';
  constructor(
    message: string,
    /** The file (or built-in) the error is in. */
    readonly source: string,
    /** Where in it: "devices[0].policy", "3:7" for a syntax error, "" for the whole file. */
    readonly where = '',
  ) {
    super(message);
    // The message is the whole story: an uncaught ScenarioError shows it, not the harness's frames.
    this.stack = `${this.name}: ${message}`;
  }
}

/** The directory of the built-in scenarios, relative to this module (dist/scenario/ → scenarios/). */
export const BUILTIN_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));

const EXTENSIONS = ['.yaml', '.yml', '.json'];

/** The scenario names (`<name>.yaml`) in `dir`, sorted; none if the directory is missing. */
function yamlNamesIn(dir: string): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** Names of the built-in scenarios, sorted. */
export function builtinNames(): string[] {
  return yamlNamesIn(BUILTIN_DIR);
}

/**
 * Built-ins reproducing real bug reports (scenarios/reports/<name>.yaml; harness README "Real
 * reports"): run by name like the others, listed by `svmsim list`, but not in `svmsim compare`'s
 * default set (`npm start`): several run simulated minutes (a 120 s hung-task timeout, 1 s -EBUSY
 * windows) and their rows compare a driver with its buggy variant, not the policies.
 */
export const REPORTS_DIR = path.join(BUILTIN_DIR, 'reports');

/** Names of the real-report built-ins, sorted. */
export function reportScenarioNames(): string[] {
  return yamlNamesIn(REPORTS_DIR);
}

/** The real-report built-ins with their descriptions, sorted by name. */
export function listReportScenarios(): { name: string; description: string }[] {
  return reportScenarioNames().map((name) => ({ name, description: loadScenario(name).description }));
}

/** The built-in scenarios with their descriptions, sorted by name. */
export function listBuiltinScenarios(): { name: string; description: string }[] {
  return builtinNames().map((name) => {
    const s = loadScenario(name);
    return { name, description: s.description };
  });
}

/**
 * A scenario by built-in name ("ksm") or by path ("./my.yaml", "run.json"). A path is anything
 * with a directory part or a .yaml/.yml/.json extension; a bare word is tried as a built-in first,
 * then as a file. Throws ScenarioError.
 */
export function loadScenario(pathOrName: string): Scenario {
  const t = readScenarioText(pathOrName);
  return parseScenario(t.text, t.sourceName);
}

/** A scenario's text and the name its messages use: what a sweep sends to workers on other machines. */
export interface ScenarioText {
  sourceName: string;
  text: string;
}

/** The text `loadScenario` would parse, found the same way. Throws ScenarioError. */
export function readScenarioText(pathOrName: string): ScenarioText {
  const looksLikePath = pathOrName.includes('/') || pathOrName.includes(path.sep) || EXTENSIONS.some((e) => pathOrName.endsWith(e));
  if (!looksLikePath) {
    const builtin = path.join(BUILTIN_DIR, `${pathOrName}.yaml`);
    if (fs.existsSync(builtin)) return { sourceName: `${pathOrName}.yaml`, text: read(builtin, `${pathOrName}.yaml`) };
    const report = path.join(REPORTS_DIR, `${pathOrName}.yaml`);
    if (fs.existsSync(report)) return { sourceName: `${pathOrName}.yaml`, text: read(report, `${pathOrName}.yaml`) };
  }
  if (!fs.existsSync(pathOrName)) {
    const names = builtinNames();
    const reports = reportScenarioNames();
    const hint = looksLikePath ? '' : didYouMean(pathOrName, [...names, ...reports]);
    const more = reports.length > 0 ? `; real reports: ${reports.join(', ')}` : '';
    throw new ScenarioError(`${pathOrName}: no such scenario file or built-in scenario (built-ins: ${names.join(', ')}${more})${hint}`, pathOrName);
  }
  return { sourceName: pathOrName, text: read(pathOrName, pathOrName) };
}

function read(file: string, source: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'EISDIR' ? 'is a directory, not a scenario file' : `cannot be read (${err.code ?? err.message})`;
    throw new ScenarioError(`${source}: ${why}`, source);
  }
}

/**
 * A scenario from its text. `sourceName` names it in messages and decides the format (.json: JSON,
 * anything else: YAML, of which JSON is a subset anyway); a file without `name` takes the source's
 * base name without extension. Throws ScenarioError.
 */
export function parseScenario(text: string, sourceName: string): Scenario {
  const raw = sourceName.endsWith('.json') ? parseJson(text, sourceName) : parseYaml(text, sourceName);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    const got = raw === null || raw === undefined ? 'nothing' : Array.isArray(raw) ? 'a list' : JSON.stringify(raw);
    throw new ScenarioError(`${sourceName}: expected a scenario (a mapping with processes and phases), got ${got}`, sourceName);
  }
  const base = path.basename(sourceName).replace(/\.(ya?ml|json)$/, '');
  const result = makeScenarioSchema(base || 'scenario').safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  const { path: where, message } = firstIssue(result.error);
  throw new ScenarioError(where ? `${sourceName}: ${where}: ${message}` : `${sourceName}: ${message}`, sourceName, where);
}

function parseYaml(text: string, source: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const err = doc.errors[0];
  if (err) {
    const { line, col } = lineCounter.linePos(err.pos[0]);
    const message = err.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new ScenarioError(`${source}:${line}:${col}: ${message}`, source, `${line}:${col}`);
  }
  try {
    return doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new ScenarioError(`${source}: ${(e as Error).message.split('\n')[0]}`, source);
  }
}

function parseJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    // V8 words it "Unexpected token '}', "<the text>" is not valid JSON", "Expected ',' or '}' after
    // property value in JSON at position 42 (line 3 column 5)" or "Unexpected end of JSON input",
    // and says where only sometimes: the place comes from jsonErrorOffset.
    const full = (e as Error).message;
    const what = full
      .replace(/, (\.\.\.)?"[\s\S]*" is not valid JSON$/, '')
      .replace(/ in JSON at position \d+[\s\S]*$/, '')
      .replace(/ after JSON at position \d+[\s\S]*$/, ' after the JSON value')
      .replace(/ of JSON input$/, ' of input')
      .split('\n')[0];
    const at = /at position (\d+)/.exec(full);
    const pos = jsonErrorOffset(text) ?? (at ? Number(at[1]) : undefined);
    if (pos === undefined) throw new ScenarioError(`${source}: ${what}`, source);
    const before = text.slice(0, pos).split('\n');
    const line = before.length;
    const col = before[before.length - 1].length + 1;
    throw new ScenarioError(`${source}:${line}:${col}: ${what}`, source, `${line}:${col}`);
  }
}

/** Where a JSON text stops being JSON (offset), or undefined if it is JSON: RFC 8259's grammar, walked. */
export function jsonErrorOffset(t: string): number | undefined {
  let i = 0;
  const literal = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null/y;
  const fail = (): never => {
    throw new JsonStop(i);
  };
  const ws = () => {
    while (i < t.length && (t[i] === ' ' || t[i] === '\t' || t[i] === '\n' || t[i] === '\r')) i++;
  };
  const str = () => {
    i++; // the opening quote
    while (i < t.length && t[i] !== '"') {
      if (t.charCodeAt(i) < 0x20) fail();
      i += t[i] === '\\' ? 2 : 1;
    }
    if (i >= t.length) fail();
    i++;
  };
  const value = (): void => {
    ws();
    const c = t[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (t[i] === close) return void i++;
      for (;;) {
        if (c === '{') {
          ws();
          if (t[i] !== '"') fail();
          str();
          ws();
          if (t[i] !== ':') fail();
          i++;
        }
        value();
        ws();
        if (t[i] === ',') i++;
        else if (t[i] === close) return void i++;
        else fail();
      }
    }
    if (c === '"') return str();
    literal.lastIndex = i;
    const m = literal.exec(t);
    if (!m) fail();
    i += m![0].length;
  };
  try {
    value();
    ws();
    if (i < t.length) fail();
    return undefined;
  } catch (e) {
    if (e instanceof JsonStop) return e.offset;
    throw e;
  }
}

class JsonStop {
  constructor(readonly offset: number) {}
}
