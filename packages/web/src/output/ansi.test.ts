import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AnsiParser, PLAIN, type AnsiToken } from './ansi.js';

/** The tokens as short strings: text with its colour, and the control tokens by name. */
function show(tokens: AnsiToken[]): string[] {
  return tokens.map((t) => {
    switch (t.kind) {
      case 'text': {
        const fg = t.style.fg === null ? '' : t.style.fg.kind === 'named' ? `fg${t.style.fg.index}` : `rgb(${t.style.fg.r},${t.style.fg.g},${t.style.fg.b})`;
        return `${t.text}${fg || t.style.bold ? `[${[fg, t.style.bold ? 'bold' : ''].filter(Boolean).join(' ')}]` : ''}`;
      }
      case 'newline':
        return 'LF';
      case 'carriage-return':
        return 'CR';
      case 'erase-line':
        return `EL${t.mode}`;
    }
  });
}

test('colours and styles become the style of the text they precede; reset returns to plain', () => {
  const p = new AnsiParser();
  assert.deepEqual(show(p.feed('\x1b[1;31mred\x1b[0m plain \x1b[92mbright\x1b[39m')), ['red[fg1 bold]', ' plain ', 'bright[fg10]']);
});

test('256-colour and truecolour codes become RGB values', () => {
  const p = new AnsiParser();
  assert.deepEqual(show(p.feed('\x1b[38;5;196ma\x1b[38;2;1;2;3mb\x1b[38;5;3mc')), ['a[rgb(255,0,0)]', 'b[rgb(1,2,3)]', 'c[fg3]']);
});

test('an escape sequence split across chunks is completed by the next chunk', () => {
  const p = new AnsiParser();
  assert.deepEqual(show(p.feed('a\x1b[3')), ['a']);
  assert.deepEqual(show(p.feed('2mb')), ['b[fg2]']);
  assert.deepEqual(show(p.feed('\x1b')), []);
  assert.deepEqual(show(p.feed('[0mc')), ['c']);
});

test('carriage return redraws, CRLF is a line end even when split between chunks', () => {
  const p = new AnsiParser();
  assert.deepEqual(show(p.feed('10%\r20%\r\n')), ['10%', 'CR', '20%', 'LF']);
  assert.deepEqual(show(p.feed('x\r')), ['x']);
  assert.deepEqual(show(p.feed('\ny')), ['LF', 'y']);
  assert.deepEqual(show(p.feed('\r')), []);
  assert.deepEqual(show(p.feed('z')), ['CR', 'z']);
});

test('erase-line is reported; cursor moves, OSC links and other controls draw nothing', () => {
  const p = new AnsiParser();
  assert.deepEqual(show(p.feed('\x1b[2K\x1b[Aup\x1b]8;;http://x\x07link\x1b]8;;\x1b\\\x07\x08!')), ['EL2', 'up', 'link', '!']);
});

test('markup in the output is plain text to the parser', () => {
  const p = new AnsiParser();
  const tokens = p.feed('<img src=x onerror=alert(1)>');
  assert.deepEqual(tokens, [{ kind: 'text', text: '<img src=x onerror=alert(1)>', style: PLAIN }]);
});
