// containerd's filter syntax (github.com/containerd/containerd/filters), the subset snapshotters
// receive: `field[.quoted."path"]OP value` terms joined by ',' (AND); a request's filters are ORed.
// Operators: == != ~= (regexp); a bare field tests presence. Values are bare words or quoted strings.
import { NydusError } from '../util/errors.js';

export interface Term {
  path: string[];
  op: '==' | '!=' | '~=' | 'exists';
  value: string;
}

class Lexer {
  i = 0;
  constructor(readonly s: string) {}
  ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }
  eof(): boolean {
    this.ws();
    return this.i >= this.s.length;
  }
  peek(): string {
    this.ws();
    return this.s[this.i] ?? '';
  }
  fail(what: string): never {
    throw new NydusError('ERR_CLI_USAGE', `bad filter ${JSON.stringify(this.s)}: ${what} at ${this.i}`);
  }
  quoted(): string {
    const q = this.s[this.i]!;
    let out = '';
    this.i++;
    while (this.i < this.s.length && this.s[this.i] !== q) {
      let c = this.s[this.i++]!;
      if (c === '\\' && q !== '`') {
        const n = this.s[this.i++] ?? this.fail('unterminated escape');
        c = ({ n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'" } as Record<string, string>)[n] ?? n;
      }
      out += c;
    }
    if (this.s[this.i] !== q) this.fail('unterminated quote');
    this.i++;
    return out;
  }
  field(): string {
    this.ws();
    const c = this.s[this.i];
    if (c === '"' || c === '`') return this.quoted();
    const m = /^[A-Za-z0-9_\-/]+/.exec(this.s.slice(this.i));
    if (!m) this.fail('expected a field name');
    this.i += m[0].length;
    return m[0];
  }
  value(): string {
    this.ws();
    const c = this.s[this.i];
    if (c === '"' || c === '`' || c === "'") return this.quoted();
    const m = /^[^,\s]*/.exec(this.s.slice(this.i))!;
    this.i += m[0].length;
    return m[0];
  }
}

/** Parses one filter string into its AND-ed terms. */
export function parseFilter(s: string): Term[] {
  const lx = new Lexer(s);
  const terms: Term[] = [];
  while (!lx.eof()) {
    const path = [lx.field()];
    while (lx.peek() === '.') {
      lx.i++;
      path.push(lx.field());
    }
    lx.ws();
    const op = /^(==|!=|~=)/.exec(s.slice(lx.i))?.[1] as Term['op'] | undefined;
    if (op) {
      lx.i += 2;
      terms.push({ path, op, value: lx.value() });
    } else {
      terms.push({ path, op: 'exists', value: '' });
    }
    if (lx.eof()) break;
    if (lx.peek() !== ',') lx.fail("expected ','");
    lx.i++;
  }
  return terms;
}

/** Looks a field path up on an object; `undefined` when absent. */
export type Adaptor = (path: string[]) => string | undefined;

export function matchTerms(terms: Term[], get: Adaptor): boolean {
  return terms.every((t) => {
    const v = get(t.path);
    switch (t.op) {
      case 'exists':
        return v !== undefined;
      case '==':
        return v === t.value;
      case '!=':
        return v !== t.value;
      case '~=':
        return v !== undefined && new RegExp(t.value).test(v);
    }
  });
}

/** An empty list matches everything; otherwise any filter may match. */
export function compileFilters(filters: string[]): (get: Adaptor) => boolean {
  const parsed = filters.filter((f) => f.trim() !== '').map(parseFilter);
  return (get) => parsed.length === 0 || parsed.some((t) => matchTerms(t, get));
}
