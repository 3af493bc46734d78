/**
 * One request to an HTTP tool, under the worker's tool policy (issue 24, N3):
 *
 * - only at an origin the worker lists (ToolPolicy.origins), whatever the
 *   session's config allows — refused before anything is resolved or sent;
 * - the host resolved once, every address checked (no private, loopback,
 *   link-local … address unless the worker allows them), and the connection
 *   made to those checked addresses only: the socket's lookup answers with
 *   them, so a DNS answer that changes between the check and the connect
 *   (rebinding) cannot move the request;
 * - redirects are never followed: a 3xx is a failure naming the Location, and
 *   its body is never read;
 * - the answer is streamed and the request aborted once it passes the
 *   worker's size limit.
 *
 * node:http/https rather than fetch: fetch (undici inside Node) offers no
 * per-request lookup without an extra dependency, and node:http never follows
 * redirects by itself.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { specialAddressRange, type ToolPolicy } from './toolPolicy';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Every address a host name resolves to (the system resolver, in its order). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await dnsLookup(hostname, { all: true, verbatim: true })).map((a) => ({
    address: a.address,
    family: a.family === 6 ? 6 : 4,
  }));

/** The failure types of an HTTP tool call; the ones a step may have acted on are in MAY_HAVE_ACTED. */
export const HTTP_TOOL_FAILURES = {
  /** The worker does not list the tool's origin (non-retryable, nothing sent). */
  originNotAllowed: 'ToolOriginNotAllowed',
  /** The tool's host resolves to an address the worker does not allow (non-retryable, nothing sent). */
  addressNotAllowed: 'ToolAddressNotAllowed',
  /** The host name did not resolve (retryable, nothing sent). */
  unresolved: 'HttpToolUnresolved',
  /** The tool answered 3xx; not followed (non-retryable; the tool may have acted). */
  redirect: 'HttpToolRedirect',
  /** The answer passed the worker's size limit (non-retryable; the tool may have acted). */
  tooLarge: 'HttpToolResponseTooLarge',
  /** The request got no (complete) answer: network, reset (retryable; the tool may have acted). */
  noAnswer: 'HttpToolNoAnswer',
} as const;

/** Longest Location quoted in a failure (SPEC §11.6: every string has a bound). */
const LOCATION_QUOTE_MAX = 300;
/** Of an error answer, only this much is read: its message quotes 200 characters. */
const ERROR_BODY_MAX = 4096;

export interface ToolAnswer {
  status: number;
  text: string;
}

export interface ToolRequest {
  url: string;
  /** The JSON text to POST. */
  body: string;
  headers: Record<string, string>;
  /** Aborts the request (the activity's cancellation). */
  signal?: AbortSignal;
}

/** The checks before anything is sent: the worker lists the origin; every address of its host is allowed. Returns the addresses to connect to. */
export async function checkedAddresses(
  url: URL,
  policy: ToolPolicy,
  resolve: Resolver = systemResolver,
): Promise<ResolvedAddress[]> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw ApplicationFailure.nonRetryable(
      `HTTP tool ${url.href}: not an http(s) URL`,
      HTTP_TOOL_FAILURES.originNotAllowed,
    );
  }
  if (!policy.origins.has(url.origin)) {
    throw ApplicationFailure.nonRetryable(
      `HTTP tool ${url.href}: origin ${url.origin} is not one this worker runs tools at (its HV_TOOL_ORIGINS); a session's config.allowedToolOrigins cannot add it`,
      HTTP_TOOL_FAILURES.originNotAllowed,
    );
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const family = isIP(host);
  let addresses: ResolvedAddress[];
  if (family) addresses = [{ address: host, family: family === 6 ? 6 : 4 }];
  else {
    try {
      addresses = await resolve(host);
    } catch (err) {
      throw ApplicationFailure.retryable(
        `HTTP tool ${url.href}: ${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        HTTP_TOOL_FAILURES.unresolved,
      );
    }
    if (addresses.length === 0)
      throw ApplicationFailure.retryable(
        `HTTP tool ${url.href}: ${host} resolves to no address`,
        HTTP_TOOL_FAILURES.unresolved,
      );
  }
  if (!policy.allowPrivateAddresses) {
    for (const { address } of addresses) {
      const range = specialAddressRange(address);
      if (range) {
        throw ApplicationFailure.nonRetryable(
          `HTTP tool ${url.href}: ${host === address ? '' : `${host} resolves to `}${address}, which is ${range}; this worker does not call tools at private addresses (HV_TOOL_ALLOW_PRIVATE)`,
          HTTP_TOOL_FAILURES.addressNotAllowed,
        );
      }
    }
  }
  return addresses;
}

/** A socket lookup that answers only with these (already checked) addresses: the request is pinned to them. */
export function pinnedLookup(addresses: ResolvedAddress[]): LookupFunction {
  return ((hostname: string, options: unknown, callback: (...args: unknown[]) => void) => {
    const opts = (typeof options === 'object' && options !== null ? options : { family: options }) as {
      all?: boolean;
      family?: unknown;
    };
    const family =
      opts.family === 4 || opts.family === 'IPv4' ? 4 : opts.family === 6 || opts.family === 'IPv6' ? 6 : 0;
    const list = family ? addresses.filter((a) => a.family === family) : addresses;
    if (list.length === 0) {
      callback(Object.assign(new Error(`no checked IPv${family} address for ${hostname}`), { code: 'ENOTFOUND' }));
      return;
    }
    if (opts.all)
      callback(
        null,
        list.map((a) => ({ address: a.address, family: a.family })),
      );
    else callback(null, list[0]!.address, list[0]!.family);
  }) as LookupFunction;
}

function tooLarge(url: string, limit: number): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `HTTP tool ${url} answered more than ${limit} bytes, this worker's limit (HV_TOOL_MAX_RESPONSE_BYTES); the answer was cut off`,
    HTTP_TOOL_FAILURES.tooLarge,
  );
}

/** Reads at most `limit` bytes; `over` when there was more (the stream is destroyed then). */
async function readAtMost(res: http.IncomingMessage, limit: number): Promise<{ bytes: Buffer; over: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (size + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - size));
      res.destroy();
      return { bytes: Buffer.concat(chunks), over: true };
    }
    size += chunk.length;
    chunks.push(chunk);
  }
  return { bytes: Buffer.concat(chunks), over: false };
}

function noAnswer(url: string, err: unknown, signal?: AbortSignal): Error {
  if (signal?.aborted || (err as Error)?.name === 'AbortError') {
    // The step's cancellation: the request may have reached the tool (withActingDetails in steps.ts).
    const aborted = new Error(`HTTP tool ${url}: the request was aborted (the step was cancelled)`);
    aborted.name = 'AbortError';
    return aborted;
  }
  const code = (err as NodeJS.ErrnoException)?.code;
  return ApplicationFailure.retryable(
    `HTTP tool ${url}: no answer (${code ?? (err as Error)?.message ?? String(err)})`,
    HTTP_TOOL_FAILURES.noAnswer,
  );
}

/**
 * POSTs to an HTTP tool under the policy: refuses before sending, or answers
 * with the tool's status and (size-limited) body text. A 2xx past the limit,
 * and any 3xx, are failures (see HTTP_TOOL_FAILURES).
 */
export async function postToTool(
  request: ToolRequest,
  policy: ToolPolicy,
  resolve: Resolver = systemResolver,
): Promise<ToolAnswer> {
  const url = new URL(request.url);
  const addresses = await checkedAddresses(url, policy, resolve);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const secure = url.protocol === 'https:';
  const options: https.RequestOptions = {
    method: 'POST',
    hostname: host,
    port: url.port || (secure ? 443 : 80),
    path: `${url.pathname}${url.search}`,
    headers: { ...request.headers, host: url.host, 'content-length': String(Buffer.byteLength(request.body)) },
    // A connection of its own: never a pooled socket, whatever it was connected to.
    agent: false,
    lookup: pinnedLookup(addresses),
    ...(request.signal ? { signal: request.signal } : {}),
    // TLS checks the certificate against the host name, not the pinned address.
    ...(secure && !isIP(host) ? { servername: host } : {}),
  };
  let res: http.IncomingMessage;
  try {
    res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = (secure ? https : http).request(options, resolve);
      req.once('error', reject);
      req.end(request.body);
    });
  } catch (err) {
    throw noAnswer(request.url, err, request.signal);
  }
  const status = res.statusCode ?? 0;
  if (status >= 300 && status < 400) {
    // Not followed, and its body is never read: a redirect is where an allowed origin would send the worker elsewhere.
    res.destroy();
    const location = res.headers.location;
    const quoted =
      location === undefined
        ? 'no Location'
        : `Location ${location.length > LOCATION_QUOTE_MAX ? `${location.slice(0, LOCATION_QUOTE_MAX)}…` : location}`;
    throw ApplicationFailure.nonRetryable(
      `HTTP tool ${request.url} answered ${status} (${quoted}); this worker does not follow redirects`,
      HTTP_TOOL_FAILURES.redirect,
    );
  }
  const ok = status >= 200 && status < 300;
  const limit = ok ? policy.maxResponseBytes : Math.min(policy.maxResponseBytes, ERROR_BODY_MAX);
  const declared = Number(res.headers['content-length']);
  if (ok && Number.isFinite(declared) && declared > limit) {
    res.destroy();
    throw tooLarge(request.url, limit);
  }
  let body: { bytes: Buffer; over: boolean };
  try {
    body = await readAtMost(res, limit);
  } catch (err) {
    throw noAnswer(request.url, err, request.signal);
  }
  if (ok && body.over) throw tooLarge(request.url, limit);
  return { status, text: body.bytes.toString('utf8') };
}
