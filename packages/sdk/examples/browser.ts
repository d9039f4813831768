/// <reference lib="dom" />
// A page's module script. The page maps the bare name to the bundle with an import map,
// <script type="importmap">{"imports": {"@sluice/sdk/browser": "/sluice.browser.js"}}</script>,
// or a bundler resolves it from the package (the `./browser` export).
import { Sluice } from '@sluice/sdk/browser';

const out = document.querySelector('#out') ?? document.body;
const show = (line: string): void => void out.append(`${line}\n`);

// The page comes from the Sluice server's origin (or a proxy in front of it): no CORS needed.
// The key is readable by whoever has the page: give each user their own.
const apiKey = document.querySelector<HTMLMetaElement>('meta[name="sluice-key"]')?.content;
const sluice = new Sluice({ baseURL: location.origin, apiKey, transport: 'websocket' }); // browsers have WebSocket

const session = await sluice.sessions.create();
// Output comes in chunks, not lines (a lone line goes at once, a burst is batched): show whole lines.
let partial = '';
for await (const event of session.stream('for i in range(3):\n    print(f"line {i}")', { mode: 'process' })) {
  if (event.type !== 'stdout') continue;
  const lines = (partial + event.content).split('\n');
  partial = lines.pop() ?? '';
  for (const line of lines) show(line);
}
await session.files.write('hello.txt', new Blob(['from the page']));
const result = await session.run('print(open("hello.txt").read())', { mode: 'process', transport: 'sse' });
show(`file: ${result.stdout.trim()}`);
await session.delete();
document.body.dataset['state'] = 'done';
