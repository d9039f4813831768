import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020 } from 'ajv/dist/2020.js';
import {
  AGENT_REQUEST_SCHEMA,
  CREATE_SESSION_REQUEST_SCHEMA,
  ERROR_STATUS,
  parseAgentRequest,
  parseCreateSessionRequest,
  parseRunRequest,
  parseStdinRequest,
  RUN_REQUEST_SCHEMA,
  STDIN_REQUEST_SCHEMA,
  type JSONSchema,
  type Validated,
} from '@sluice/protocol';
import { openAPIDocument } from './openapi-document.js';

test('the document is valid OpenAPI 3.1 by the official schema', async () => {
  const validator = new Validator();
  const r = await validator.validate(openAPIDocument('1.2.3'));
  assert.equal(validator.version, '3.1');
  assert.deepEqual(r.errors, undefined);
  assert.equal(r.valid, true);
  // And the validator does refuse a broken one (a parameter in a place OpenAPI has no such).
  const broken = structuredClone(openAPIDocument('1.2.3')) as { paths: Record<string, Record<string, { parameters?: { in: string }[] }>> };
  const param = broken.paths['/api/sessions/{id}']?.['get']?.parameters?.[0];
  assert.ok(param);
  param.in = 'body';
  assert.equal((await new Validator().validate(broken)).valid, false);
});

test('every error code of the contract is in the Error schema, and every error answer uses it', () => {
  const doc = openAPIDocument('1') as {
    paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, { content?: Record<string, { schema: JSONSchema }> }> }>>;
    components: { schemas: Record<string, JSONSchema> };
  };
  const codes = doc.components.schemas['Error']?.properties?.['error']?.properties?.['code']?.enum;
  assert.deepEqual(codes, Object.keys(ERROR_STATUS));
  const statuses = new Set(Object.values(ERROR_STATUS).map(String));
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      // An operation open without a key says so (`security: []`, the playground's files); the rest may answer 401.
      if (op.security?.length !== 0) assert.ok(op.responses['401'], `${method} ${path} lists 401`);
      for (const [status, res] of Object.entries(op.responses)) {
        if (!statuses.has(status)) continue;
        assert.equal(res.content?.['application/json']?.schema.$ref, '#/components/schemas/Error', `${method} ${path} ${status}`);
      }
    }
  }
});

/** A body schema and the validator of the same body, with bodies each must accept and refuse. */
interface Case {
  name: string;
  schema: JSONSchema;
  parse(body: unknown): Validated<unknown>;
  valid: unknown[];
  invalid: unknown[];
}

const env = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`V${i}`, 'x']));

const CASES: Case[] = [
  {
    name: 'run',
    schema: RUN_REQUEST_SCHEMA,
    parse: parseRunRequest,
    valid: [
      { code: '' },
      { code: 'print(1)', language: 'python', mode: 'kernel', timeout: 0.5, stdin: '', env: { A_1: 'b' }, heartbeat: 1, on_disconnect: 'cancel' },
      { code: 'x', heartbeat: 3600, env: env(256) },
      { code: 'x', env: { _: 'y'.repeat(32 * 1024) } },
    ],
    invalid: [
      {},
      null,
      [],
      'code',
      { code: 1 },
      { code: 'x', language: '' },
      { code: 'x', mode: 'thread' },
      { code: 'x', timeout: 0 },
      { code: 'x', timeout: '5' },
      { code: 'x', heartbeat: 0.5 },
      { code: 'x', heartbeat: 3601 },
      { code: 'x', on_disconnect: 'stop' },
      { code: 'x', env: { '1A': 'b' } },
      { code: 'x', env: { A: 1 } },
      { code: 'x', env: { A: 'a\u0000b' } },
      { code: 'x', env: { A: 'y'.repeat(32 * 1024 + 1) } },
      { code: 'x', env: env(257) },
      { code: 'x', env: [] },
      { code: 'x', extra: true },
    ],
  },
  {
    name: 'create session',
    schema: CREATE_SESSION_REQUEST_SCHEMA,
    parse: parseCreateSessionRequest,
    valid: [
      {},
      { id: 'a-b_C9', language: 'bash', env: {}, timeout: 3, idle_ttl: 60, network: false, limits: {} },
      { limits: { output_bytes: 1, processes: 16, open_files: 32, file_size: 65536, memory_bytes: 16 * 1024 * 1024, cpu: 0.01, cpu_time: 0.1, disk_bytes: 1024 * 1024, inodes: 64 } },
      { limits: { cpu: 1024 } },
    ],
    invalid: [
      { id: '' },
      { id: 'a/b' },
      { id: 'x'.repeat(65) },
      { network: 'yes' },
      { idle_ttl: -1 },
      { limits: { processes: 15 } },
      { limits: { processes: 16.5 } },
      { limits: { output_bytes: 0 } },
      { limits: { cpu: 0.001 } },
      { limits: { cpu: 1025 } },
      { limits: { cpu_time: 0 } },
      { limits: { inodes: 63 } },
      { limits: { gpus: 1 } },
      { limits: [] },
      { extra: 1 },
    ],
  },
  {
    name: 'agent',
    schema: AGENT_REQUEST_SCHEMA,
    parse: parseAgentRequest,
    valid: [
      { prompt: 'hi' },
      { prompt: 'hi', system: '', model: 'm', max_turns: 100, tools: [], language: 'python', timeout: 2, heartbeat: 5, on_disconnect: 'continue' },
      { prompt: 'hi', tools: ['run_code', 'read_file', 'write_file', 'list_files'], max_turns: 1 },
    ],
    invalid: [
      {},
      { prompt: '' },
      { prompt: 'hi', max_turns: 0 },
      { prompt: 'hi', max_turns: 101 },
      { prompt: 'hi', max_turns: 1.5 },
      { prompt: 'hi', tools: ['run_code', 'run_code'] },
      { prompt: 'hi', tools: ['shell'] },
      { prompt: 'hi', tools: 'run_code' },
      { prompt: 'hi', model: '' },
      { prompt: 'hi', other: 1 },
      { prompt: 'x'.repeat(1024 * 1024 + 1) },
    ],
  },
  {
    name: 'stdin',
    schema: STDIN_REQUEST_SCHEMA,
    parse: parseStdinRequest,
    valid: [{ data: '' }, { data: 'x', eof: false }, { eof: true }, { data: 'x', eof: true }],
    invalid: [{}, { eof: false }, { data: 1 }, { data: 'x', eof: 'yes' }, { data: 'x', more: 1 }, null],
  },
];

for (const c of CASES) {
  test(`the ${c.name} schema and its validator agree on every body of the corpus`, () => {
    const ajv = new Ajv2020({ strict: true, strictRequired: false });
    const check = ajv.compile(c.schema);
    for (const body of c.valid) {
      assert.equal(check(body), true, `schema refuses ${JSON.stringify(body).slice(0, 100)}: ${ajv.errorsText(check.errors)}`);
      const r = c.parse(body);
      assert.ok(r.ok, `validator refuses ${JSON.stringify(body).slice(0, 100)}: ${r.ok ? '' : r.message}`);
    }
    for (const body of c.invalid) {
      assert.equal(check(body), false, `schema accepts ${JSON.stringify(body)?.slice(0, 100)}`);
      assert.equal(c.parse(body).ok, false, `validator accepts ${JSON.stringify(body)?.slice(0, 100)}`);
    }
  });
}

test('each schema names exactly the fields its validator reads: an unknown field is refused by both', () => {
  for (const c of CASES) {
    const ajv = new Ajv2020({ strict: true, strictRequired: false });
    const check = ajv.compile(c.schema);
    for (const field of Object.keys(c.schema.properties ?? {})) {
      const base = c.valid[0] as Record<string, unknown>;
      const r = c.parse({ ...base, [`${field}_x`]: 1 });
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.message, new RegExp(`${field}_x: unknown field`), c.name);
      assert.equal(check({ ...base, [`${field}_x`]: 1 }), false, c.name);
    }
  }
});
