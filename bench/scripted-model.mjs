#!/usr/bin/env node
// A scripted OpenAI-compatible model for the agent bench (bench/agent.mjs): a separate process
// on loopback, so its writes do not share an event loop with the client that times them.
// POST /v1/chat/completions streams OpenAI's chunk bytes (`chat.completion.chunk` objects,
// `"usage":null` on each, a usage-only chunk, then `data: [DONE]`), chosen by the request's
// last message:
//
//   first-token <ms>  headers at once, then after <ms> ("thinking") one text chunk whose content
//                     is the wall-clock time it was written (ms since the epoch, µs precision,
//                     the clock of common.mjs), then the finish and usage chunks;
//   stream <n>        n one-token text chunks, written as fast as the socket takes them;
//   tool              a run_code call (python `print(1)`), its arguments in two pieces;
//   text              a short answer;
//   (a tool result)   a short answer quoting it.
//
// Prints `listening on http://127.0.0.1:<port>` on stdout; exits on SIGTERM/SIGINT or when its
// stdin ends (the bench that started it is gone).
import { once } from 'node:events';
import { createServer } from 'node:http';
import { calibrateClock, wallNow } from './common.mjs';

const CREATED = 1733321482;

/** One chunk as OpenAI sends it, with one choice (or none: the usage chunk). */
function chunk(id, model, delta, finish = 'null', usage = 'null') {
  const choices = delta === null ? '' : `{"index":0,"delta":${delta},"logprobs":null,"finish_reason":${finish}}`;
  return (
    `data: {"id":"${id}","object":"chat.completion.chunk","created":${CREATED},"model":"${model}",` +
    `"service_tier":"default","system_fingerprint":"fp_0705bf87c0","choices":[${choices}],"usage":${usage}}\n\n`
  );
}

const text = (id, model, content, first) => chunk(id, model, `{${first ? '"role":"assistant",' : ''}"content":${JSON.stringify(content)}}`);
const finish = (id, model, reason) => chunk(id, model, '{}', JSON.stringify(reason));
const usage = (id, model, prompt, completion) =>
  chunk(
    id,
    model,
    null,
    'null',
    `{"prompt_tokens":${prompt},"completion_tokens":${completion},"total_tokens":${prompt + completion},` +
      `"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`,
  );

let served = 0;

async function handle(req, res) {
  if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found","type":"invalid_request_error"}}');
    return;
  }
  let raw = '';
  req.setEncoding('utf8');
  for await (const piece of req) raw += piece;
  const body = JSON.parse(raw);
  const model = String(body.model);
  const last = body.messages?.at(-1);
  const [what, arg] = last?.role === 'user' ? String(last.content).split(' ') : ['tool-result'];
  if (!['first-token', 'stream', 'tool', 'text', 'tool-result'].includes(what)) {
    res.writeHead(400, { 'content-type': 'application/json' }).end(`{"error":{"message":"unknown bench prompt ${JSON.stringify(what)}","type":"invalid_request_error"}}`);
    return;
  }
  const id = `chatcmpl-bench${++served}`;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
  // The headers go now, as a real endpoint's do before its first token.
  res.flushHeaders();
  const write = async (bytes) => {
    if (!res.write(bytes)) await once(res, 'drain');
  };
  switch (what) {
    case 'first-token': {
      await new Promise((r) => setTimeout(r, Number(arg)));
      if (res.destroyed) return;
      res.write(text(id, model, wallNow().toFixed(3), true));
      res.write(finish(id, model, 'stop'));
      res.write(usage(id, model, 20, 1));
      break;
    }
    case 'stream': {
      const n = Number(arg);
      for (let i = 0; i < n && !res.destroyed; i++) await write(text(id, model, 'x ', i === 0));
      res.write(finish(id, model, 'stop'));
      res.write(usage(id, model, 20, n));
      break;
    }
    case 'tool': {
      const call = `{"index":0,"id":"call_bench${served}","type":"function","function":{"name":"run_code","arguments":""}}`;
      res.write(chunk(id, model, `{"role":"assistant","content":null,"tool_calls":[${call}],"refusal":null}`));
      for (const piece of ['{"code":"print(1)",', '"language":"python"}']) {
        res.write(chunk(id, model, `{"tool_calls":[{"index":0,"function":{"arguments":${JSON.stringify(piece)}}}]}`));
      }
      res.write(finish(id, model, 'tool_calls'));
      res.write(usage(id, model, 30, 10));
      break;
    }
    case 'text':
      res.write(text(id, model, 'Done.', true));
      res.write(finish(id, model, 'stop'));
      res.write(usage(id, model, 20, 2));
      break;
    case 'tool-result':
      res.write(text(id, model, `It printed ${String(last?.content ?? '').trim()}.`, true));
      res.write(finish(id, model, 'stop'));
      res.write(usage(id, model, 40, 4));
      break;
  }
  if (res.destroyed) return;
  res.end('data: [DONE]\n\n');
}

calibrateClock();
const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    if (!res.headersSent) res.writeHead(500).end(String(err));
    else res.destroy();
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, stop);
process.stdin.on('end', stop).on('error', stop).resume();
