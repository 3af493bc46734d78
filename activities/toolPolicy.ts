/**
 * The worker's own policy for HTTP tools (issue 24, N3). A session's
 * `config.allowedToolOrigins` is a request: any client of the namespace can
 * create a session listing any origin (SPEC §11.2). What this worker will
 * actually call is the operator's decision, given to the worker at start
 * (worker/config.ts: HV_TOOL_ORIGINS, HV_TOOL_ALLOW_PRIVATE,
 * HV_TOOL_MAX_RESPONSE_BYTES) and handed to the activities by their factory.
 *
 * Pure helpers only (no I/O): origin parsing and address classification, so
 * unit tests can cover them; the request itself is in activities/httpTool.ts.
 */
import { isToolOrigin } from '../src/core/session';

export interface ToolPolicy {
  /**
   * The origins (scheme://host[:port], spelled as URL.origin spells them)
   * this worker runs HTTP tools at. A tool elsewhere is refused even when its
   * session's config allows it. Read on every call, so a test harness may
   * hand over a Set it fills as it starts its tool servers.
   */
  readonly origins: ReadonlySet<string>;
  /**
   * Whether a tool may be at a private, loopback, link-local, unique-local,
   * unspecified, multicast or otherwise reserved address (specialAddressRange).
   * Off by default: a listed public host name whose DNS answer points inside
   * the network (rebinding, a dangling or hijacked record) is refused.
   */
  readonly allowPrivateAddresses: boolean;
  /** A tool's answer larger than this (bytes) fails the step; the body is streamed and the request aborted past it. */
  readonly maxResponseBytes: number;
}

/** 256 KiB: a step's result travels in the saga's history and result, which stay under 512 KiB (SPEC §11.6). */
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024;
/** 2 MiB: Temporal refuses larger payloads (its default blob size limit), so a larger limit could never be met. */
export const MAX_RESPONSE_BYTES_LIMIT = 2 * 1024 * 1024;

/**
 * The default: no origins, so HTTP tools are off until the operator lists
 * them. Listing nothing by default is the only safe choice — the session
 * config that names origins is unsigned, so any other default would let any
 * client of the namespace point the worker at any host it can reach.
 */
export const NO_HTTP_TOOLS: ToolPolicy = Object.freeze({
  origins: new Set<string>(),
  allowPrivateAddresses: false,
  maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
});

/**
 * A comma-separated list of origins (HV_TOOL_ORIGINS), each checked as the
 * session config checks its origins: http(s), host, optional port, nothing
 * else. Empty entries (a trailing comma) are ignored; a wrong one throws,
 * naming it and, when it only needs spelling differently, its origin.
 */
export function parseToolOrigins(raw: string | undefined, name = 'HV_TOOL_ORIGINS'): string[] {
  const origins: string[] = [];
  for (const entry of (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    if (!isToolOrigin(entry)) {
      let hint = '';
      try {
        const u = new URL(entry);
        if ((u.protocol === 'http:' || u.protocol === 'https:') && u.origin !== entry)
          hint = ` (did you mean ${u.origin}?)`;
      } catch {
        // not a URL at all: no hint
      }
      throw new Error(
        `${name}: "${entry}" is not an http(s) origin such as https://tools.example or http://127.0.0.1:8080 (scheme, host and optional port; no path or trailing slash)${hint}`,
      );
    }
    if (!origins.includes(entry)) origins.push(entry);
  }
  return origins;
}

/** `1`/`true`/`yes` or `0`/`false`/`no` (any case); unset or empty, `fallback`; anything else throws. */
export function parseFlag(raw: string | undefined, name: string, fallback = false): boolean {
  if (raw === undefined || raw.trim() === '') return fallback;
  const v = raw.trim().toLowerCase();
  if (v === '1' || v === 'true' || v === 'yes') return true;
  if (v === '0' || v === 'false' || v === 'no') return false;
  throw new Error(`${name} must be 1 or 0 (true/false), got "${raw}"`);
}

/** A byte count in 1 … MAX_RESPONSE_BYTES_LIMIT; unset or empty, DEFAULT_MAX_RESPONSE_BYTES. */
export function parseResponseLimit(raw: string | undefined, name = 'HV_TOOL_MAX_RESPONSE_BYTES'): number {
  if (raw === undefined || raw.trim() === '') return DEFAULT_MAX_RESPONSE_BYTES;
  const value = Number(raw.trim());
  if (!Number.isInteger(value) || value < 1 || value > MAX_RESPONSE_BYTES_LIMIT) {
    throw new Error(`${name} must be a whole number of bytes from 1 to ${MAX_RESPONSE_BYTES_LIMIT}, got "${raw}"`);
  }
  return value;
}

/** The tool policy from these variables (worker/config.ts reads it once, at start). */
export function toolPolicyFromEnv(env: Record<string, string | undefined>): ToolPolicy {
  return {
    origins: new Set(parseToolOrigins(env.HV_TOOL_ORIGINS)),
    allowPrivateAddresses: parseFlag(env.HV_TOOL_ALLOW_PRIVATE, 'HV_TOOL_ALLOW_PRIVATE'),
    maxResponseBytes: parseResponseLimit(env.HV_TOOL_MAX_RESPONSE_BYTES),
  };
}

// ── Addresses ───────────────────────────────────────────────────────────────

function parseIPv4(s: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const octets = m.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

/** Eight 16-bit groups, or null. Accepts brackets, a zone (`%eth0`) and a dotted IPv4 tail (`::ffff:127.0.0.1`). */
function parseIPv6(input: string): number[] | null {
  let s = input.startsWith('[') && input.endsWith(']') ? input.slice(1, -1) : input;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  if (!s.includes(':')) return null;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  const last = s.slice(lastColon + 1);
  if (last.includes('.')) {
    const v4 = parseIPv4(last);
    if (!v4) return null;
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    s = s.slice(0, lastColon + 1); // "::ffff:" → "::ffff"; "::" stays "::"
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const group = (g: string) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : NaN);
  const side = (h: string | undefined) => (h === undefined || h === '' ? [] : h.split(':').map(group));
  const head = side(halves[0]);
  const rest = halves.length === 2 ? side(halves[1]) : [];
  if ([...head, ...rest].some(Number.isNaN)) return null;
  const given = head.length + rest.length + tail.length;
  if (halves.length === 2) {
    if (given > 7) return null;
    return [...head, ...new Array<number>(8 - given).fill(0), ...rest, ...tail];
  }
  return given === 8 ? [...head, ...tail] : null;
}

function ipv4Range([a, b, c]: number[]): string | null {
  if (a === 0) return 'unspecified ("this network", 0.0.0.0/8)';
  if (a === 10) return 'private (10.0.0.0/8)';
  if (a === 127) return 'loopback (127.0.0.0/8)';
  if (a === 169 && b === 254) return 'link-local (169.254.0.0/16)';
  if (a === 172 && b! >= 16 && b! <= 31) return 'private (172.16.0.0/12)';
  if (a === 192 && b === 168) return 'private (192.168.0.0/16)';
  if (a === 100 && b! >= 64 && b! <= 127) return 'shared address space (100.64.0.0/10)';
  if (a === 192 && b === 0 && c === 0) return 'IETF protocol assignments (192.0.0.0/24)';
  if (a === 198 && (b === 18 || b === 19)) return 'benchmarking (198.18.0.0/15)';
  if (a! >= 224 && a! <= 239) return 'multicast (224.0.0.0/4)';
  if (a! >= 240) return 'reserved (240.0.0.0/4, broadcast)';
  return null;
}

function embeddedIPv4(hi: number, lo: number): number[] {
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];
}

function ipv6Range(h: number[]): string | null {
  const zeroUpTo = (n: number) => h.slice(0, n).every((g) => g === 0);
  if (zeroUpTo(8)) return 'unspecified (::)';
  if (zeroUpTo(7) && h[7] === 1) return 'loopback (::1)';
  if (zeroUpTo(5) && h[5] === 0xffff) {
    const inner = ipv4Range(embeddedIPv4(h[6]!, h[7]!));
    return inner && `IPv4-mapped ${inner}`;
  }
  if (zeroUpTo(6)) return 'IPv4-compatible (::/96, deprecated)';
  if (h[0] === 0x64 && h[1] === 0xff9b && h.slice(2, 6).every((g) => g === 0)) {
    const inner = ipv4Range(embeddedIPv4(h[6]!, h[7]!));
    return inner && `NAT64 ${inner}`;
  }
  if (h[0] === 0x64 && h[1] === 0xff9b && h[2] === 1) return 'NAT64 local use (64:ff9b:1::/48)';
  if (h[0] === 0x2002) {
    const inner = ipv4Range(embeddedIPv4(h[1]!, h[2]!));
    return inner && `6to4 ${inner}`;
  }
  if (h[0] === 0x100 && h[1] === 0 && h[2] === 0 && h[3] === 0) return 'discard-only (100::/64)';
  if ((h[0]! & 0xffc0) === 0xfe80) return 'link-local (fe80::/10)';
  if ((h[0]! & 0xffc0) === 0xfec0) return 'site-local (fec0::/10, deprecated)';
  if ((h[0]! & 0xfe00) === 0xfc00) return 'unique-local (fc00::/7)';
  if ((h[0]! & 0xff00) === 0xff00) return 'multicast (ff00::/8)';
  return null;
}

/**
 * Why an address is not a public unicast one — its range, e.g. `loopback
 * (127.0.0.0/8)` or `IPv4-mapped private (10.0.0.0/8)` — or null when it is
 * public. IPv4 and IPv6 (IPv4-mapped, NAT64 and 6to4 addresses are judged by
 * the IPv4 address they carry). Something that is not an IP address at all
 * is never public.
 */
export function specialAddressRange(address: string): string | null {
  const v4 = parseIPv4(address);
  if (v4) return ipv4Range(v4);
  const v6 = parseIPv6(address);
  if (v6) return ipv6Range(v6);
  return 'not an IP address';
}
