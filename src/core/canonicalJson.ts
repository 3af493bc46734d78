/**
 * Canonical JSON for the audit trail: equal data gives equal text, so equal
 * hashes (SPEC §7: a delta's hash is SHA-256 of its canonical JSON).
 */
import { HypervisorError } from './errors';

/**
 * Canonical JSON: JSON.stringify's output for plain data, but with object keys
 * sorted (by UTF-16 code units) at every depth, so equal data gives equal text
 * and equal hashes. Arrays keep their order; object entries whose value is
 * undefined (or a function/symbol) are omitted, and become null inside arrays,
 * as in JSON. Non-finite numbers become null. BigInt is rejected.
 */
export function canonicalJson(value: unknown): string {
  const text = write(value);
  if (text === undefined)
    throw new HypervisorError('INVALID_INPUT', `canonicalJson: a ${typeof value} is not JSON-serialisable`);
  return text;
}

function write(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return jsonString(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          out += write(value[i]) ?? 'null';
        }
        return out + ']';
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      let out = '{';
      let first = true;
      for (const key of keys) {
        const item = write(obj[key]);
        if (item === undefined) continue;
        out += (first ? '' : ',') + jsonString(key) + ':' + item;
        first = false;
      }
      return out + '}';
    }
    case 'bigint':
      throw new HypervisorError('INVALID_INPUT', 'canonicalJson: a bigint is not JSON-serialisable');
    default:
      return undefined;
  }
}

// Characters JSON.stringify would escape (control, quote, backslash, and lone surrogates).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as JSON text: JSON.stringify's output, without its cost for the common plain string. */
export function jsonString(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : '"' + text + '"';
}
