import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { MCP_RUN_OUTPUT_SCHEMA, MCP_TOOL_INPUT_SCHEMAS, MCP_TOOLS, parseMcpToolCall, type McpTool } from './mcp-tools.js';

/** Arguments each tool's validator and JSON Schema must both accept, and both refuse. */
const CASES: Record<McpTool, { valid: unknown[]; invalid: unknown[] }> = {
  run_code: {
    valid: [{ code: '' }, { code: 'print(1)', language: 'python', timeout: 0.5 }],
    invalid: [{}, { code: 1 }, { code: 'x', language: '' }, { code: 'x', timeout: 0 }, { code: 'x', timeout: '5' }, { code: 'x', mode: 'kernel' }, [], 'x'],
  },
  run_command: { valid: [{ command: 'ls' }, { command: '', timeout: 3 }], invalid: [{}, { command: ['ls'] }, { command: 'ls', language: 'bash' }] },
  read_file: { valid: [{ path: 'a.txt' }, { path: '/workspace/a.txt' }], invalid: [{}, { path: '' }, { path: 1 }] },
  write_file: { valid: [{ path: 'a', content: '' }], invalid: [{ path: 'a' }, { content: 'x' }, { path: 'a', content: 1 }] },
  list_files: { valid: [{}, { dir: '' }, { dir: 'out' }], invalid: [{ dir: 1 }, { path: 'x' }] },
  restart: { valid: [{}], invalid: [{ now: true }] },
};

test('each tool\'s validator and JSON Schema accept and refuse the same arguments', () => {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  assert.deepEqual(Object.keys(CASES), [...MCP_TOOLS]);
  for (const tool of MCP_TOOLS) {
    const check = ajv.compile(MCP_TOOL_INPUT_SCHEMAS[tool]);
    for (const args of CASES[tool].valid) {
      assert.equal(check(args), true, `schema of ${tool} accepts ${JSON.stringify(args)}: ${ajv.errorsText(check.errors)}`);
      const r = parseMcpToolCall(tool, args);
      assert.ok(r.ok, `${tool} accepts ${JSON.stringify(args)}: ${r.ok ? '' : r.message}`);
    }
    for (const args of CASES[tool].invalid) {
      assert.equal(check(args), false, `schema of ${tool} refuses ${JSON.stringify(args)}`);
      assert.equal(parseMcpToolCall(tool, args).ok, false, `${tool} refuses ${JSON.stringify(args)}`);
    }
  }
  ajv.compile(MCP_RUN_OUTPUT_SCHEMA);
});

test('a failure names the tool and the field', () => {
  const message = (name: string, args: unknown): string => {
    const r = parseMcpToolCall(name, args);
    assert.equal(r.ok, false);
    return r.ok ? '' : r.message;
  };
  assert.equal(message('run_code', { code: 5 }), 'run_code: code: expected a string, got 5 (number)');
  assert.equal(message('run_code', {}), 'run_code: code: expected a string (it is required), got nothing');
  assert.equal(message('run_code', { code: 'x', timeout: -2 }), 'run_code: timeout: expected a number > 0 (seconds), got -2 (number)');
  assert.equal(message('write_file', { path: 'a', content: 'x', mode: 1 }), 'write_file: mode: unknown field; expected one of path, content');
  assert.equal(message('read_file', 'a.txt'), 'read_file: arguments: expected a JSON object, got "a.txt" (string)');
  assert.equal(message('eval', {}), 'name: unknown tool "eval"; the tools are run_code, run_command, read_file, write_file, list_files, restart');
});

test('a call is narrowed to its tool; missing arguments are none', () => {
  assert.deepEqual(parseMcpToolCall('run_code', { code: 'x', timeout: 2 }), { ok: true, value: { tool: 'run_code', code: 'x', timeout: 2 } });
  assert.deepEqual(parseMcpToolCall('restart', undefined), { ok: true, value: { tool: 'restart' } });
  assert.deepEqual(parseMcpToolCall('list_files', {}), { ok: true, value: { tool: 'list_files' } });
});
