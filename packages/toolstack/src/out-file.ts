/**
 * A file the toolstack writes (a save image, a capture, a trace), opened
 * before anything is destroyed, as `xl save` opens its file first: the path must be a regular
 * file or a new name in an existing, writable directory, never a directory, a
 * FIFO or a device (opening a FIFO would block a libuv thread until someone
 * reads it). The bytes go to a temporary file beside it, created exclusively,
 * and are renamed over the name only when whole; a failure removes the
 * temporary file, so nothing half-written is ever left behind.
 */
import { constants } from 'node:fs';
import { access, lstat, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

export interface OutFile {
  /** The name the bytes will have. */
  readonly file: string;
  /** Append to the temporary file (a failure discards it and throws, naming the file). */
  write(data: Uint8Array | string): Promise<void>;
  /** Close the temporary file and rename it over the name: the content is whole. */
  commit(): Promise<void>;
  /** Give up: the temporary file goes, the name is untouched. */
  discard(): Promise<void>;
}

function kind(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/**
 * Refuse, naming `what` and the reason, an output path that is not a regular
 * file or a new name in an existing, writable directory. Nothing is opened:
 * capture and trace check their file this way when they start, so a FIFO
 * (whose open would block a libuv thread) or a directory is refused at once,
 * not at stop.
 */
export async function checkOutPath(file: string, what: string): Promise<void> {
  const fail = (why: string): never => {
    throw new Error(`${what} ${file}: ${why}`);
  };
  const existing = await lstat(file).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : fail(e.message)));
  if (existing && !existing.isFile()) fail(`is ${kind(existing)}; give a regular file or a new name`);
  const dir = dirname(file);
  const d = await stat(dir).catch(() => null);
  if (!d) fail(`no such directory ${dir}`);
  if (!d!.isDirectory()) fail(`${dir} is not a directory`);
  await access(dir, constants.W_OK).catch(() => fail(`directory ${dir} is not writable`));
}

/**
 * Read a whole input file (a save image), refusing anything but a regular
 * file, naming `what` and the reason. Opened without blocking and checked on
 * the open handle, so a FIFO (whose plain open would hold a libuv thread until
 * someone writes to it) is refused at once, even one swapped in after a check.
 */
export async function readInFile(file: string, what: string): Promise<Buffer> {
  const h = await open(file, constants.O_RDONLY | constants.O_NONBLOCK).catch((e: Error) => {
    throw new Error(`${what} ${file}: ${e.message}`);
  });
  try {
    const st = await h.stat();
    if (!st.isFile()) throw new Error(`${what} ${file}: is ${kind(st)}; give a save image (a regular file)`);
    return await h.readFile();
  } finally {
    await h.close();
  }
}

/** Check `file` and open its temporary twin; throws, naming `what` and the reason, before anything else happens. */
export async function openOutFile(file: string, what: string): Promise<OutFile> {
  await checkOutPath(file, what);
  const dir = dirname(file);
  const tmp = `${dir}/.${basename(file)}.${process.pid}.partial`;
  const h: FileHandle = await open(tmp, 'wx', 0o644).catch((e: Error) => {
    throw new Error(`${what} ${file}: cannot create ${tmp}: ${e.message}`);
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await h.close();
  };
  const discard = async () => {
    await close().catch(() => {});
    await unlink(tmp).catch(() => {});
  };
  const failed = async (e: unknown): Promise<never> => {
    await discard();
    throw new Error(`${what} ${file}: ${(e as Error).message}`);
  };
  return {
    file,
    async write(data) {
      await (typeof data === 'string' ? h.write(data) : h.write(data)).catch(failed);
    },
    async commit() {
      try {
        await close();
        await rename(tmp, file);
      } catch (e) {
        await failed(e);
      }
    },
    discard,
  };
}
