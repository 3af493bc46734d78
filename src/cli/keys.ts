/** `hv keys …`: did:key identities (issue 12) — a new key file, and the DID of one. */
import { readKeyFile, writeNewKeyFile } from '../client/keys';
import type { Command } from './command';
import { UsageError } from './errors';

function fileArg(cmd: Command, value: string | undefined): string {
  if (!value) throw new UsageError(`hv ${cmd.name} needs FILE`, `usage: hv ${cmd.name} ${cmd.usage}`);
  return value;
}

const create: Command = {
  name: 'keys new',
  summary: 'make an Ed25519 did:key: writes its key file (owner-only, 0600) and prints the DID',
  args: ['FILE'],
  usage: 'FILE',
  options: {},
  help: [],
  examples: [
    'hv keys new alpha.key',
    'hv --key alpha.key session join s1 --agent "$(hv keys show alpha.key)" --sigma 0.8',
  ],
  async run(ctx, _values, args) {
    const file = fileArg(this, args[0]);
    let did: string;
    try {
      did = writeNewKeyFile(file).did;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(
        `cannot write key file ${file}: ${code === 'EEXIST' ? 'it exists (a key is never overwritten)' : (err as Error).message}`,
        'choose another path',
      );
    }
    ctx.print({ did, file }, () => did);
    ctx.note(`key written to ${file} (mode 0600): keep it secret; sign with \`hv --key ${file} …\``);
  },
};

const show: Command = {
  name: 'keys show',
  summary: 'print the DID of a key file',
  args: ['FILE'],
  usage: 'FILE',
  options: {},
  help: [],
  examples: ['hv keys show alpha.key'],
  async run(ctx, _values, args) {
    const file = fileArg(this, args[0]);
    let key;
    try {
      key = readKeyFile(file);
    } catch (err) {
      throw new UsageError((err as Error).message, 'make one with `hv keys new FILE`');
    }
    const publicKey = Buffer.from(key.publicKey).toString('hex');
    ctx.print({ did: key.did, publicKey, file }, () => key.did);
  },
};

export const keyCommands: Command[] = [create, show];
