// The scenario format: units, the schema's defaults and normalisation, the built-in scenarios, and
// the one-line errors a user sees for a bad file. Each message is compared whole, because the
// message is the interface: where, what was given, what is allowed, and the likely intent.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { PROT_EXEC, PROT_NONE, PROT_READ, PROT_WRITE } from '@svmsim/kernel-mm';
import { BUILTIN_DIR, ScenarioError, listBuiltinScenarios, loadScenario, parseScenario } from '@svmsim/harness/scenario/load';
import { formatDuration, parseDuration, parseProt } from '@svmsim/harness/scenario/units';
import { scenarioActors } from '@svmsim/harness/run/actors';
import type { Scenario } from '@svmsim/harness/scenario/types';

const GPU_SCENARIOS = ['userptr-walk', 'gup-vs-readonly', 'kswapd-vs-compute', 'two-gpu-munmap'];
const RDMA_SCENARIOS = ['two-drivers', 'odp-prefetch', 'odp-vs-reclaim'];
const NVME_SCENARIOS = ['direct-io-vs-migration', 'nvme-reset', 'p2p'];
const BUILTINS = ['direct-io-vs-migration', 'fork-storm', 'gup-vs-readonly', 'hmm-selftest', 'ksm', 'kswapd-vs-compute', 'memory-pressure', 'mirror-race', 'nvme-reset', 'odp-prefetch', 'odp-vs-reclaim', 'p2p', 'two-drivers', 'two-gpu-munmap', 'userptr-walk', 'writeback'];

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'svmsim-scenario-'));

/** The message of what `fn` throws, checked to be one ScenarioError line. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n');
    expect((e as Error).stack).toBe(`ScenarioError: ${msg}`);
    return msg;
  }
  throw new Error('expected a ScenarioError, nothing was thrown');
}

// A valid scenario; each bad case below changes one thing in it.
const GOOD = `
devices: [{ id: mirror0 }]
files: [{ name: data, pages: 8 }]
processes:
  - name: app
    vmas:
      - { name: buf, pages: 4 }
      - { name: map, file: data, pages: 8, shared: true }
phases:
  - script:
      process: app
      steps:
        - { store: { vma: buf, page: 0, value: 42 }, expect: { ret: 0 } }
        - dmirror: { device: mirror0, cmd: READ, vma: buf, pages: 2 }
          expect: { ret: 0, data: [42, 0] }
  - workload: { process: app, ops: 10, mix: { load: 1 } }
`;

/** GOOD with `from` replaced by `to` (which must occur). */
function variant(from: string, to: string): string {
  expect(GOOD).toContain(from);
  return GOOD.replace(from, to);
}

describe('units', () => {
  it('parseDuration: numbers are ns; strings take ns, us, µs, ms, s, m, h, several components summed', () => {
    expect(parseDuration(1500)).toBe(1500);
    expect(parseDuration('120ns')).toBe(120);
    expect(parseDuration('300us')).toBe(300_000);
    expect(parseDuration('300µs')).toBe(300_000);
    expect(parseDuration('50ms')).toBe(50_000_000);
    expect(parseDuration('1.5s')).toBe(1_500_000_000);
    expect(parseDuration('2 s')).toBe(2e9);
    expect(parseDuration('1h')).toBe(3600e9);
    expect(parseDuration('2m 30s')).toBe(150e9);
    expect(parseDuration('1h30m')).toBe(5400e9);
  });

  it('parseDuration: errors quote the input and say what is accepted', () => {
    expect(() => parseDuration('50 mss')).toThrow('"50 mss" is not a duration: unknown unit "mss"; units: ns, us, µs, ms, s, m, h (did you mean ms?)');
    expect(() => parseDuration('500')).toThrow('"500" is not a duration: "500" has no unit; units: ns, us, µs, ms, s, m, h');
    expect(() => parseDuration('-5ms')).toThrow('"-5ms" is not a duration: it is negative');
    expect(() => parseDuration('')).toThrow('"" is not a duration: expected a number and a unit (ns, us, µs, ms, s, m, h), such as "50ms"');
    expect(() => parseDuration(-1)).toThrow('-1 is not a duration: it is negative');
    expect(() => parseDuration(Infinity)).toThrow('Infinity is not a duration: expected a finite number of ns');
  });

  it('formatDuration: for people, and parseDuration reads it back', () => {
    expect(formatDuration(120)).toBe('120 ns');
    expect(formatDuration(1200)).toBe('1.2 µs');
    expect(formatDuration(8_214_000)).toBe('8.214 ms');
    expect(formatDuration(3e9)).toBe('3 s');
    expect(formatDuration(3598e9)).toBe('59m 58s');
    expect(formatDuration(3723e9)).toBe('1h 2m 3s');
    expect(formatDuration(3600e9)).toBe('1h');
    expect(formatDuration(999_999_999)).toBe('1 s'); // rounds into the next unit, not "1000 ms"
    expect(() => formatDuration(NaN)).toThrow('formatDuration: NaN is not a finite number of ns');
    for (const ns of [120, 1200, 8_214_000, 3e9, 3598e9, 3723e9]) expect(parseDuration(formatDuration(ns))).toBe(ns);
  });

  it('parseProt: "none" or r, w, x each at most once', () => {
    expect(parseProt('none')).toBe(PROT_NONE);
    expect(parseProt('r')).toBe(PROT_READ);
    expect(parseProt('rw')).toBe(PROT_READ | PROT_WRITE);
    expect(parseProt('rwx')).toBe(PROT_READ | PROT_WRITE | PROT_EXEC);
    expect(parseProt('wr')).toBe(PROT_READ | PROT_WRITE);
    expect(() => parseProt('rwz')).toThrow('"rwz" is not a protection: "z" is not r, w or x; expected "none" or letters r, w, x, each at most once ("r", "rw", "rx", "rwx")');
    expect(() => parseProt('rr')).toThrow('"rr" is not a protection: "r" appears twice');
    expect(() => parseProt('non')).toThrow('(did you mean none?)');
    expect(() => parseProt('')).toThrow('"" is not a protection');
  });
});

describe('built-in scenarios', () => {
  it('are listed with their descriptions, and each one parses', () => {
    const list = listBuiltinScenarios();
    expect(list.map((s) => s.name)).toEqual(BUILTINS);
    for (const { name, description } of list) {
      expect(description, name).toMatch(/^\S.{20,}$/);
      const s = loadScenario(name);
      expect(s.name).toBe(name);
      expect(s.description).toBe(description);
      // Short runs on small machines, so that `svmsim compare` over all of them is quick; but
      // userptr-walk's point is a large BO, and kswapd-vs-compute's an hour-long job (virtual time).
      expect(s.machine.frames, name).toBeGreaterThanOrEqual(64);
      expect(s.machine.frames, name).toBeLessThanOrEqual(name === 'userptr-walk' ? 131072 : 512);
      // Those whose story is an hour-long job or a 30 s / 60 s timeout may run longer.
      expect(s.duration, name).toBeLessThanOrEqual(name === 'kswapd-vs-compute' || name === 'nvme-reset' ? 2 * 3600e9 : 100e6);
      // Every scenario drives a device: the mirror, the GPU in the GPU's scenarios, the NIC in the RDMA ones, the NVMe controller in the NVMe ones.
      const kind = GPU_SCENARIOS.includes(name) ? 'gpu' : RDMA_SCENARIOS.includes(name) ? 'rdma' : NVME_SCENARIOS.includes(name) ? 'nvme' : 'dmirror';
      expect(s.devices.map((d) => d.kind), name).toContain(kind);
      // Those report their own story first.
      if (kind !== 'dmirror') expect(s.report, name).toBeDefined();
    }
  });

  it('can be loaded by path as well as by name', () => {
    const byPath = loadScenario(path.join(BUILTIN_DIR, 'ksm.yaml'));
    expect(byPath).toEqual(loadScenario('ksm'));
  });

  it('hmm-selftest: the kernel test cases as script phases, with expects', () => {
    const s = loadScenario('hmm-selftest');
    expect(s.phases.map((p) => `${p.kind} ${p.name}`)).toEqual([
      'script anon_read', 'script anon_write', 'script anon_write_prot', 'script migrate', 'script snapshot',
    ]);
    const steps = s.phases.flatMap((p) => (p.kind === 'script' ? p.steps : []));
    const eperm = steps.find((st) => 'action' in st && st.expect?.ret === 'EPERM');
    expect(eperm && 'action' in eperm && eperm.action).toMatchObject({ op: 'dmirror', cmd: 'HMM_DMIRROR_WRITE', vma: 'ro' });
    const snap = steps.at(-1)!;
    expect(snap).toMatchObject({ action: { op: 'dmirror', cmd: 'HMM_DMIRROR_SNAPSHOT' }, expect: { snapshot: [0x00, 0x11, 0x02, 0x01, 0xff] } });
  });
});

describe('defaults and normalisation', () => {
  it('fills every default and normalises steps and phases to the shapes of types.ts', () => {
    const s = parseScenario(
      `
processes:
  - name: app
    vmas: [{ name: buf, pages: 4 }]
devices: [{ id: mirror0 }]
phases:
  - script:
      process: app
      steps:
        - store: { vma: buf }
        - { load: { vma: buf, page: 1, pages: 2 }, name: read two, expect: { ret: -EFAULT } }
        - group:
            - dmirror: { device: mirror0, cmd: migrate-to-dev, vma: buf }
            - fork: { steps: [{ exit: }] }
        - sleep: 2ms
  - workload: { process: app, duration: 1ms, mix: { store: 1 } }
`,
      'defaults.yaml',
    );
    const want: Scenario = {
      name: 'defaults',
      description: '',
      seed: 1,
      duration: 1e9,
      machine: { kernel: 'latest', profile: 'default', frames: 1024, movableFrames: 0, swapPages: 1024, kswapd: true, diskLatency: 10_000, costs: {}, dmabufMoveNotify: false, notifierPasses: 1 },
      files: [],
      faults: [],
      devices: [{ id: 'mirror0', kind: 'dmirror', policy: 'safe', devicePages: 256 }],
      processes: [{ name: 'app', vmas: [{ name: 'buf', kind: 'anon', pages: 4, prot: 'rw', shared: false, offset: 0, mergeable: false }], memlock: 2048, capIpcLock: false }],
      phases: [
        {
          kind: 'script',
          name: 'script 0',
          process: 'app',
          steps: [
            { name: 'store 0', action: { op: 'store', vma: 'buf', page: 0, pages: 1, value: 'unique' } },
            { name: 'read two', action: { op: 'load', vma: 'buf', page: 1, pages: 2 }, expect: { ret: 'EFAULT' } },
            {
              name: 'group 2',
              group: [
                { name: 'dmirror 0', action: { op: 'dmirror', device: 'mirror0', cmd: 'HMM_DMIRROR_MIGRATE_TO_DEV', vma: 'buf', page: 0, pages: 1 } },
                { name: 'fork 1', action: { op: 'fork', steps: [{ name: 'exit 0', action: { op: 'exit' } }], wait: true } },
              ],
            },
            { name: 'sleep 3', action: { op: 'sleep', duration: 2e6 } },
          ],
        },
        { kind: 'workload', name: 'workload 1', process: 'app', threads: 1, duration: 1e6, mix: { store: 1 }, pattern: 'random', hotShare: 0.9, stride: 1, gpuTouch: 0.01, gpuJob: 100_000, gpuWrite: true, gpuQueue: 'gfx', rdmaPages: 1, rdmaAdvice: 'prefetch-write', rdmaFlush: true, dioPages: 8 },
      ],
    };
    expect(s).toEqual(want);
    // Optional fields are absent, not undefined (the report prints the scenario as JSON).
    expect(Object.keys(s.machine)).not.toContain('watermarks');
    expect(Object.keys(s.processes[0].vmas[0])).not.toContain('file');
  });

  it("a gpu's svm-fault options reach its actor's config (faultWindowPages, faultPermission)", () => {
    const s = parseScenario(
      `
name: gpu-opts
devices: [{ id: gpu0, kind: gpu, policy: svm-fault, faultWindowPages: 4, faultPermission: vma }]
processes: [{ name: app, vmas: [{ name: buf, pages: 4, gpu: gpu0 }] }]
phases:
  - script: { process: app, steps: [{ store: { vma: buf, page: 0, value: 1 } }] }
`,
      'gpu-opts.yaml',
    );
    expect(s.devices).toEqual([{ id: 'gpu0', kind: 'gpu', policy: 'svm-fault', devicePages: 64, faultWindowPages: 4, faultPermission: 'vma' }]);
    const gpu = scenarioActors(s, { seed: 1, checkInvariants: false }).find((a) => a.id === 'gpu0')!;
    expect((gpu.config as { svm: unknown }).svm).toEqual({ vramPages: 64, faultWindowPages: 4, faultPermission: 'vma' });
    // Left out: the driver's default ('access', nouveau).
    const plain = parseScenario(
      `
name: plain
devices: [{ id: gpu0, kind: gpu, policy: svm-fault }]
processes: [{ name: app, vmas: [{ name: buf, pages: 4 }] }]
phases: [{ script: { process: app, steps: [{ store: { vma: buf, page: 0, value: 1 } }] } }]
`,
      'plain.yaml',
    );
    expect(Object.keys(plain.devices[0])).not.toContain('faultPermission');
  });

  it('converts units, derives the kind of a file mapping, keeps explicit values', () => {
    const s = parseScenario(
      `
name: custom
seed: 7
duration: 1.5s
machine: { frames: 256, movableFrames: 64, swapPages: 0, kswapd: false, diskLatency: 2us, writebackInterval: 5ms,
           watermarks: { min: 8, low: 10, high: 12 }, costs: { faultNs: 2000, copyPageNs: 1us } }
files: [{ name: data, pages: 16 }]
devices: [{ id: gpu0, policy: unsafe-skip-read-retry, devicePages: 512 }]
processes:
  - name: app
    vmas:
      - { name: map, file: data, pages: 8, offset: 4, shared: true, prot: r }
      - { name: shm, kind: shared-anon, pages: 2, mergeable: true }
phases:
  - workload: { process: app, threads: 3, ops: 5, pattern: strided, stride: 3, hotShare: 0.5, vmas: [map], device: gpu0, mix: { dmirror_read: 2, load: 0.5 } }
`,
      'x.yaml',
    );
    expect(s).toMatchObject({
      name: 'custom', seed: 7, duration: 1.5e9,
      machine: { frames: 256, movableFrames: 64, swapPages: 0, kswapd: false, diskLatency: 2000, writebackInterval: 5e6, watermarks: { min: 8, low: 10, high: 12 }, costs: { faultNs: 2000, copyPageNs: 1000 } },
      devices: [{ id: 'gpu0', kind: 'dmirror', policy: 'unsafe-skip-read-retry', devicePages: 512 }],
      processes: [{ vmas: [
        { name: 'map', kind: 'file', file: 'data', pages: 8, offset: 4, shared: true, prot: 'r', mergeable: false },
        { name: 'shm', kind: 'shared-anon', pages: 2, shared: false, mergeable: true },
      ] }],
      phases: [{ kind: 'workload', threads: 3, ops: 5, pattern: 'strided', stride: 3, hotShare: 0.5, vmas: ['map'], device: 'gpu0', mix: { dmirror_read: 2, load: 0.5 } }],
    });
  });

  it('lets a step use a VMA an earlier mmap step created, also in later phases', () => {
    const s = parseScenario(
      variant('        - { store: { vma: buf, page: 0, value: 42 }, expect: { ret: 0 } }', '        - mmap: { vma: extra, pages: 2 }\n        - store: { vma: extra }')
        .replace('mix: { load: 1 } }', 'vmas: [extra], mix: { load: 1 } }'),
      'x.yaml',
    );
    expect(s.phases[1]).toMatchObject({ kind: 'workload', vmas: ['extra'] });
  });

  it('a JSON scenario works the same as YAML', () => {
    const dir = tmp();
    const yamlText = fs.readFileSync(path.join(BUILTIN_DIR, 'hmm-selftest.yaml'), 'utf8');
    const fromYaml = parseScenario(yamlText, 'hmm-selftest.yaml');
    // The same document as JSON (as the YAML parser reads it: comments gone, 0x22 a number).
    const asJson: unknown = parseYaml(yamlText);
    fs.writeFileSync(path.join(dir, 'hmm-selftest.json'), JSON.stringify(asJson, null, 2));
    expect(loadScenario(path.join(dir, 'hmm-selftest.json'))).toEqual(fromYaml);
    // And JSON errors are one line with the place, as YAML's.
    fs.writeFileSync(path.join(dir, 'bad.json'), '{\n  "processes": [\n    { "name": "app", }\n  ]\n}\n');
    const bad = path.join(dir, 'bad.json');
    expect(errorOf(() => loadScenario(bad))).toBe(`${bad}:3:22: Expected double-quoted property name`);
    fs.writeFileSync(path.join(dir, 'wrong.json'), '{"processes": [{"name": "app", "vmas": [{"name": "buf", "pages": 4, "prto": "r"}]}], "phases": []}');
    const wrong = path.join(dir, 'wrong.json');
    expect(errorOf(() => loadScenario(wrong))).toBe(
      `${wrong}: processes[0].vmas[0]: unknown key "prto"; allowed keys: name, kind, pages, prot, shared, file, offset, mergeable, gpu, rdma, rdmaAccess (did you mean prot?)`,
    );
  });
});

describe('errors: one line, the path, the value, what is allowed, did you mean', () => {
  const bad: [string, string, string][] = [
    [
      'bad enum, with did-you-mean',
      variant('{ id: mirror0 }', '{ id: mirror0, policy: saef }'),
      'my.yaml: devices[0].policy: "saef" is not one of safe, unsafe-skip-read-retry, unsafe-skip-owner-check (did you mean safe?)',
    ],
    [
      'bad enum, a prefix of the meant value',
      variant('{ id: mirror0 }', '{ id: mirror0, policy: unsafe }'),
      'my.yaml: devices[0].policy: "unsafe" is not one of safe, unsafe-skip-read-retry, unsafe-skip-owner-check (did you mean unsafe-skip-read-retry?)',
    ],
    [
      'bad enum, nothing close',
      variant('{ id: mirror0 }', '{ id: mirror0, policy: userpter }'),
      'my.yaml: devices[0].policy: "userpter" is not one of safe, unsafe-skip-read-retry, unsafe-skip-owner-check',
    ],
    [
      'unknown key, with did-you-mean',
      variant('{ id: mirror0 }', '{ id: mirror0, polcy: safe }'),
      'my.yaml: devices[0]: unknown key "polcy"; allowed keys: id, kind, policy, devicePages, faultWindowPages, faultPermission, waves, vramBoPages, xnack, granularity, retryFaultPending, uvm, costs, invalidateMultipass, gpusvm, compare, qps, qpType, rnrRetry, minRnrTimer, retryCnt, timeout, rkeyFaultResponse, exporter, failAt, ioTimeout, slot, cmbPages, p2pQueue, blocks, dmabufImporter, nvmet (did you mean policy?)',
    ],
    [
      'a gpu-only key on a dmirror',
      variant('{ id: mirror0 }', '{ id: mirror0, faultPermission: vma }'),
      'my.yaml: devices[0].faultPermission: vma: faultPermission applies to gpu devices only',
    ],
    [
      'faultPermission: access or vma',
      variant('{ id: mirror0 }', '{ id: mirror0, kind: gpu, policy: svm-fault, faultPermission: kfd }'),
      'my.yaml: devices[0].faultPermission: "kfd" is not one of access, vma',
    ],
    [
      'a misspelt required key is reported as the misspelling, not as the missing key',
      variant('{ name: buf, pages: 4 }', '{ name: buf, pags: 4 }'),
      'my.yaml: processes[0].vmas[0]: unknown key "pags"; allowed keys: name, kind, pages, prot, shared, file, offset, mergeable, gpu, rdma, rdmaAccess (did you mean pages?)',
    ],
    [
      'unknown step operation',
      variant('{ store: { vma: buf, page: 0, value: 42 }', '{ stor: { vma: buf, page: 0, value: 42 }'),
      'my.yaml: phases[0].script.steps[0]: unknown key "stor"; allowed keys: name, expect, delay, group, mmap, munmap, mprotect, madvise, store, load, fork, exit, kill, wait, dmirror, buffer, read_buffer, counters, gup, mremap, gpu, gpu_alloc, gpu_free, pin, unpin, rdma, rdma_advise, dio, dio_p2p, rdma_reg_mr, nvmet, dio_dmabuf, migrate_pages, reclaim, ksm_scan, writeback, clear_refs, pagemap, numa_scan, sleep (did you mean store?)',
    ],
    [
      'unknown top-level key',
      variant('phases:', 'phase:'),
      'my.yaml: unknown key "phase"; allowed keys: name, description, seed, duration, timeScale, report, machine, files, devices, processes, phases, faults (did you mean phases?)',
    ],
    [
      'unknown mix key',
      variant('mix: { load: 1 }', 'mix: { lod: 1 }'),
      'my.yaml: phases[1].workload.mix: unknown key "lod"; allowed keys: load, store, mmap_fixed, munmap, mprotect, madvise_dontneed, madvise_pageout, fork, migrate_pages, reclaim, ksm_scan, writeback, pin, dmirror_read, dmirror_write, dmirror_migrate_to_dev, dmirror_migrate_to_sys, dmirror_snapshot, gpu_submit, rdma_write_in, rdma_read_in, rdma_send_in, rdma_atomic_in, rdma_write_out, rdma_read_out, rdma_send_out, rdma_atomic_out, rdma_prefetch, dio_read, dio_write (did you mean load?)',
    ],
    [
      'unknown vma',
      variant('{ store: { vma: buf,', '{ store: { vma: bfu,'),
      'my.yaml: phases[0].script.steps[0].store.vma: "bfu" is not a VMA of process app; its VMAs: buf, map (did you mean buf?)',
    ],
    [
      'unknown file',
      variant('file: data,', 'file: dta,'),
      'my.yaml: processes[0].vmas[1].file: "dta" is not a declared file; files: data (did you mean data?)',
    ],
    [
      'unknown device',
      variant('dmirror: { device: mirror0,', 'dmirror: { device: mirorr0,'),
      'my.yaml: phases[0].script.steps[1].dmirror.device: "mirorr0" is not a declared device; devices: mirror0 (did you mean mirror0?)',
    ],
    [
      'unknown process',
      variant('workload: { process: app,', 'workload: { process: ap,'),
      'my.yaml: phases[1].workload.process: "ap" is not a declared process; processes: app (did you mean app?)',
    ],
    [
      'bad dmirror command',
      variant('cmd: READ', 'cmd: REED'),
      'my.yaml: phases[0].script.steps[1].dmirror.cmd: "REED" is not one of HMM_DMIRROR_READ, HMM_DMIRROR_WRITE, HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS, HMM_DMIRROR_SNAPSHOT, HMM_DMIRROR_EXCLUSIVE, HMM_DMIRROR_CHECK_EXCLUSIVE, HMM_DMIRROR_RELEASE (the HMM_DMIRROR_ prefix may be left out, any case) (did you mean HMM_DMIRROR_READ?)',
    ],
    [
      'bad duration unit',
      variant('workload: { process: app, ops: 10,', 'workload: { process: app, duration: 5 parsecs,'),
      'my.yaml: phases[1].workload.duration: "5 parsecs" is not a duration: unknown unit "parsecs"; units: ns, us, µs, ms, s, m, h',
    ],
    [
      'bad duration unit, close to one',
      `duration: 50 mss\n${GOOD}`,
      'my.yaml: duration: "50 mss" is not a duration: unknown unit "mss"; units: ns, us, µs, ms, s, m, h (did you mean ms?)',
    ],
    [
      'bad prot',
      variant('pages: 8, shared: true }', 'pages: 8, shared: true, prot: rwz }'),
      'my.yaml: processes[0].vmas[1].prot: "rwz" is not a protection: "z" is not r, w or x; expected "none" or letters r, w, x, each at most once ("r", "rw", "rx", "rwx")',
    ],
    [
      'workload without ops or duration',
      variant('workload: { process: app, ops: 10,', 'workload: { process: app,'),
      'my.yaml: phases[1].workload: a workload needs ops or duration (or both) to end',
    ],
    [
      'expect.ret with an unknown errno name',
      variant('expect: { ret: 0 } }', 'expect: { ret: EFALT } }'),
      'my.yaml: phases[0].script.steps[0].expect.ret: "EFALT" is not an errno name; expected a number or one of EPERM, ENOENT, ESRCH, EINTR, EIO, EBADF, EAGAIN, ENOMEM, EFAULT, EBUSY, EEXIST, EINVAL, EOVERFLOW, EOPNOTSUPP, EREMOTEIO, ETIMEDOUT (did you mean EFAULT?)',
    ],
    [
      'YAML syntax error, with line and column',
      variant('files: [{ name: data, pages: 8 }]', 'files: [{ name: data, pages: 8 }'),
      'my.yaml:4:1: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ],
    ['YAML duplicate key, with line and column', `${GOOD}devices: []\n`, 'my.yaml:17:1: Map keys must be unique'],
    [
      'a name that is not an identifier',
      variant('{ name: buf, pages: 4 }', '{ name: 1buf, pages: 4 }'),
      'my.yaml: processes[0].vmas[0].name: "1buf" is not a valid name: a name starts with a letter and holds letters, digits, _ and -',
    ],
    [
      'wrong type',
      variant('{ name: buf, pages: 4 }', '{ name: buf, pages: many }'),
      'my.yaml: processes[0].vmas[0].pages: "many" is not a number',
    ],
    [
      'out of range',
      variant('{ name: buf, pages: 4 }', '{ name: buf, pages: 0 }'),
      'my.yaml: processes[0].vmas[0].pages: 0 is too small; expected at least 1',
    ],
    [
      'missing required field',
      variant('workload: { process: app, ops: 10, mix: { load: 1 } }', 'workload: { process: app, ops: 10 }'),
      'my.yaml: phases[1].workload.mix: missing; expected a mapping',
    ],
    [
      'a step with two actions',
      variant('{ store: { vma: buf, page: 0, value: 42 },', '{ store: { vma: buf, page: 0, value: 42 }, load: { vma: buf },'),
      'my.yaml: phases[0].script.steps[0]: a step has one action; found store and load',
    ],
    [
      'expect.data of the wrong length',
      variant('expect: { ret: 0, data: [42, 0] }', 'expect: { ret: 0, data: [42] }'),
      'my.yaml: phases[0].script.steps[1].expect.data: 1 word for 2 pages; expect one word per page',
    ],
    [
      'a VMA a forked child mapped is not the parent\'s',
      variant('        - { store: { vma: buf, page: 0, value: 42 }, expect: { ret: 0 } }', '        - fork: [{ mmap: { vma: kid } }]\n        - load: { vma: kid }'),
      'my.yaml: phases[0].script.steps[1].load.vma: "kid" is not a VMA of process app; its VMAs: buf, map',
    ],
    [
      'duplicate names',
      variant('{ name: buf, pages: 4 }', '{ name: map, pages: 4 }'),
      'my.yaml: processes[0].vmas[1].name: "map" names two VMAs of the process (also processes[0].vmas[0])',
    ],
    ['an empty file', '', 'my.yaml: expected a scenario (a mapping with processes and phases), got nothing'],
  ];
  for (const [what, text, message] of bad) {
    it(what, () => {
      expect(errorOf(() => parseScenario(text, 'my.yaml'))).toBe(message);
    });
  }

  it('the good scenario the bad ones are made from is good', () => {
    expect(parseScenario(GOOD, 'my.yaml').name).toBe('my');
  });

  it('a missing file or unknown built-in lists the built-ins', () => {
    // The real-report built-ins (scenarios/reports/, test/reports.test.ts) are named after the others.
    const list = `${BUILTINS.join(', ')}; real reports: kswapd-fence-hang, lock-not-pinned, read-begin-outside-loop, restore-storm, uvm-oversubscription, xnack-heap-reuse`;
    expect(errorOf(() => loadScenario('./no/such.yaml'))).toBe(`./no/such.yaml: no such scenario file or built-in scenario (built-ins: ${list})`);
    expect(errorOf(() => loadScenario('nonesuch'))).toBe(`nonesuch: no such scenario file or built-in scenario (built-ins: ${list})`);
    expect(errorOf(() => loadScenario('fork-strom'))).toBe(`fork-strom: no such scenario file or built-in scenario (built-ins: ${list}) (did you mean fork-storm?)`);
  });

  it('a YAML syntax error in a file names the file, line and column', () => {
    const dir = tmp();
    const file = path.join(dir, 'broken.yml');
    fs.writeFileSync(file, 'processes:\n  - name: app\n    vmas: [{ name: buf, pages: 4 }\nphases: []\n');
    expect(errorOf(() => loadScenario(file))).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: \\S`));
  });
});

describe('rdma devices: errors name the field', () => {
  const RDMA_GOOD = `
devices:
  - { id: rdma0, kind: rdma }
  - { id: gpu0, kind: gpu }
processes:
  - name: app
    vmas:
      - { name: buf, pages: 4, rdma: rdma0 }
      - { name: heap, pages: 4 }
phases:
  - script:
      process: app
      steps:
        - rdma: { device: rdma0, vma: buf, verb: write-in, pages: 2 }
          expect: { status: SUCCESS }
  - workload: { process: app, ops: 4, vmas: [buf], mix: { rdma_write_in: 1 } }
`;
  const v = (from: string, to: string) => {
    expect(RDMA_GOOD).toContain(from);
    return RDMA_GOOD.replace(from, to);
  };

  it('the good one parses: policy odp by default, expect.status with its prefix', () => {
    const s = parseScenario(RDMA_GOOD, 'my.yaml');
    expect(s.devices[0]).toMatchObject({ id: 'rdma0', kind: 'rdma', policy: 'odp' });
    expect(s.processes[0]).toMatchObject({ memlock: 2048, capIpcLock: false });
    expect(s.phases[0]).toMatchObject({ steps: [{ action: { op: 'rdma', device: 'rdma0', vma: 'buf', verb: 'write-in', page: 0, pages: 2 }, expect: { status: 'IBV_WC_SUCCESS' } }] });
  });

  const bad: [string, string][] = [
    [v('{ id: rdma0, kind: rdma }', '{ id: rdma0, kind: rdma, policy: odb }'), 'my.yaml: devices[0].policy: "odb" is not one of odp, pinned-mr, implicit-odp, dmabuf, unsafe-odp (did you mean odp?)'],
    [v('{ id: gpu0, kind: gpu }', '{ id: gpu0, kind: gpu, rnrRetry: 3 }'), 'my.yaml: devices[1].rnrRetry: 3: rnrRetry applies to rdma devices only'],
    [v('{ id: rdma0, kind: rdma }', '{ id: rdma0, kind: rdma, policy: dmabuf }'), 'my.yaml: devices[0].exporter: missing; policy dmabuf registers MRs over VRAM BOs of a gpu: name it (exporter: <gpu id>)'],
    [v('{ id: rdma0, kind: rdma }', '{ id: rdma0, kind: rdma, policy: dmabuf, exporter: gpu9 }'), 'my.yaml: devices[0].exporter: "gpu9" is not a declared gpu device; gpu devices: gpu0 (did you mean gpu0?)'],
    [v('{ id: rdma0, kind: rdma }', '{ id: rdma0, kind: rdma, rnrRetry: 8 }'), 'my.yaml: devices[0].rnrRetry: 8 is too big; expected at most 7'],
    [v('{ id: rdma0, kind: rdma }', '{ id: rdma0, kind: rdma, compare: [odp, pinned] }'), 'my.yaml: devices[0].compare[1]: "pinned" is not one of odp, pinned-mr, implicit-odp, dmabuf, unsafe-odp (did you mean pinned-mr?)'],
    [v('rdma: rdma0 }', 'rdma: rdma1 }'), 'my.yaml: processes[0].vmas[0].rdma: "rdma1" is not a declared rdma device; rdma devices: rdma0 (did you mean rdma0?)'],
    [v('vmas: [buf], mix', 'vmas: [heap], mix'), "my.yaml: phases[1].workload.mix.rdma_write_in: rdma_write_in needs a VMA of the phase with an RDMA MR; give one of app's VMAs rdma: <device id>"],
    [v('rdma: { device: rdma0, vma: buf,', 'rdma: { device: rdma0, vma: heap,'), 'my.yaml: phases[0].script.steps[0].rdma.vma: "heap" is not a VMA of process app with an MR (rdma: <device id>); its VMAs with one: buf'],
    [v('verb: write-in', 'verb: write'), 'my.yaml: phases[0].script.steps[0].rdma.verb: "write" is not one of write-in, read-in, send-in, atomic-in, write-out, read-out, send-out, atomic-out (did you mean write-in?)'],
    [v('{ name: heap, pages: 4 }', '{ name: heap, pages: 4, rdmaAccess: [remote-wrte] }'), 'my.yaml: processes[0].vmas[1].rdmaAccess[0]: "remote-wrte" is not one of local-write, remote-read, remote-write, remote-atomic (did you mean remote-write?)'],
    [
      v('expect: { status: SUCCESS }', 'expect: { status: RNR_RETRY_EXC }'),
      'my.yaml: phases[0].script.steps[0].expect.status: "RNR_RETRY_EXC" is not one of IBV_WC_SUCCESS, IBV_WC_LOC_LEN_ERR, IBV_WC_LOC_PROT_ERR, IBV_WC_WR_FLUSH_ERR, IBV_WC_REM_INV_REQ_ERR, IBV_WC_REM_ACCESS_ERR, IBV_WC_REM_OP_ERR, IBV_WC_RETRY_EXC_ERR, IBV_WC_RNR_RETRY_EXC_ERR (did you mean IBV_WC_RNR_RETRY_EXC_ERR?)',
    ],
  ];
  for (const [text, message] of bad) {
    it(message.slice('my.yaml: '.length, message.indexOf(':', 'my.yaml: '.length)), () => {
      expect(errorOf(() => parseScenario(text, 'my.yaml'))).toBe(message);
    });
  }
});
