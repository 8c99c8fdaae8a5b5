// Unix stream sockets with SCM_RIGHTS fd passing (vhost-user's transport).
import { linkSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { c, nativeScratch, O_CLOEXEC } from './libc.ts';
import { EAGAIN, lastErrno, SysError, throwErrno } from './errno.ts';

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = O_CLOEXEC;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CTRUNC = 0x8;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
export const MAX_FDS_PER_MESSAGE = 8;
const CMSG_HDR = 16;
const CONTROL_SIZE = CMSG_HDR + 4 * 64; // room for more fds than allowed, so extras can be closed
const DATA_SIZE = 65536;

function sockaddrUn(path: string): Uint8Array {
  const enc = new TextEncoder().encode(path);
  if (enc.length >= 108) throw new SysError('bind', 36, `socket path too long (${enc.length} bytes, max 107): ${path}`);
  const sa = new Uint8Array(110);
  sa[0] = AF_UNIX;
  sa.set(enc, 2);
  return sa;
}

const SUN_PATH_MAX = 107;
const EEXIST = 17;
const EADDRINUSE = 98;

/**
 * Where a socket for `path` is bound before it listens, in the same directory; null when that
 * name would not fit in sun_path. bind() creates the file before listen() accepts anything: a
 * client that sees the file then (a test, QEMU without reconnect, a script waiting for the RPC
 * socket) would get ECONNREFUSED. Bound and listening under this name, the socket is then linked
 * to `path` (publishListeningSocket).
 */
export function stagingSocketPath(path: string): string | null {
  const staged = join(dirname(path), `.${basename(path)}.${process.pid}`);
  return Buffer.byteLength(staged) <= SUN_PATH_MAX ? staged : null;
}

/**
 * Gives the listening socket bound at `staged` its real name: link() fails if `path` exists, so
 * two daemons racing for a path cannot take it from each other (as bind() would refuse). The
 * staging name is removed either way.
 */
export function publishListeningSocket(staged: string, path: string): void {
  try {
    linkSync(staged, path);
  } catch (e) {
    // What bind() would have said: EADDRINUSE for a path that exists.
    const errno = Math.abs((e as NodeJS.ErrnoException).errno ?? EEXIST);
    throw new SysError('bind', errno === EEXIST ? EADDRINUSE : errno, path);
  } finally {
    try {
      unlinkSync(staged);
    } catch {
      // gone already
    }
  }
}

/** Errors name `path`, the socket's real name, whatever name `at` it is bound to. */
function bindAndListen(fd: number, at: string, path: string, backlog: number): void {
  const sa = sockaddrUn(at);
  if (c.bind(fd, sa, sa.length) < 0) throw new SysError('bind', lastErrno(), path);
  if (c.listen(fd, backlog) < 0) throw new SysError('listen', lastErrno(), path);
}

/**
 * Creates a non-blocking listening socket at path (the path must not exist). The file appears
 * only once the socket listens (see stagingSocketPath).
 */
export function listenUnix(path: string, backlog = 16): number {
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throwErrno('socket');
  const staged = stagingSocketPath(path);
  try {
    if (staged === null) {
      bindAndListen(fd, path, path, backlog);
    } else {
      try {
        unlinkSync(staged);
      } catch {
        // the usual case: no leftover of a crashed process with our pid
      }
      try {
        bindAndListen(fd, staged, path, backlog);
      } catch (e) {
        try {
          unlinkSync(staged);
        } catch {
          // never created
        }
        throw e;
      }
      publishListeningSocket(staged, path);
    }
  } catch (e) {
    c.close(fd);
    throw e;
  }
  return fd;
}

/** Accepts one connection (non-blocking); -1 when none is pending. */
export function acceptUnix(listenFd: number): number {
  const fd = c.accept4(listenFd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    const e = lastErrno();
    if (e === EAGAIN || e === 103 /* ECONNABORTED */) return -1;
    throw new SysError('accept4', e);
  }
  return fd;
}

/** Connects to a listening socket (blocking connect, then non-blocking if asked). */
export function connectUnix(path: string, nonBlocking = true): number {
  const fd = c.socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throwErrno('socket');
  const sa = sockaddrUn(path);
  if (c.connect(fd, sa, sa.length) < 0) {
    const e = lastErrno();
    c.close(fd);
    throw new SysError('connect', e, path);
  }
  if (nonBlocking) {
    const flags = c.fcntl(fd, 3, 0);
    c.fcntl(fd, 4, flags | SOCK_NONBLOCK);
  }
  return fd;
}

export function socketPair(): [number, number] {
  const sv = [0, 0];
  if (c.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) throwErrno('socketpair');
  return [sv[0], sv[1]];
}

export function shutdownSocket(fd: number): void {
  c.shutdown(fd, 2);
}

// One set of native buffers per thread: msghdr, iovec, control and data.
const msg = nativeScratch(56);
const iov = nativeScratch(16);
const control = nativeScratch(CONTROL_SIZE);
const data = nativeScratch(DATA_SIZE);

export interface Received {
  /** Bytes copied into dst; 0 means the peer closed the connection. */
  bytes: number;
  /** File descriptors that came with these bytes (owned by the caller now). */
  fds: number[];
  /** The kernel dropped fds because the control buffer was too small (the fds are lost). */
  fdsTruncated: boolean;
}

function setupMsg(len: number, controlLen: number): void {
  iov.dv.setBigUint64(0, data.addr, true);
  iov.dv.setBigUint64(8, BigInt(len), true);
  const m = msg.dv;
  m.setBigUint64(0, 0n, true); // msg_name
  m.setUint32(8, 0, true);
  m.setBigUint64(16, iov.addr, true);
  m.setBigUint64(24, 1n, true);
  m.setBigUint64(32, controlLen > 0 ? control.addr : 0n, true);
  m.setBigUint64(40, BigInt(controlLen), true);
  m.setInt32(48, 0, true);
}

/**
 * Receives up to len bytes (non-blocking) into dst at dstOffset, with any fds sent alongside.
 * Returns null when nothing is available (EAGAIN).
 */
export function recvWithFds(fd: number, dst: Uint8Array, dstOffset: number, len: number): Received | null {
  if (len > DATA_SIZE) len = DATA_SIZE;
  setupMsg(len, CONTROL_SIZE);
  const n = Number(c.recvmsg(fd, msg.addr, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
  if (n < 0) {
    const e = lastErrno();
    if (e === EAGAIN) return null;
    if (e === 104 /* ECONNRESET */) return { bytes: 0, fds: [], fdsTruncated: false };
    throw new SysError('recvmsg', e);
  }
  const fds: number[] = [];
  const controlLen = Number(msg.dv.getBigUint64(40, true));
  let off = 0;
  while (off + CMSG_HDR <= controlLen) {
    const cmsgLen = Number(control.dv.getBigUint64(off, true));
    if (cmsgLen < CMSG_HDR || off + cmsgLen > controlLen) break;
    const level = control.dv.getInt32(off + 8, true);
    const type = control.dv.getInt32(off + 12, true);
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      const count = (cmsgLen - CMSG_HDR) >> 2;
      for (let i = 0; i < count; i++) fds.push(control.dv.getInt32(off + CMSG_HDR + 4 * i, true));
    }
    off += (cmsgLen + 7) & ~7;
  }
  const flags = msg.dv.getInt32(48, true);
  if (n > 0) dst.set(data.bytes.subarray(0, n), dstOffset);
  return { bytes: n, fds, fdsTruncated: (flags & MSG_CTRUNC) !== 0 };
}

/** Sends all of buf with fds attached to the first byte; blocks briefly if the socket is full. */
export function sendWithFds(fd: number, buf: Uint8Array, fds: readonly number[] = []): void {
  if (buf.length > DATA_SIZE) throw new SysError('sendmsg', 90 /* EMSGSIZE */, `${buf.length} bytes`);
  if (fds.length > MAX_FDS_PER_MESSAGE) throw new SysError('sendmsg', 22, `${fds.length} fds (max ${MAX_FDS_PER_MESSAGE})`);
  let sent = 0;
  let first = true;
  let spins = 0;
  while (sent < buf.length || (first && buf.length === 0)) {
    const len = buf.length - sent;
    data.bytes.set(buf.subarray(sent), 0);
    let controlLen = 0;
    if (first && fds.length > 0) {
      controlLen = CMSG_HDR + ((4 * fds.length + 7) & ~7);
      control.bytes.fill(0, 0, controlLen);
      control.dv.setBigUint64(0, BigInt(CMSG_HDR + 4 * fds.length), true);
      control.dv.setInt32(8, SOL_SOCKET, true);
      control.dv.setInt32(12, SCM_RIGHTS, true);
      for (let i = 0; i < fds.length; i++) control.dv.setInt32(CMSG_HDR + 4 * i, fds[i], true);
    }
    setupMsg(len, controlLen);
    const n = Number(c.sendmsg(fd, msg.addr, MSG_NOSIGNAL));
    if (n < 0) {
      const e = lastErrno();
      if (e === EAGAIN && spins++ < 100000) continue;
      throw new SysError('sendmsg', e);
    }
    sent += n;
    first = false;
    if (buf.length === 0) break;
  }
}

const SO_PEERCRED = 17;
const ucred = nativeScratch(16);
const ucredLen = new Uint32Array([12]);

/** Pid of the process at the other end of a connected Unix socket (SO_PEERCRED). */
export function peerPid(fd: number): number {
  ucredLen[0] = 12;
  if (c.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucred.addr, ucredLen) < 0) throwErrno('getsockopt(SO_PEERCRED)', `fd ${fd}`);
  return ucred.dv.getInt32(0, true);
}
