'use strict';
/**
 * Top-level `await` and `import` for the JavaScript kernel's cells (node_kernel.js): a small
 * tokenizer, and a rewriter that turns a cell into an async function expression whose top-level
 * declarations become globals (let/const turn into plain assignments), `import` declarations
 * become `await import()`, and whose trailing expression is returned (the cell's value).
 * CommonJS with no dependencies, loaded once when the kernel starts; it never runs cell code.
 */

// Cells share the kernel's realm and may reassign globals: taken when the kernel loads this.
const { stringify } = JSON;

const PUNCT = /(?:>>>=|\.\.\.|===|!==|\*\*=|<<=|>>=|>>>|&&=|\|\|=|\?\?=|=>|==|!=|<=|>=|&&|\|\||\?\?|\?\.(?!\d)|\+\+|--|\+=|-=|\*=|\/=|%=|&=|\|=|\^=|\*\*|<<|>>|[{}()[\];,<>+\-*/%&|^!~?:=.@])/y;
const IDENT = /#?(?:[\p{ID_Start}$_]|\\u[0-9a-fA-F{])(?:[\p{ID_Continue}$\u200c\u200d]|\\u[0-9a-fA-F{}]+)*/uy;
const NUMBER = /(?:0[xXoObB][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)n?/y;
const REGEX_AFTER_WORD = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await']);
const EXPECTS_EXPRESSION = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'yield', 'await', 'extends']);
const CONTINUES_LINE = new Set(['(', '[', '.', '?.', ',', '=', '=>', '?', ':', '+', '-', '*', '/', '%', '**', '==', '!=', '===', '!==', '<', '>', '<=', '>=', '&&', '||', '??', '&', '|', '^', '<<', '>>', '>>>', '+=', '-=', '*=', '/=', '%=', '**=', '<<=', '>>=', '>>>=', '&=', '|=', '^=', '&&=', '||=', '??=']);
// After these words a `{` opens an object literal or pattern, not a block.
const BRACE_IS_VALUE_AFTER = new Set([...EXPECTS_EXPRESSION, 'var', 'let', 'const', 'import', 'export']);
const NOT_EXPRESSIONS = new Set(['var', 'let', 'const', 'function', 'class', 'if', 'for', 'while', 'do', 'try', 'switch', 'return', 'throw', 'break', 'continue', 'import', 'export', 'debugger', 'with', 'else', 'catch', 'finally']);

/**
 * Tokens of JS source: {t: 'name'|'num'|'str'|'tpl'|'re'|'punct', v, s, e, nl (a line break
 * before it), d (bracket depth; closers get their opener's), m (an opener's closer index)}.
 * Enough to find top-level statements, not a validator: V8 judges the rewritten code.
 */
function tokenize(src) {
  const toks = [];
  const stack = [];
  const n = src.length;
  let i = src.startsWith('#!') ? src.indexOf('\n') : 0;
  if (i < 0) i = n;
  let nl = false;
  const scanTemplate = (j) => {
    while (j < n) {
      const c = src[j];
      if (c === '\\') j += 2;
      else if (c === '`') return [j + 1, false];
      else if (c === '$' && src[j + 1] === '{') return [j + 2, true];
      else j += 1;
    }
    return [n, false];
  };
  while (i < n) {
    const c = src[i];
    if (c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029') {
      nl = true;
      i += 1;
      continue;
    }
    if (c === ' ' || c === '\t' || /\s/.test(c)) {
      i += 1;
      continue;
    }
    if (c === '/' && src[i + 1] === '/') {
      const end = src.indexOf('\n', i);
      i = end < 0 ? n : end;
      continue;
    }
    if (c === '/' && src[i + 1] === '*') {
      let end = src.indexOf('*/', i + 2);
      end = end < 0 ? n : end + 2;
      if (/[\n\r\u2028\u2029]/.test(src.slice(i, end))) nl = true;
      i = end;
      continue;
    }
    const s = i;
    const prev = toks[toks.length - 1];
    let t;
    let open = false;
    let closes = false;
    if (c === '"' || c === "'") {
      t = 'str';
      i += 1;
      while (i < n && src[i] !== c && src[i] !== '\n') i += src[i] === '\\' ? 2 : 1;
      i = Math.min(n, i + 1);
    } else if (c === '`' || (c === '}' && stack.length > 0 && stack[stack.length - 1].tpl)) {
      t = 'tpl';
      if (c === '}') closes = true;
      [i, open] = scanTemplate(i + 1);
    } else if (c >= '0' && c <= '9' || (c === '.' && src[i + 1] >= '0' && src[i + 1] <= '9')) {
      t = 'num';
      NUMBER.lastIndex = i;
      i = NUMBER.test(src) ? NUMBER.lastIndex : i + 1;
    } else if (c === '/' && regexAllowed(prev)) {
      t = 're';
      i += 1;
      let inClass = false;
      while (i < n && src[i] !== '\n') {
        const ch = src[i];
        if (ch === '\\') i += 2;
        else {
          i += 1;
          if (ch === '[') inClass = true;
          else if (ch === ']') inClass = false;
          else if (ch === '/' && !inClass) break;
        }
      }
      while (i < n && /[a-z]/.test(src[i])) i += 1;
    } else {
      IDENT.lastIndex = i;
      if (IDENT.test(src)) {
        t = 'name';
        i = IDENT.lastIndex;
      } else {
        t = 'punct';
        PUNCT.lastIndex = i;
        i = PUNCT.test(src) ? PUNCT.lastIndex : i + 1;
      }
    }
    const v = src.slice(s, i);
    const tok = { t, v, s, e: i, nl, d: stack.length, m: -1 };
    nl = false;
    if (closes || (t === 'punct' && (v === '}' || v === ')' || v === ']') && stack.length > 0)) {
      const opener = stack.pop();
      tok.d = stack.length;
      toks[opener.k].m = toks.length;
    }
    if (open || (t === 'punct' && (v === '{' || v === '(' || v === '['))) stack.push({ k: toks.length, tpl: open });
    toks.push(tok);
  }
  return toks;
}

function regexAllowed(prev) {
  if (prev === undefined) return true;
  if (prev.t === 'num' || prev.t === 'str' || prev.t === 're') return false;
  if (prev.t === 'tpl') return prev.v.endsWith('${');
  if (prev.t === 'name') return REGEX_AFTER_WORD.has(prev.v);
  return !(prev.v === ')' || prev.v === ']' || prev.v === '}' || prev.v === '++' || prev.v === '--');
}

/** Does a line break between prev and tok end a statement (automatic semicolon insertion)? */
function lineBreakEnds(prev, tok) {
  if (prev.t === 'punct' && !(prev.v === ')' || prev.v === ']' || prev.v === '}' || prev.v === '++' || prev.v === '--')) return false;
  if (prev.t === 'name' && EXPECTS_EXPRESSION.has(prev.v) && prev.v !== 'return') return false;
  if (prev.t === 'tpl' && prev.v.endsWith('${')) return false;
  // A closer on a line of its own ends what is open; it never starts a statement.
  if (tok.t === 'punct' && (tok.v === '}' || tok.v === ')' || tok.v === ']')) return false;
  if (tok.t === 'punct') return !CONTINUES_LINE.has(tok.v);
  if (tok.t === 'tpl' && tok.v.startsWith('`')) return false;
  if (tok.t === 'name' && (tok.v === 'instanceof' || tok.v === 'in' || tok.v === 'of')) return false;
  return true;
}

/** Indices of the tokens that start a top-level statement. */
function statementStarts(toks) {
  const starts = [];
  const block = new Set(); // indices of top-level `{` that open a block, not an object literal
  for (let k = 0; k < toks.length; k += 1) {
    const tok = toks[k];
    if (tok.d !== 0) continue;
    const prev = toks[k - 1];
    let start = false;
    if (prev === undefined || (prev.t === 'punct' && prev.v === ';')) start = true;
    else if (prev.t === 'punct' && prev.v === '}' && prev.o !== undefined && block.has(prev.o)) start = true;
    else if (tok.nl && lineBreakEnds(prev, tok)) start = true;
    if (start) starts.push(k);
    if (tok.t === 'punct' && tok.v === '{') {
      const isBlock = start || prev === undefined || (prev.t === 'punct' && (prev.v === ')' || prev.v === '=>' || prev.v === '}' || prev.v === ';')) ||
        (prev.t === 'name' && !BRACE_IS_VALUE_AFTER.has(prev.v));
      if (isBlock) block.add(k);
      if (tok.m >= 0) toks[tok.m].o = k;
    }
  }
  return starts;
}

function isExpressionStatement(toks, k) {
  const tok = toks[k];
  if (tok.t === 'punct') return tok.v !== '{' && tok.v !== ';';
  if (tok.t !== 'name') return true;
  if (NOT_EXPRESSIONS.has(tok.v)) return false;
  const next = toks[k + 1];
  if (next !== undefined && next.t === 'punct' && next.v === ':') return false; // a label
  return !(tok.v === 'async' && next !== undefined && next.v === 'function' && !next.nl);
}

/** `import … from 'm'` as an assignment from `await import('m')`, or null when not understood. */
function rewriteImport(src, toks, k, last) {
  let j = k + 1;
  let def = null;
  let ns = null;
  const specs = [];
  const at = (x) => (x <= last ? toks[x] : undefined);
  let tok = at(j);
  if (tok === undefined) return null;
  if (tok.t !== 'str') {
    if (tok.t === 'name' && tok.v !== 'from') {
      def = tok.v;
      j += 1;
      if (at(j) && at(j).v === ',') j += 1;
    }
    tok = at(j);
    if (tok && tok.v === '*') {
      if (!at(j + 1) || at(j + 1).v !== 'as' || !at(j + 2) || at(j + 2).t !== 'name') return null;
      ns = at(j + 2).v;
      j += 3;
    } else if (tok && tok.v === '{') {
      j += 1;
      while (at(j) && at(j).v !== '}') {
        const name = at(j);
        if (name.t !== 'name' && name.t !== 'str') return null;
        let local = name.v;
        j += 1;
        if (at(j) && at(j).v === 'as') {
          if (!at(j + 1) || at(j + 1).t !== 'name') return null;
          local = at(j + 1).v;
          j += 2;
        } else if (name.t === 'str') {
          return null;
        }
        specs.push(local === name.v ? local : `${name.v}: ${local}`);
        if (at(j) && at(j).v === ',') j += 1;
      }
      if (!at(j)) return null;
      j += 1;
    }
    if (!at(j) || at(j).v !== 'from') return null;
    j += 1;
  }
  const spec = at(j);
  if (!spec || spec.t !== 'str') return null;
  j += 1;
  let options = '';
  const attrs = at(j);
  if (attrs && (attrs.v === 'with' || attrs.v === 'assert') && at(j + 1) && at(j + 1).v === '{' && at(j + 1).m >= 0) {
    const close = toks[at(j + 1).m];
    options = `, { with: ${src.slice(at(j + 1).s, close.e)} }`;
    j = at(j + 1).m + 1;
  }
  if (j <= last) return null;
  const load = `await import(${spec.v}${options})`;
  if (ns !== null) return `void (${ns} = ${load}${def !== null ? `, ${def} = ${ns}.default` : ''})`;
  if (def === null && specs.length === 0 && src.slice(toks[k + 1].s, toks[k + 1].e) === spec.v) return `void (${load})`;
  const pattern = [...(def !== null ? [`default: ${def}`] : []), ...specs].join(', ');
  return `void ({ ${pattern} } = ${load})`;
}

/**
 * The cell as an async function expression: top-level var/let/const, function, class and
 * import declarations become globals; with `withReturn`, a trailing expression statement is
 * returned. Returns null when the code has a shape this rewriter does not handle.
 */
function asyncWrap(src, withReturn) {
  const toks = tokenize(src);
  const starts = statementStarts(toks);
  const edits = [];
  const hoisted = [];
  const lastOf = (si) => {
    let last = (si + 1 < starts.length ? starts[si + 1] : toks.length) - 1;
    if (toks[last].t === 'punct' && toks[last].v === ';' && last > starts[si]) last -= 1;
    return last;
  };
  for (let si = 0; si < starts.length; si += 1) {
    const k = starts[si];
    const tok = toks[k];
    const next = toks[k + 1];
    if (tok.t !== 'name' || next === undefined) continue;
    const last = lastOf(si);
    if ((tok.v === 'var' || tok.v === 'let' || tok.v === 'const') && (next.t === 'name' || next.v === '[' || next.v === '{')) {
      edits.push({ s: tok.s, e: tok.e, text: 'void (' });
      // Declarators without an initialiser: `let x` → `x = undefined`; `var x` keeps a value.
      let a = k + 1;
      for (let j = k + 1; j <= last + 1; j += 1) {
        if (j === last + 1 || (toks[j].d === 0 && toks[j].v === ',' && toks[j].t === 'punct')) {
          if (j - a === 1 && toks[a].t === 'name') {
            const x = toks[a].v;
            edits.push({ s: toks[a].s, e: toks[a].e, text: tok.v === 'var' ? `${x} = typeof ${x} === "undefined" ? undefined : ${x}` : `${x} = undefined` });
          }
          a = j + 1;
        }
      }
      edits.push({ s: toks[last].e, e: toks[last].e, text: ')' });
    } else if (tok.v === 'function' || (tok.v === 'async' && next.v === 'function' && !next.nl)) {
      let j = tok.v === 'async' ? k + 2 : k + 1;
      if (toks[j] && toks[j].v === '*') j += 1;
      if (toks[j] && toks[j].t === 'name') hoisted.push(toks[j].v);
    } else if (tok.v === 'class' && next.t === 'name' && next.v !== 'extends') {
      let body = k + 2;
      while (body <= last && !(toks[body].d === 0 && toks[body].v === '{')) body += 1;
      if (body > last || toks[body].m < 0) return null;
      edits.push({ s: tok.s, e: tok.s, text: `${next.v} = ` });
      edits.push({ s: toks[toks[body].m].e, e: toks[toks[body].m].e, text: ';' });
    } else if (tok.v === 'import' && next.v !== '(' && next.v !== '.') {
      const text = rewriteImport(src, toks, k, last);
      if (text === null) return null;
      edits.push({ s: tok.s, e: toks[last].e, text });
    }
  }
  if (withReturn && starts.length > 0) {
    const si = starts.length - 1;
    const k = starts[si];
    const last = lastOf(si);
    if (isExpressionStatement(toks, k) && !(toks[last].t === 'punct' && toks[last].v === ';')) {
      edits.push({ s: toks[k].s, e: toks[k].s, text: 'return (' });
      edits.push({ s: toks[last].e, e: toks[last].e, text: ')' });
    }
  }
  edits.sort((x, y) => x.s - y.s);
  let out = '';
  let pos = 0;
  for (const ed of edits) {
    if (ed.s < pos) return null;
    out += src.slice(pos, ed.s) + ed.text;
    pos = ed.e;
  }
  out += src.slice(pos);
  // Function declarations are hoisted, so they can be published before the body runs.
  const publish = hoisted.map((x) => `globalThis[${stringify(x)}] = ${x};`).join(' ');
  // Same first line as the cell: line numbers in stack traces stay right.
  return `(async () => {${publish} ${out}\n})()`;
}

module.exports = { asyncWrap, tokenize };
