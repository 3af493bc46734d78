/**
 * N3 of issue 24 (SSRF through redirects), the pure parts and the request
 * without Temporal: the worker's tool policy (origins, flags, limit), the
 * address classification, and postToTool against loopback servers with a
 * resolver of the test's own (pinning: one resolution, and the connection
 * goes to the address that was checked).
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import {
  DEFAULT_MAX_RESPONSE_BYTES,
  MAX_RESPONSE_BYTES_LIMIT,
  parseFlag,
  parseResponseLimit,
  parseToolOrigins,
  specialAddressRange,
  toolPolicyFromEnv,
  type ToolPolicy,
} from '../../activities/toolPolicy';
import { checkedAddresses, pinnedLookup, postToTool, type Resolver } from '../../activities/httpTool';

async function failure(call: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure, `an ApplicationFailure, got ${String(err)}`);
  return err;
}

describe("N3 — SSRF through redirects: the worker's tool policy", () => {
  describe('specialAddressRange', () => {
    const special: [string, RegExp][] = [
      ['127.0.0.1', /loopback/],
      ['127.255.255.254', /loopback/],
      ['10.1.2.3', /private/],
      ['172.16.0.1', /private/],
      ['172.31.255.255', /private/],
      ['192.168.1.1', /private/],
      ['169.254.169.254', /link-local/],
      ['0.0.0.0', /unspecified/],
      ['0.1.2.3', /unspecified/],
      ['100.64.0.1', /shared/],
      ['224.0.0.1', /multicast/],
      ['239.255.255.250', /multicast/],
      ['255.255.255.255', /reserved/],
      ['240.0.0.1', /reserved/],
      ['192.0.0.8', /IETF/],
      ['198.18.0.1', /benchmarking/],
      ['::1', /loopback/],
      ['::', /unspecified/],
      ['0:0:0:0:0:0:0:1', /loopback/],
      ['[::1]', /loopback/],
      ['fe80::1', /link-local/],
      ['fe80::1%eth0', /link-local/],
      ['febf::1', /link-local/],
      ['fc00::1', /unique-local/],
      ['fd12:3456::1', /unique-local/],
      ['ff02::1', /multicast/],
      ['fec0::1', /site-local/],
      ['::ffff:127.0.0.1', /IPv4-mapped loopback/],
      ['::ffff:7f00:1', /IPv4-mapped loopback/],
      ['::FFFF:10.0.0.1', /IPv4-mapped private/],
      ['::ffff:169.254.169.254', /IPv4-mapped link-local/],
      ['0:0:0:0:0:ffff:a9fe:a9fe', /IPv4-mapped link-local/],
      ['::127.0.0.1', /IPv4-compatible/],
      ['64:ff9b::10.0.0.1', /NAT64 private/],
      ['2002:7f00:1::', /6to4 loopback/],
      ['100::1', /discard/],
      ['localhost', /not an IP address/],
      ['', /not an IP address/],
      ['1.2.3', /not an IP/],
      ['1.2.3.256', /not an IP/],
      ['1:2:3', /not an IP/],
      ['::g', /not an IP/],
      ['1::2::3', /not an IP/],
    ];
    for (const [address, range] of special) {
      it(`${JSON.stringify(address)} is ${range.source}`, () =>
        assert.match(String(specialAddressRange(address)), range));
    }
    it('public unicast addresses are null', () => {
      for (const address of [
        '8.8.8.8',
        '1.1.1.1',
        '172.32.0.1',
        '172.15.255.255',
        '100.128.0.1',
        '169.255.0.1',
        '192.169.0.1',
        '223.255.255.255',
        '198.51.100.7',
        '2001:4860:4860::8888',
        '2606:4700::1111',
        '::ffff:8.8.8.8',
        '64:ff9b::8.8.8.8',
        '2002:808:808::1',
        '1:2:3:4:5:6:7:8',
        '1:2:3:4:5:6:1.2.3.4',
      ]) {
        assert.equal(specialAddressRange(address), null, address);
      }
    });
  });

  describe("parsing the worker's configuration", () => {
    it('HV_TOOL_ORIGINS: a comma-separated list of origins; empty is none', () => {
      assert.deepEqual(parseToolOrigins(undefined), []);
      assert.deepEqual(parseToolOrigins(''), []);
      assert.deepEqual(parseToolOrigins(' https://tools.example , http://127.0.0.1:8080,, https://tools.example'), [
        'https://tools.example',
        'http://127.0.0.1:8080',
      ]);
      assert.deepEqual(parseToolOrigins('http://[::1]:9000'), ['http://[::1]:9000']);
    });
    it('HV_TOOL_ORIGINS: anything but an origin is refused at start, naming it', () => {
      for (const [bad, hint] of [
        ['https://tools.example/', /did you mean https:\/\/tools\.example\?/],
        ['https://tools.example/api', /did you mean/],
        ['HTTPS://Tools.Example', /did you mean https:\/\/tools\.example/],
        ['http://h:80', /did you mean http:\/\/h\?/],
        ['ftp://h', /not an http\(s\) origin/],
        ['tools.example', /not an http\(s\) origin/],
        ['*', /not an http/],
      ] as const) {
        assert.throws(
          () => parseToolOrigins(`https://ok.example,${bad}`),
          (err: Error) =>
            err.message.startsWith('HV_TOOL_ORIGINS') && err.message.includes(`"${bad}"`) && hint.test(err.message),
        );
      }
    });
    it('HV_TOOL_ALLOW_PRIVATE and HV_TOOL_MAX_RESPONSE_BYTES', () => {
      assert.equal(parseFlag(undefined, 'X'), false);
      assert.equal(parseFlag('1', 'X'), true);
      assert.equal(parseFlag('TRUE', 'X'), true);
      assert.equal(parseFlag('0', 'X'), false);
      assert.throws(() => parseFlag('maybe', 'HV_TOOL_ALLOW_PRIVATE'), /HV_TOOL_ALLOW_PRIVATE must be 1 or 0/);
      assert.equal(parseResponseLimit(undefined), DEFAULT_MAX_RESPONSE_BYTES);
      assert.equal(parseResponseLimit('1024'), 1024);
      for (const bad of ['0', '-1', '1.5', 'lots', String(MAX_RESPONSE_BYTES_LIMIT + 1)])
        assert.throws(() => parseResponseLimit(bad), /HV_TOOL_MAX_RESPONSE_BYTES/);
    });
    it('by default no HTTP tool runs: no origins, no private addresses, 256 KiB', () => {
      const policy = toolPolicyFromEnv({});
      assert.equal(policy.origins.size, 0);
      assert.equal(policy.allowPrivateAddresses, false);
      assert.equal(policy.maxResponseBytes, 256 * 1024);
    });
  });

  describe('the checks before a request, and the pinned request', () => {
    let server: http.Server;
    let port = 0;
    const seen: { path: string; host: string; key: string }[] = [];
    before(async () => {
      server = http.createServer((req, res) => {
        seen.push({ path: req.url ?? '', host: String(req.headers.host), key: String(req.headers['idempotency-key']) });
        req.resume();
        req.on('end', () => {
          if (req.url === '/redirect')
            return void res.writeHead(307, { location: 'http://169.254.169.254/latest/meta-data/' }).end('secret');
          if (req.url === '/big')
            return void res
              .writeHead(200, { 'content-type': 'application/json', 'content-length': String(2048) })
              .end('x'.repeat(2048));
          if (req.url === '/error') return void res.writeHead(503).end('y'.repeat(100_000));
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    after(
      () =>
        new Promise<void>((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
    );

    const policy = (origins: string[], allowPrivateAddresses = true, maxResponseBytes = 1024): ToolPolicy => ({
      origins: new Set(origins),
      allowPrivateAddresses,
      maxResponseBytes,
    });
    const request = (url: string) => ({
      url,
      body: '{"input":null}',
      headers: { 'content-type': 'application/json', 'idempotency-key': 'k1' },
    });

    it('an origin the worker does not list is refused before it is resolved', async () => {
      let resolved = 0;
      const resolve: Resolver = async () => {
        resolved++;
        return [{ address: '127.0.0.1', family: 4 }];
      };
      const f = await failure(
        checkedAddresses(new URL(`http://tools.test:${port}/x`), policy([`http://tools.test:${port + 1}`]), resolve),
      );
      assert.equal(f.type, 'ToolOriginNotAllowed');
      assert.equal(f.nonRetryable, true);
      assert.equal(resolved, 0);
    });

    it('a host with any private address among its answers is refused when the worker does not allow them', async () => {
      const resolve: Resolver = async () => [
        { address: '93.184.216.34', family: 4 },
        { address: '::ffff:10.0.0.7', family: 6 },
      ];
      const f = await failure(
        checkedAddresses(new URL('https://tools.test/x'), policy(['https://tools.test'], false), resolve),
      );
      assert.equal(f.type, 'ToolAddressNotAllowed');
      assert.equal(f.nonRetryable, true);
      assert.match(
        f.message,
        /tools\.test resolves to ::ffff:10\.0\.0\.7, which is IPv4-mapped private \(10\.0\.0\.0\/8\); this worker does not call tools at private addresses/,
      );
      // An IP literal is checked as it is, in the form URL gives it (0x7f.1 is 127.0.0.1).
      for (const url of ['http://0x7f.1/x', 'http://2130706433/x', 'http://[::ffff:127.0.0.1]/x', 'http://[::]/x']) {
        const u = new URL(url);
        assert.equal(
          (await failure(checkedAddresses(u, policy([u.origin], false)))).type,
          'ToolAddressNotAllowed',
          url,
        );
      }
      assert.deepEqual(
        await checkedAddresses(new URL('https://tools.test/x'), policy(['https://tools.test'], false), async () => [
          { address: '93.184.216.34', family: 4 },
        ]),
        [{ address: '93.184.216.34', family: 4 }],
      );
    });

    it('a host that does not resolve is a retryable failure, nothing sent', async () => {
      const f = await failure(
        checkedAddresses(new URL('http://nowhere.test/x'), policy(['http://nowhere.test']), async () => {
          throw Object.assign(new Error('x'), { code: 'ENOTFOUND' });
        }),
      );
      assert.equal(f.type, 'HttpToolUnresolved');
      assert.equal(f.nonRetryable, false);
    });

    it('the pinned lookup answers only with the checked addresses', async () => {
      const lookup = pinnedLookup([
        { address: '127.0.0.1', family: 4 },
        { address: '::1', family: 6 },
      ]);
      const call = (options: unknown) =>
        new Promise<unknown[]>((r) => (lookup as any)('anything.test', options, (...args: unknown[]) => r(args)));
      assert.deepEqual(await call({}), [null, '127.0.0.1', 4]);
      assert.deepEqual(await call({ family: 6 }), [null, '::1', 6]);
      assert.deepEqual(await call({ all: true }), [
        null,
        [
          { address: '127.0.0.1', family: 4 },
          { address: '::1', family: 6 },
        ],
      ]);
      const onlyV4 = pinnedLookup([{ address: '127.0.0.1', family: 4 }]);
      const [err] = await new Promise<unknown[]>((r) =>
        (onlyV4 as any)('anything.test', { family: 6 }, (...args: unknown[]) => r(args)),
      );
      assert.equal(
        (err as NodeJS.ErrnoException).code,
        'ENOTFOUND',
        'no unchecked address is made up for a family it has none of',
      );
    });

    it('the request goes to the address resolved once and checked, even if the name would now resolve elsewhere (rebinding)', async () => {
      const answers = [
        [{ address: '127.0.0.1', family: 4 as const }],
        [{ address: '10.255.255.1', family: 4 as const }],
      ];
      let resolved = 0;
      const resolve: Resolver = async () => answers[Math.min(resolved++, 1)]!;
      const origin = `http://rebind.test:${port}`;
      const answer = await postToTool(request(`${origin}/do?x=1`), policy([origin]), resolve);
      assert.deepEqual(answer, { status: 200, text: '{"ok":true}' });
      assert.equal(resolved, 1, 'resolved once');
      assert.deepEqual(
        seen.at(-1),
        { path: '/do?x=1', host: `rebind.test:${port}`, key: 'k1' },
        'the tool saw its own host name and the headers',
      );
    });

    it('a redirect is a non-retryable failure naming the Location, and nothing else is requested', async () => {
      const before = seen.length;
      const origin = `http://127.0.0.1:${port}`;
      const f = await failure(postToTool(request(`${origin}/redirect`), policy([origin])));
      assert.equal(f.type, 'HttpToolRedirect');
      assert.equal(f.nonRetryable, true);
      assert.match(
        f.message,
        /answered 307 \(Location http:\/\/169\.254\.169\.254\/latest\/meta-data\/\); this worker does not follow redirects/,
      );
      assert.ok(!f.message.includes('secret'));
      assert.equal(seen.length, before + 1);
    });

    it('an answer past the limit fails (declared or streamed); an error answer is only quoted', async () => {
      const origin = `http://127.0.0.1:${port}`;
      const f = await failure(postToTool(request(`${origin}/big`), policy([origin], true, 2047)));
      assert.equal(f.type, 'HttpToolResponseTooLarge');
      assert.equal(f.nonRetryable, true);
      assert.equal((await postToTool(request(`${origin}/big`), policy([origin], true, 2048))).text.length, 2048);
      const error = await postToTool(request(`${origin}/error`), policy([origin], true, 1024));
      assert.equal(error.status, 503);
      assert.equal(error.text.length, 1024);
    });

    it('no answer (nothing listening) is a retryable HttpToolNoAnswer', async () => {
      const closed = http.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const origin = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
      await new Promise<void>((r) => closed.close(() => r()));
      const f = await failure(postToTool(request(`${origin}/x`), policy([origin])));
      assert.equal(f.type, 'HttpToolNoAnswer');
      assert.equal(f.nonRetryable, false);
    });
  });
});
