/**
 * The structured (JSON) form of a flow's match, for programs that would rather not write or parse
 * the datapath flow text. It mirrors the text attribute by attribute, so it follows the text syntax
 * wherever that grows:
 *
 *   recirc_id(0),in_port(1),eth(),eth_type(0x0800),ipv4(src=10.0.0.0/255.0.0.0,proto=17,frag=no),udp(dst=53)
 *   {"recirc_id":"0","in_port":"1","eth":{},"eth_type":"0x0800",
 *    "ipv4":{"src":"10.0.0.0/255.0.0.0","proto":"17","frag":"no"},"udp":{"dst":"53"}}
 *
 * An attribute with a value is a string (`value` or `value/mask`, as in the text; numbers are accepted
 * on input); one with fields is an object of field strings (`{}` for `eth()`); `encap` is an object of
 * attributes. Input is turned into text and parsed by the flow parser, so it is validated exactly as
 * text is (errors name the attribute and the column of the generated text).
 */

export type StructuredMatch = { [attribute: string]: string | number | StructuredMatch | { [field: string]: string | number } };

const NAME = /^[a-z_][a-z0-9_]*$/;
const VALUE = /^[^,()=\s]+$/;

export class StructuredFlowError extends Error {}

/** Splits `a(...),b(...)` at the top level. */
function attributes(text: string): { name: string; body: string }[] {
  const out: { name: string; body: string }[] = [];
  let at = 0;
  while (at < text.length) {
    while (text[at] === ',' || text[at] === ' ') at++;
    if (at >= text.length) break;
    const open = text.indexOf('(', at);
    if (open < 0) throw new StructuredFlowError(`no attribute at "${text.slice(at)}"`);
    let depth = 0;
    let close = open;
    for (; close < text.length; close++) {
      if (text[close] === '(') depth++;
      else if (text[close] === ')' && --depth === 0) break;
    }
    out.push({ name: text.slice(at, open), body: text.slice(open + 1, close) });
    at = close + 1;
  }
  return out;
}

/** The match text of a flow (as formatFlow prints it, without actions) as an object. */
export function matchToObject(text: string): StructuredMatch {
  const match: StructuredMatch = {};
  for (const { name, body } of attributes(text)) {
    if (body.includes('(')) match[name] = matchToObject(body);
    else if (body === '' || body.includes('=')) {
      const fields: { [field: string]: string } = {};
      for (const item of body.split(',').filter(Boolean)) {
        const eq = item.indexOf('=');
        fields[item.slice(0, eq)] = item.slice(eq + 1);
      }
      match[name] = fields;
    } else match[name] = body;
  }
  return match;
}

function value(where: string, v: unknown): string {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && VALUE.test(v)) return v;
  throw new StructuredFlowError(`${where}: expected a number or a value string without , ( ) = or spaces, got ${JSON.stringify(v)}`);
}

/** An object of attributes back to match text (validated later by the flow parser). */
export function objectToMatch(match: unknown, where = 'match'): string {
  if (typeof match !== 'object' || match === null || Array.isArray(match)) throw new StructuredFlowError(`${where}: expected an object of attributes`);
  const parts: string[] = [];
  for (const [name, v] of Object.entries(match)) {
    if (!NAME.test(name)) throw new StructuredFlowError(`${where}: bad attribute name ${JSON.stringify(name)}`);
    if (typeof v !== 'object' || v === null) {
      parts.push(`${name}(${value(`${where}.${name}`, v)})`);
    } else if (Array.isArray(v)) {
      throw new StructuredFlowError(`${where}.${name}: expected a value or an object, got a list`);
    } else if (name === 'encap') {
      parts.push(`encap(${objectToMatch(v, `${where}.encap`)})`);
    } else {
      const fields = Object.entries(v).map(([field, fv]) => {
        if (!NAME.test(field)) throw new StructuredFlowError(`${where}.${name}: bad field name ${JSON.stringify(field)}`);
        return `${field}=${value(`${where}.${name}.${field}`, fv)}`;
      });
      parts.push(`${name}(${fields.join(',')})`);
    }
  }
  return parts.join(',');
}
